"""Scale-out: the report's section on runs scaled out with ``bench slurm`` (``_scaleout.html.j2``): placements
compared (the paper's GPU-count sweep and its single vs two nodes), each node's share of multi-node cells, and where
every part of a merged run came from."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.analysis import ModelRow
from bench.report.format import Column, Table, Td, fixed, get, num


def _split(model: str) -> tuple[str, tuple[int, int] | None]:
    """A model name's base and its placement (nodes, GPUs per node), None where it has none."""
    from bench.catalog.models import split_placement

    try:
        return split_placement(model)
    except Exception:  # a name the catalog no longer parses: shown as its own model
        return model, None


def scaling_table(doc: Any, rows: list[ModelRow]) -> Table | None:
    """Per model and data set, every placement (nodes x GPUs) it ran with: duration and energy, each relative to its
    first placement, with the paper's two-node ratio beside two-node rows. None when no model ran in two placements.

    The paper's finding to check: more GPUs shorten the run but do not save energy; two nodes cost 1.7-2.7x one.
    """
    from bench.reference import node_ratio

    groups: dict[tuple[str, str], list[tuple[tuple[int, int], ModelRow]]] = defaultdict(list)
    for r in rows:
        base, placement = _split(r.model)
        if placement is not None and r.n_ok:
            groups[(r.dataset, base)].append((placement, r))
    table_rows = []
    for (dataset, base), members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (m[0][0], m[0][0] * m[0][1]))
        ref = members[0][1]
        for (nodes, gpus), r in members:
            d_ratio = r.duration_s.mean / ref.duration_s.mean if r.duration_s and ref.duration_s else None
            e_ratio = r.energy_j.mean / ref.energy_j.mean if r.energy_j and ref.energy_j and ref.energy_j.mean else None
            paper = node_ratio(r.paper_label or "") if nodes == 2 else None
            table_rows.append(
                [
                    Td(base, cls="name"),
                    Td(dataset, cls="name"),
                    Td(f"{nodes} × {gpus}"),
                    Td(num(r.duration_s.mean if r.duration_s else None)),
                    Td(num(r.energy_j.mean if r.energy_j else None)),
                    Td(fixed(d_ratio, 2)),
                    Td(fixed(e_ratio, 2)),
                    Td(fixed(paper.energy_ratio, 2) if paper else "—", title="paper Table B2: two nodes / one node"),
                ]
            )
    if not table_rows:
        return None
    columns = [
        Column("model", numeric=False),
        Column("data set", numeric=False),
        Column("nodes × GPUs", numeric=False),
        Column("duration", "s / pass"),
        Column("energy", "J / pass"),
        Column("duration ratio", "× first"),
        Column("energy ratio", "× first"),
        Column("paper energy ratio", "2 nodes / 1"),
    ]
    return Table(
        columns,
        table_rows,
        caption="Placements of one model: ratios against its first (fewest nodes, fewest GPUs)",
        notes=[
            "The paper (Tables B2, B3): more GPUs shorten a run without saving energy; a model on two nodes used "
            "1.7-2.7x the energy of one node. Multi-node energy is summed over every node, duration is the maximum."
        ],
    )


def nodes_table(doc: Any) -> Table | None:
    """Each node's mean duration and energy per pass for the multi-node models (the cells sum them)."""
    acc: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for c in get(doc, "cells") or []:
        for n in getattr(c, "nodes", None) or []:
            acc[(c.dataset, c.model, n.host)].append(n)
    if not acc:
        return None
    rows = []
    for (dataset, model, host), nodes in acc.items():
        energies = {
            comp: [n.energy_j.get(comp) for n in nodes if n.energy_j.get(comp) is not None]
            for comp in ("gpu", "cpu", "ram")
        }
        mean = {comp: sum(v) / len(v) if v else None for comp, v in energies.items()}
        total = sum(v for v in mean.values() if v is not None) if any(v is not None for v in mean.values()) else None
        rows.append(
            [
                Td(model, cls="name"),
                Td(dataset, cls="name"),
                Td(host, cls="name"),
                Td(num(sum(n.duration_s for n in nodes) / len(nodes))),
                Td(num(mean["gpu"])),
                Td(num(mean["cpu"])),
                Td(num(mean["ram"])),
                Td(num(total)),
            ]
        )
    columns = [
        Column("model", numeric=False),
        Column("data set", numeric=False),
        Column("node", numeric=False),
        Column("duration", "s / pass"),
        Column("gpu", "J / pass"),
        Column("cpu", "J / pass"),
        Column("ram", "J / pass"),
        Column("total", "J / pass"),
    ]
    return Table(
        columns, rows, caption="Per node, mean over repetitions: the model's cells sum energy, take max duration"
    )


def parts_table(doc: Any) -> Table | None:
    """Where each part of a merged Slurm run ran: task, job, hosts, GPUs given, cells."""
    parts = get(doc, "parts") or []
    if not parts:
        return None
    rows = []
    for p in parts:
        slurm = p.slurm or {}
        job = f"{slurm['array_job_id']}_{slurm.get('array_task_id', '?')}" if slurm.get("array_job_id") else "—"
        rows.append(
            [
                Td(p.task, cls="name"),
                Td(job, title=str(slurm.get("log", ""))),
                Td(", ".join(p.hosts) or "—", cls="name"),
                Td(str(slurm.get("cuda_visible_devices") or "—")),
                Td(str(p.cells)),
                Td(p.run_id, cls="name"),
            ]
        )
    columns = [
        Column("task", numeric=False),
        Column("job", numeric=False),
        Column("host(s)", numeric=False),
        Column("CUDA_VISIBLE_DEVICES", numeric=False),
        Column("cells"),
        Column("part run id", numeric=False),
    ]
    return Table(columns, rows, caption="Parts merged by `bench merge` (one Slurm array task each)")


def scaleout_view(doc: Any, rows: list[ModelRow]) -> dict[str, Any] | None:
    """The report's scale-out section (None when the run has no placements, nodes or parts to show)."""
    view = {"scaling": scaling_table(doc, rows), "nodes": nodes_table(doc), "parts": parts_table(doc)}
    return view if any(view.values()) else None
