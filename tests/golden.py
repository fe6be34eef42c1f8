"""The report's golden files: stored results documents and the exact pages they render to.

``tests/unit/test_report_golden.py`` renders each stored document (and the comparison of all of them) and compares
byte for byte with the stored page, so a change of the report's code that changes a page is seen. The documents:

- ``cpu-default``: a real run of the CPU profile's default suite (2 repetitions, SmolLM2 included) on the 2-core CI
  machine, made before the report and the runner were split by responsibility;
- ``placements``: a GPU document with LLM placements (``@1x2``, ``@2x1``), per-node energies and merged parts, the
  scale-out section's input;
- ``h100-sample``: ``bench.report.sample.sample_document`` on the H100 machine (serving modes, the paper's tables,
  hostile names), without predictions to keep it small.

A deliberate change of a page: ``python -m tests.golden --update`` rewrites the pages (never the documents), and the
diff of the stored pages is what the change did to them; review it like code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "fixtures" / "golden"
DOCUMENTS = ("cpu-default", "placements", "h100-sample")
#: The page's "rendered by" stamp, fixed: the real one carries the kit's version and the time of rendering.
GENERATED = "bench (golden), 2026-01-01 00:00 UTC"


def document_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.results.json"


def page_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.html"


def render_pages() -> dict[str, str]:
    """Every golden page, rendered now from the stored documents with the fixed stamp (the caller fixes the stamp)."""
    from bench.report import render_compare, render_report
    from bench.results import load_results

    docs = {name: load_results(document_path(name)) for name in DOCUMENTS}
    pages = {f"{name}.report": render_report(doc) for name, doc in docs.items()}
    pages["compare"] = render_compare(list(docs.values()))
    return pages


def _placements_document() -> object:
    from bench.results import NodeEnergy, PartRecord
    from tests.factories import cell, document, energy

    one = [cell(r, model="llama-3.1-70b@1x2", energy=energy(cpu_j=100.0, ram_j=10.0), duration_s=1.0) for r in (0, 1)]
    nodes = [
        NodeEnergy(host="n1", duration_s=1.9, energy_j={"gpu": None, "cpu": 120.0, "ram": 10.0}),
        NodeEnergy(host="n2", duration_s=2.0, energy_j={"gpu": None, "cpu": 80.0, "ram": 10.0}),
    ]
    two = [
        cell(r, model="llama-3.1-70b@2x1", energy=energy(cpu_j=200.0, ram_j=20.0), duration_s=2.0, nodes=nodes, gpus=2)
        for r in (0, 1)
    ]
    models = {
        m: {"paper_label": "Llama 3.1 70B", "kind": "llm", "params": {"gpus": g, "pipeline_parallel_size": n}}
        for m, n, g in (("llama-3.1-70b@1x2", 1, 2), ("llama-3.1-70b@2x1", 2, 1))
    }
    suite = {"datasets": ["toy"], "models": list(models), "repetitions": 2}
    part = PartRecord(
        task="llama-3.1-70b_2x1",
        run_id="llama-3.1-70b_2x1",
        content_hash="sha256:x",
        kit_version="0.1.0",
        settings_sha256="s",
        hosts=["n1", "n2"],
        slurm={"array_job_id": "41", "array_task_id": "1", "cuda_visible_devices": "0", "log": "/l/x.out"},
        sessions=[0],
        cells=2,
    )
    return document(one + two, models=models, suite=suite, parts=[part], profile={"name": "h100"}, status="complete")


def make_documents(cpu_run: Path) -> None:
    """Store the golden documents: ``cpu_run`` (a real run's results.json) copied, the others built."""
    from bench.report.sample import sample_document
    from bench.results import load_results, write_results

    write_results(load_results(cpu_run), document_path("cpu-default"))
    write_results(_placements_document(), document_path("placements"))  # type: ignore[arg-type]
    write_results(
        sample_document(machine="h100", hostile=True, predictions=False, repetitions=2), document_path("h100-sample")
    )


def write_pages() -> None:
    for name, html in render_pages().items():
        page_path(name).write_text(html, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the golden pages from the stored documents")
    parser.add_argument("--documents", type=Path, metavar="CPU_RUN", help="(re)make the documents from a real run")
    args = parser.parse_args(argv)
    if args.documents:
        make_documents(args.documents)
    if args.update or args.documents:
        from tests.report_stamp import fixed_stamp

        with fixed_stamp(GENERATED):
            write_pages()
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
