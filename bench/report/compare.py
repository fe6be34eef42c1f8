"""The comparison of runs (``compare.html``): runs side by side per data set and model, normalized per text on one
energy scale, the notices that say why runs may not be comparable, the machines and software table, and each run's
own energy ~ duration fit against a pooled one (partials ``_comparability``, ``_compare_datasets``,
``_compare_proxy`` and ``_machines.html.j2``).

It reuses the report's sections: the manifest of ``sections.facts``, the fit of ``sections.proxy`` and the scatter
tips of ``sections.datasets``. The page frame (citation, rendering stamp) is added by ``bench.report.page``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.analysis import energy_duration_regression, model_rows, per_text
from bench.arithmetic import RATIO_NOTE, calibration_j_per_flop
from bench.derived import per_1000_texts
from bench.report import svg
from bench.report.format import (
    COMPONENTS,
    SERVING_KEYS,
    Column,
    Notice,
    Table,
    Td,
    dataset_names,
    environment_machine,
    fixed,
    get,
    model_info,
    num,
    ok_cells,
    short_hash,
)
from bench.report.sections.datasets import accuracy_energy_tip
from bench.report.sections.facts import manifest
from bench.report.sections.proxy import fit_line, regression_points


def _prompt_keys(values: dict[str, Any] | None, prefix: str) -> dict[str, str]:
    """The entries of ``values`` whose key names a prompt (templates, versions, hashes), keyed ``prefix.key``."""
    return {f"{prefix}.{k}": repr(v) for k, v in (values or {}).items() if "prompt" in k.lower()}


def _model_prompt(doc: Any, model: str) -> dict[str, str]:
    """What names the prompt one model of a run was given: its params' and its backend's prompt entries."""
    info = model_info(doc, model)
    return {**_prompt_keys(info.get("params"), "params"), **_prompt_keys(info.get("info"), "info")}


def _runs_llms(doc: Any) -> bool:
    """Whether a run has a zero-shot LLM (a model of kind ``llm``, or one whose backend names a prompt)."""
    return any(
        info.get("kind") == "llm" or _model_prompt(doc, model) for model, info in (get(doc, "models") or {}).items()
    )


def _model_pin(doc: Any, model: str) -> str:
    """What fixes a model's behaviour: its backend params and any pin/revision (not library versions)."""
    info = model_info(doc, model)
    pin = {k: info.get(k) for k in ("pin", "revision", "backend") if info.get(k) is not None}
    params = {k: v for k, v in (info.get("params") or {}).items() if k not in SERVING_KEYS}
    return repr(sorted({**pin, **params}.items(), key=lambda kv: kv[0]))


def comparability(docs: Sequence[Any], labels: Sequence[str]) -> list[Notice]:
    """Why the runs may not be comparable: data sets, splits, prompts, kit or model versions that differ."""
    notices: list[Notice] = []
    by_hash: dict[str, list[str]] = {}
    for lab, d in zip(labels, docs, strict=True):
        if get(d, "content_hash"):
            by_hash.setdefault(str(get(d, "content_hash")), []).append(lab)
    for same in (labs for labs in by_hash.values() if len(labs) > 1):
        # the same document twice: its numbers differ from themselves by nothing, machines included
        notices.append(Notice("note", f"{' and '.join(same)} are the same run (the same content hash)."))

    def differ(what: str, values: dict[str, Any], level: str = "warning") -> None:
        distinct = {repr(v) for v in values.values()}
        if len(distinct) > 1:
            notices.append(Notice(level, what, [f"{lab}: {v}" for lab, v in values.items()]))

    sets = {lab: tuple(dataset_names(d)) for lab, d in zip(labels, docs, strict=True)}
    if len({frozenset(v) for v in sets.values()}) > 1:
        notices.append(
            Notice(
                "warning",
                "Different data sets: only the ones all runs share are compared side by side.",
                [f"{lab}: {', '.join(v) or '—'}" for lab, v in sets.items()],
            )
        )
    common = set.intersection(*(set(v) for v in sets.values())) if sets else set()
    for dataset in sorted(common):
        records = {lab: (get(d, "datasets") or {}).get(dataset) for lab, d in zip(labels, docs, strict=True)}
        differ(
            f"{dataset}: different splits (splits_sha256) — accuracy differences may come from other test texts.",
            {lab: short_hash(get(r, "splits_sha256")) for lab, r in records.items()},
        )
        differ(
            f"{dataset}: different data contents.",
            {lab: short_hash((get(r, "pin") or {}).get("content_sha256")) for lab, r in records.items()},
        )
    # Prompts matter only where there are LLM answers to compare: between runs that both have LLMs (the run-wide
    # prompt settings), and per LLM the runs share (its own prompt). A run without LLMs has no prompt to differ in.
    with_llms = {lab: d for lab, d in zip(labels, docs, strict=True) if _runs_llms(d)}
    if len(with_llms) > 1:
        differ(
            "Different prompts: LLM answers are not comparable.",
            {lab: _prompt_keys(get(d, "settings"), "settings") or "none" for lab, d in with_llms.items()},
        )
    differ(
        "Different kit versions: measurement code may differ.",
        {lab: get(d, "kit_version") for lab, d in zip(labels, docs, strict=True)},
    )
    models = set.intersection(*(set((get(d, "models") or {}).keys()) for d in docs)) if docs else set()
    for model in sorted(models):
        differ(
            f"{model}: different model versions or parameters.",
            {lab: _model_pin(d, model) for lab, d in zip(labels, docs, strict=True)},
        )
        prompts = {lab: _model_prompt(d, model) for lab, d in zip(labels, docs, strict=True)}
        if any(prompts.values()):
            differ(
                f"{model}: different prompts: its answers are not comparable.",
                {k: v or "none" for k, v in prompts.items()},
            )
    differ(
        "Different measurement settings (minimum window, loop cap, idle baseline).",
        {
            lab: {k: (get(d, "settings") or {}).get(k) for k in ("min_window_s", "max_loops", "idle_baseline_s")}
            for lab, d in zip(labels, docs, strict=True)
        },
        level="note",
    )
    for lab, d in zip(labels, docs, strict=True):
        if get(d, "hardware_mismatch"):
            notices.append(
                Notice("warning", f"{lab}: the machine did not match its profile (forced).", list(d.hardware_mismatch))
            )
        if get(d, "status") != "complete":
            notices.append(Notice("warning", f"{lab}: the run is {get(d, 'status')}, not complete."))
    notices.extend(condition_notices(docs, labels))
    notices.extend(repair_notices(docs, labels))
    indices = {lab: calibration_index(d) for lab, d in zip(labels, docs, strict=True)}
    if any(v is not None for v in indices.values()):
        notices.append(
            Notice(
                "note",
                "Energy per text divided by each run's machine index (gross J per reference unit of the session's "
                "calibration job, bench.calibration): a per-text cost in units of the machine's own reference work.",
                [
                    f"{lab}: {num(v[0])} J per unit of {v[1]}" if v is not None else f"{lab}: no calibration recorded"
                    for lab, v in indices.items()
                ],
            )
        )
    grids = {lab: get(d, "grid") for lab, d in zip(labels, docs, strict=True)}
    if any(g is not None for g in grids.values()):
        notices.append(
            Notice(
                "note",
                "CO₂e per 1,000 texts is derived (gross energy x PUE x the grid's carbon intensity), each run with "
                "its own grid:",
                [
                    f"{lab}: {get(g, 'intensity_gco2e_per_kwh')} gCO2e/kWh, PUE {get(g, 'pue')} "
                    f"({get(g, 'intensity_source')})"
                    if g is not None
                    else f"{lab}: no grid recorded (written before bench derived CO₂e)"
                    for lab, g in grids.items()
                ],
            )
        )
    return notices


def condition_notices(docs: Sequence[Any], labels: Sequence[str]) -> list[Notice]:
    """Per run, the cells whose window other processes shared or whose GPU throttled or ran outside its temperature
    range (left out of the energy columns), and the shared idle baselines; a note where only some runs record what
    else ran (documents before schema v3), since their windows cannot be checked the same way."""
    notices: list[Notice] = []
    observed = {}
    for lab, d in zip(labels, docs, strict=True):
        cells = list(get(d, "cells") or [])
        observed[lab] = any(get(c, "others") is not None for c in cells) or any(
            get(i, "others") is not None for i in get(d, "idle") or []
        )
        hit = [c for c in cells if get(c, "status") == "ok" and get(c, "flags")]
        if hit:
            items = [f"{c.dataset} · {c.model} · rep {c.repetition}: " + "; ".join(map(str, c.flags)) for c in hit[:10]]
            more = [f"… and {len(hit) - 10} more"] if len(hit) > 10 else []
            notices.append(
                Notice(
                    "warning",
                    f"{lab}: {len(hit)} cell(s) measured while other processes ran or the GPU throttled (flagged); "
                    "their energy is left out until they are redone:",
                    items + more,
                )
            )
        shared_idle = [w for w in get(d, "warnings") or [] if "idle baseline" in str(w) and "other process" in str(w)]
        if shared_idle:
            notices.append(Notice("warning", f"{lab}: idle baselines shared with other processes:", shared_idle))
    if any(observed.values()) and not all(observed.values()):
        notices.append(
            Notice(
                "note",
                "Not every run records what else ran on its machine (written before bench recorded it): "
                "their windows cannot be checked for other processes.",
                [f"{lab}: {'recorded' if seen else 'not recorded'}" for lab, seen in observed.items()],
            )
        )
    return notices


def repair_notices(docs: Sequence[Any], labels: Sequence[str]) -> list[Notice]:
    """Per run with redo sessions (``ResultDocument.repairs``): a note naming each session, when it ran, and the
    cells it ran again with what they were before and why (the run's report has the table)."""
    notices: list[Notice] = []
    for lab, d in zip(labels, docs, strict=True):
        for repair in get(d, "repairs") or []:
            redone = list(get(repair, "cells") or [])
            items = [
                f"{c.dataset} · {c.model} · rep {c.repetition}: was {c.before}"
                + (f" ({'; '.join(map(str, c.reasons))})" if c.reasons else "")
                for c in redone[:10]
            ]
            more = [f"… and {len(redone) - 10} more"] if len(redone) > 10 else []
            notices.append(
                Notice(
                    "note",
                    f"{lab}: repaired: session {repair.session} (started {repair.started_at}) ran {len(redone)} "
                    "cell(s) again in place:",
                    items + more,
                )
            )
    return notices


def _machine_line(doc: Any) -> str:
    """CPU, CPU count and GPUs of a run's machine, in one line."""
    m = environment_machine(doc)
    gpus = m.get("gpus") or []
    gpu = f"{len(gpus)}× {gpus[0].get('name', 'GPU')}" if gpus else "no GPU"
    return f"{m.get('cpu_model', '?')} ({m.get('logical_cpus', '?')} CPUs), {gpu}"


def compare_context(docs: Sequence[Any]) -> dict[str, Any]:
    """The view model of ``compare.html``: runs side by side per model, normalized per text, on one scale.
    Everything but the page frame (citation, rendering stamp), which ``bench.report.page`` adds."""
    labels = [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(len(docs))]
    rows_by_run = [model_rows(d) for d in docs]
    index = [{(r.dataset, r.model): r for r in rows} for rows in rows_by_run]
    datasets: list[str] = []
    for d in docs:
        datasets += [n for n in dataset_names(d) if n not in datasets]
    # One scale: every chart of the page spans the energy per text of every run and data set.
    all_jpt = [r.j_per_text for rows in rows_by_run for r in rows if r.j_per_text]
    all_acc = [r.accuracy.mean for rows in rows_by_run for r in rows if r.accuracy]
    sections = []
    for dataset in datasets:
        models: list[str] = []
        for idx in index:
            models += [m for (ds, m) in idx if ds == dataset and m not in models]
        present = [i for i, idx in enumerate(index) if any(ds == dataset for ds, _ in idx)]
        columns = [Column("model", numeric=False)]
        for i in present:
            columns += [
                Column("accuracy", group=labels[i]),
                Column("energy", "J / text", group=labels[i], title="gross"),
                Column("net", "J / text", group=labels[i]),
                Column("time", "ms / text", group=labels[i]),
            ]
        if len(present) > 1:
            columns += [Column(f"{labels[i]} / {labels[present[0]]}", "× energy", group="ratio") for i in present[1:]]
        carbon = [i for i in present if get(get(docs[i], "grid"), "intensity_gco2e_per_kwh") is not None]
        indices = {i: calibration_index(docs[i]) for i in present}
        indexed = [i for i in present if indices[i] is not None]
        if len({indices[i][1] for i in indexed}) != 1:  # type: ignore[index]
            indexed = []  # indices of different reference workloads are never set side by side
        columns += [
            Column(
                "CO₂e (derived)",
                "g / 1,000 texts",
                group=labels[i],
                title=f"gross energy x PUE x {get(docs[i].grid, 'intensity_gco2e_per_kwh')} gCO2e/kWh "
                f"({get(docs[i].grid, 'intensity_source')})",
            )
            for i in carbon
        ]
        columns += [
            Column(
                "energy / index",
                "ref. units / text",
                group=labels[i],
                title=f"gross J per text / the run's {indices[i][1]} index "  # type: ignore[index]
                f"({num(indices[i][0])} J per reference unit, bench.calibration)",  # type: ignore[index]
            )
            for i in indexed
        ]
        # LLM rows that recorded their arithmetic (bench.arithmetic): energy as x times the run's calibration J per FLOP
        limited = [
            i for i in present if any(r.x_calibration is not None for (ds, _), r in index[i].items() if ds == dataset)
        ]
        columns += [
            Column(
                "energy / calibration J per FLOP",
                "× (derived)",
                group=labels[i],
                title=f"{_calibration_label(docs[i])}. {RATIO_NOTE}",
            )
            for i in limited
        ]
        table_rows = []
        series = []
        for i in present:
            pts = []
            for model in models:
                r = index[i].get((dataset, model))
                if r and r.j_per_text and r.accuracy:
                    pts.append(
                        svg.Point(
                            r.j_per_text,
                            r.accuracy.mean,
                            label=model if len(present) == 1 else "",
                            tip=accuracy_energy_tip(f"{labels[i]} · {model}", r.accuracy.mean, r.j_per_text),
                        )
                    )
            series.append(
                svg.Series(
                    f"{labels[i]}: {get(docs[i], 'run_id')}",
                    pts,
                    color=svg.PALETTE[i % len(svg.PALETTE)],
                    marker=svg.MARKERS[i % len(svg.MARKERS)],
                )
            )
        bars: dict[str, list[float | None]] = {labels[i]: [] for i in present}
        for model in models:
            line = [Td(model, cls="name")]
            first = None
            for n, i in enumerate(present):
                r = index[i].get((dataset, model))
                n_test = _mean_n_test(docs[i], dataset, model)
                norm = per_text(
                    n_test,
                    r.duration_s.mean if r and r.duration_s else None,
                    r.energy_j.mean if r and r.energy_j else None,
                    r.net_energy_j.mean if r and r.net_energy_j else None,
                    r.accuracy.mean if r and r.accuracy else None,
                )
                jpt = norm.j_per_text if norm else None
                if n == 0:
                    first = jpt
                bars[labels[i]].append(jpt)
                line += [
                    Td(fixed(r.accuracy.mean if r and r.accuracy else None)),
                    Td(num(jpt)),
                    Td(num(norm.net_j_per_text if norm else None)),
                    Td(num(norm.s_per_text * 1000 if norm and norm.s_per_text is not None else None)),
                ]
            for i in present[1:]:
                jpt = bars[labels[i]][-1]
                line.append(Td(num(jpt / first, 3) if jpt is not None and first else "—"))
            for i in carbon:
                derived = per_1000_texts(bars[labels[i]][-1], docs[i].grid)
                line.append(Td(num(derived.gco2e if derived else None)))
            for i in indexed:
                jpt = _run_jpt(index[i], dataset, model, docs[i])
                line.append(Td(num(jpt / indices[i][0] if jpt is not None and indices[i][0] else None)))  # type: ignore[index]
            for i in limited:
                r = index[i].get((dataset, model))
                line.append(Td(num(r.x_calibration if r else None, 3)))
            table_rows.append(line)
        sections.append(
            {
                "name": dataset,
                "table": Table(columns, table_rows, css_class="compare"),
                "scatter": svg.energy_accuracy_scatter(
                    series,
                    title=f"{dataset}: accuracy against energy per text, all runs",
                    x_domain=all_jpt,
                    y_domain=all_acc,
                ),
                "bars": svg.grouped_bars(
                    models,
                    bars,
                    title=f"{dataset}: energy per text by run",
                    x_label=svg.ENERGY_PER_TEXT_LABEL,
                    x_domain=all_jpt,
                ),
            }
        )
    runs = []
    for lab, d in zip(labels, docs, strict=True):
        cells = list(get(d, "cells") or [])
        runs.append(
            {
                "label": lab,
                "run_id": get(d, "run_id"),
                "machine": _machine_line(d),
                "profile": (get(d, "profile") or {}).get("name", "—"),
                "kit": get(d, "kit_version", "—"),
                "created": get(d, "created_at", "—"),
                "cells": f"{len(ok_cells(cells))} / {len(cells)}",
                "status": get(d, "status", "—"),
            }
        )
    return {
        "title": "bench compare — " + ", ".join(str(get(d, "run_id")) for d in docs),
        "runs": runs,
        "notices": comparability(docs, labels),
        "machines": machines_table(docs, labels),
        "sections": sections,
        "regression": compare_regression(docs, labels),
    }


def _calibration_label(doc: Any) -> str:
    """A run's calibration J per FLOP with its reference (``bench.arithmetic.calibration_j_per_flop``)."""
    ref = calibration_j_per_flop(doc)
    return f"{ref[1]}: {ref[0]:.3g} J per FLOP" if ref else "no calibration recorded"


def calibration_index(doc: Any) -> tuple[float, str] | None:
    """A run's machine index and its reference (``bench.calibration.machine_index``)."""
    from bench.calibration import machine_index

    return machine_index(doc)


def _run_jpt(index: dict[tuple[str, str], Any], dataset: str, model: str, doc: Any) -> float | None:
    """Gross J per text of ``model`` on ``dataset`` in one run (None where it has no number)."""
    r = index.get((dataset, model))
    norm = per_text(_mean_n_test(doc, dataset, model), None, r.energy_j.mean if r and r.energy_j else None)
    return norm.j_per_text if norm else None


def _mean_n_test(doc: Any, dataset: str, model: str) -> float | None:
    """The mean test split size of a model's ok cells on a data set (None without any)."""
    values = [c.n_test for c in ok_cells(get(doc, "cells") or []) if c.dataset == dataset and c.model == model]
    values = [v for v in values if v]
    return sum(values) / len(values) if values else None


def machines_table(docs: Sequence[Any], labels: Sequence[str]) -> Table:
    """Machine and software facts, one column per run; rows that differ are marked."""
    facts: dict[str, list[str]] = {}
    for i, d in enumerate(docs):
        facts_of_run = manifest(d)
        entries = [*facts_of_run["machine"][:5], *facts_of_run["software"][:5]]
        meters = (get(d, "meters") or {}).get("components") or {}
        entries += [(f"{c} meter", str((meters.get(c) or {}).get("method") or "—")) for c in COMPONENTS]
        for key, value in entries:
            facts.setdefault(key, [""] * len(docs))[i] = value
    rows = []
    for key, values in facts.items():
        same = len(set(values)) == 1
        rows.append([Td(key, cls="name"), *(Td(v, cls="text" + ("" if same else " differs")) for v in values)])
    columns = [Column("", numeric=False)] + [Column(lab, numeric=False) for lab in labels]
    return Table(columns, rows, css_class="machines")


def compare_regression(docs: Sequence[Any], labels: Sequence[str]) -> dict[str, Any] | None:
    """Each run's own energy~duration fit, and a pooled fit over all runs: the proxy holds within a machine."""
    series, rows = [], []
    pooled_d, pooled_e = [], []
    for i, (lab, d) in enumerate(zip(labels, docs, strict=True)):
        durations, energies, devices, _ = regression_points(d)
        if len(durations) < 3:
            continue
        fit = energy_duration_regression(durations, energies, devices)
        pooled_d += durations
        pooled_e += energies
        color = svg.PALETTE[i % len(svg.PALETTE)]
        pts = [svg.Point(x, y, tip=f"{lab}: {num(x)} s, {num(y)} J") for x, y in zip(durations, energies, strict=True)]
        series.append(
            svg.Series(
                f"{lab} (R² {num(fit.r2, 3)})",
                pts,
                color=color,
                marker=svg.MARKERS[i % 4],
                line=fit_line(fit, durations, True, devices[0]),
            )
        )
        rows.append(
            [Td(lab, cls="name"), Td(str(fit.n)), Td(num(fit.coefficients.get("duration_s"))), Td(num(fit.r2, 4))]
        )
    if not series:
        return None
    pooled = energy_duration_regression(pooled_d, pooled_e) if len(series) > 1 else None
    if pooled:
        rows.append(
            [
                Td("all runs pooled", cls="name"),
                Td(str(pooled.n)),
                Td(num(pooled.coefficients.get("duration_s"))),
                Td(num(pooled.r2, 4)),
            ]
        )
    table = Table(
        [Column("run", numeric=False), Column("cells"), Column("slope", "W"), Column("R²")], rows, css_class="compact"
    )
    plot = svg.scatter(
        series,
        title="Energy against duration per pass, one fit per run",
        x_label="duration per pass, s (log scale)",
        y_label="energy per pass, J (log)",
        x_log=True,
        y_log=True,
        label_points=False,
    )
    return {"plot": plot, "table": table}
