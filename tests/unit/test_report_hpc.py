"""The report's scale-out section: placements against each other with the paper's two-node ratio, per-node numbers,
and the parts of a merged run."""

from __future__ import annotations

from bench.analysis import model_rows
from bench.reference import node_ratio
from bench.report import render_report
from bench.report.sections.scaleout import nodes_table, parts_table, scaling_table
from bench.results import NodeEnergy, PartRecord
from tests.factories import cell, document, energy


def _doc():
    one = [cell(r, model="llama-3.1-70b@1x2", energy=energy(cpu_j=100.0, ram_j=10.0), duration_s=1.0) for r in (0, 1)]
    nodes = [
        NodeEnergy(host="n1", duration_s=1.9, energy_j={"gpu": None, "cpu": 120.0, "ram": 10.0}),
        NodeEnergy(host="n2", duration_s=2.0, energy_j={"gpu": None, "cpu": 80.0, "ram": 10.0}),
    ]
    two = [
        cell(r, model="llama-3.1-70b@2x1", energy=energy(cpu_j=200.0, ram_j=20.0), duration_s=2.0, nodes=nodes)
        for r in (0, 1)
    ]
    models = {m: {"paper_label": "Llama 3.1 70B"} for m in ("llama-3.1-70b@1x2", "llama-3.1-70b@2x1")}
    suite = {"datasets": ["toy"], "models": list(models), "repetitions": 2}
    part = PartRecord(
        task="llama-3.1-70b_2x1",
        run_id="llama-3.1-70b_2x1",
        content_hash="sha256:x",
        kit_version="0.1.0",
        settings_sha256="s",
        hosts=["n1"],
        slurm={"array_job_id": "41", "array_task_id": "1", "cuda_visible_devices": "0", "log": "/l/x.out"},
        sessions=[0],
        cells=2,
    )
    return document(one + two, models=models, suite=suite, parts=[part])


def test_paper_two_node_ratio_is_read() -> None:
    ratio = node_ratio("DS Llama 70B")
    assert ratio is not None and ratio.energy_ratio == 2.71 and ratio.duration_ratio == 2.67
    assert node_ratio("Linear BoW") is None


def test_placements_are_compared_with_the_paper_and_nodes_shown() -> None:
    doc = _doc()
    table = scaling_table(doc, model_rows(doc))
    assert table is not None
    texts = [[td.text for td in row] for row in table.rows]
    assert texts[0][:3] == ["llama-3.1-70b", "toy", "1 × 2"] and texts[0][5:7] == ["1.00", "1.00"]
    assert texts[1][2] == "2 × 1" and texts[1][5] == "2.00" and texts[1][6] == "2.00" and texts[1][7] == "1.95"
    node_rows = [[td.text for td in row] for row in nodes_table(doc).rows]
    assert [r[2] for r in node_rows] == ["n1", "n2"] and node_rows[0][5] == "120"
    part_rows = [[td.text for td in row] for row in parts_table(doc).rows]
    assert part_rows[0][:4] == ["llama-3.1-70b_2x1", "41_1", "n1", "0"]
    html = render_report(doc)
    assert 'id="scale-out"' in html and "Per node" in html and "Parts of this run" in html


def test_a_run_without_placements_has_no_scale_out_section() -> None:
    assert 'id="scale-out"' not in render_report(document())
