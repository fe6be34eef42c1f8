"""Run facts and warnings: the facts in the report's header, the warnings and notes a reader must see before trusting
a number, the machine and software manifest, and the table of meters per component (``_warnings.html.j2``,
``_manifest.html.j2``). The comparison page reuses the manifest for its machines table."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.analysis import model_warnings
from bench.report.format import (
    COMPONENTS,
    Column,
    Notice,
    Table,
    Td,
    badge,
    component_methods,
    environment_machine,
    environment_software,
    get,
    num,
    ok_cells,
    pct,
    short_hash,
)
from bench.results import GridRecord, planned_cells
from bench.validation import redo_command


def head_facts(doc: Any) -> list[tuple[str, str]]:
    """The facts in the report's header: status, cells, profile, suite, dates, content hash."""
    cells = list(get(doc, "cells") or [])
    ok = len(ok_cells(cells))
    planned = max(planned_cells(get(doc, "suite")) or 0, len(cells))  # an interrupted run has not written them all
    profile = get(doc, "profile") or {}
    return [
        ("status", str(get(doc, "status", "—"))),
        ("cells", f"{ok} ok, {len(cells) - ok} failed, of {planned}"),
        ("profile", str(profile.get("name", "—"))),
        ("suite", str(get(doc, "suite_name", "—"))),
        ("created", str(get(doc, "created_at", "—"))),
        ("updated", str(get(doc, "updated_at", "—"))),
        ("content hash", short_hash(get(doc, "content_hash"), 16)),
        *carbon_facts(doc),
        *calibration_facts(doc),
    ]


def calibration_facts(doc: Any) -> list[tuple[str, str]]:
    """Each session's calibration job (``bench.calibration``): the machine's index, or why there is none."""
    out = []
    for c in get(doc, "calibration") or []:
        if c.j_per_unit is not None:
            text = f"{num(c.j_per_unit)} J and {num(c.s_per_unit)} s per unit of {c.reference} ({c.loops} loops)"
        else:
            text = f"{c.reference}: none ({c.reason})"
        out.append((f"machine index (session {c.session})", text))
    return out


def carbon_facts(doc: Any) -> list[tuple[str, str]]:
    """The run's derived carbon and cost (``bench.derived``), labelled as derived with what they rest on; none for
    documents without a grid record (before schema v3)."""
    grid = get(doc, "grid")
    if grid is None:
        return []
    from bench.derived import derive, run_energy_j

    energy_j, n = run_energy_j(doc)
    derived = derive(energy_j, grid)
    intensity = get(grid, "intensity_gco2e_per_kwh")
    assumed = grid.assumed_country() if isinstance(grid, GridRecord) else None
    facts = [
        (
            "grid (for derived CO₂e)",
            (
                (
                    f"assumed: the average grid of {assumed}, the profile's country (no --grid-intensity given); "
                    if assumed
                    else ""
                )
                + f"{intensity:g} gCO2e/kWh, PUE {grid.pue:g}; {grid.intensity_source}"
            )
            if intensity is not None
            else f"no carbon intensity ({grid.intensity_source})",
        )
    ]
    if derived is not None and derived.gco2e is not None:
        facts.append(
            (
                "run CO₂e (derived)",
                f"{num(derived.gco2e)} g from {num(energy_j)} J gross: one pass of each of {n} valid cell(s) x PUE x "
                "intensity" + (f" (assumed grid: {assumed})" if assumed else ""),
            )
        )
    if derived is not None and derived.cost is not None:
        source = get(grid, "price_source")
        facts.append(
            (
                "run cost (derived)",
                f"{num(derived.cost)} {grid.currency or ''} at {grid.price_per_kwh:g}/kWh"
                + (f" ({source})" if source else ""),
            )
        )
    return facts


def warnings(doc: Any) -> list[Notice]:
    """Everything a reader must know before trusting a number, most serious first."""
    out: list[Notice] = []
    cells = list(get(doc, "cells") or [])
    status = get(doc, "status", "complete")
    if status != "complete":
        out.append(Notice("warning", f"The run is {status}: {len(cells)} cell(s) recorded so far; numbers may change."))
    mismatch = list(get(doc, "hardware_mismatch") or [])
    if mismatch:
        forced = " and the run was forced (--force)" if get(doc, "forced") else ""
        out.append(Notice("warning", f"This machine does not match the profile{forced}:", mismatch))
    for w in get(doc, "warnings", None) or []:  # document-level warnings, where the runner records them
        out.append(Notice("warning", str(w.get("message", w) if isinstance(w, dict) else w)))
    about_models = model_warnings(doc)  # what the models predicted, computed from the cells
    if about_models:
        out.append(
            Notice(
                "warning",
                f"{len(about_models)} model(s) predicted one class for every text of a test split that holds several "
                "(their numbers stay in the tables; they describe the model, not the machine, so a redo does not "
                "clear this):",
                [w.message for w in about_models],
            )
        )
    failed = [c for c in cells if get(c, "status") == "failed"]
    if failed:
        items = [
            f"{c.dataset} · {c.model} · rep {c.repetition}: "
            f"{get(c.error, 'type', '?')}: {str(get(c.error, 'message', ''))[:300]}"
            for c in failed[:20]
        ]
        more = [f"… and {len(failed) - 20} more"] if len(failed) > 20 else []
        out.append(Notice("warning", f"{len(failed)} cell(s) failed and are left out of the aggregates:", items + more))
    invalid = [c for c in cells if get(c, "validity")]
    if invalid:
        items = [
            f"{c.dataset} · {c.model} · rep {c.repetition}: {'; '.join(map(str, c.validity))}" for c in invalid[:20]
        ]
        more = [f"… and {len(invalid) - 20} more"] if len(invalid) > 20 else []
        out.append(
            Notice(
                "warning",
                f"{len(invalid)} cell(s) failed a plausibility check; their accuracy counts, their duration and energy "
                "are left out of every mean, plot and fit:",
                items + more,
            )
        )
    flagged = [c for c in cells if get(c, "status") == "ok" and get(c, "flags")]
    if flagged:
        items = [f"{c.dataset} · {c.model} · rep {c.repetition}: {'; '.join(map(str, c.flags))}" for c in flagged[:20]]
        more = [f"… and {len(flagged) - 20} more"] if len(flagged) > 20 else []
        out.append(
            Notice(
                "warning",
                f"{len(flagged)} cell(s) flagged: the machine was not quiet during their window (other processes, "
                "throttling or a temperature out of range). The results stay valid; their accuracy counts, their "
                "duration and energy are left out of every mean, plot and fit until they are redone with "
                f"`{redo_command(doc)}`:",
                items + more,
            )
        )
    cut = [c for c in cells if get(c, "truncated")]
    if cut:
        items = [
            f"{c.dataset} · {c.model} · rep {c.repetition}: {len(c.truncated)} text(s) cut, prompts of "
            + ", ".join(f"{t.prompt_tokens:,} → {t.kept_tokens:,}" for t in c.truncated[:5])
            + (" …" if len(c.truncated) > 5 else "")
            + " tokens"
            for c in cut[:20]
        ]
        more = [f"… and {len(cut) - 20} more"] if len(cut) > 20 else []
        out.append(
            Notice(
                "note",
                f"{len(cut)} cell(s) classified texts cut to fit the model's context window (--truncate): the model "
                "saw the start of those texts only; accuracy and energy are of what it saw:",
                items + more,
            )
        )
    ok = ok_cells(cells)
    unparsed: dict[str, list[str]] = defaultdict(list)
    worst = 0.0
    for c in ok:
        rate = get(c, "invalid_rate") or 0.0
        if rate > 0:
            worst = max(worst, rate)
            if c.dataset not in unparsed[c.model]:
                unparsed[c.model].append(c.dataset)
    if unparsed:
        items = [f"{m} ({', '.join(ds)})" for m, ds in list(unparsed.items())[:12]]
        more = [f"… and {len(unparsed) - 12} more model(s)"] if len(unparsed) > 12 else []
        out.append(
            Notice(
                "note",
                f"Some answers could not be mapped to a label and count as wrong (up to {pct(worst)} of a split; "
                "see the 'invalid' column):",
                items + more,
            )
        )
    notes = (get(doc, "meters") or {}).get("notes") or {}
    for comp in COMPONENTS:
        methods, _ = component_methods(ok, comp)
        estimated = sorted(m for m in methods if m.startswith("estimated"))
        if estimated:
            why = str(notes.get(comp) or "").removeprefix("estimated: ")
            text = f"{comp} energy is estimated ({', '.join(estimated)}), not measured"
            out.append(Notice("warning", f"{text}: {why}" if why else f"{text}."))
    capped = [c for c in ok if get(c.window, "max_loops_reached", False)]
    if capped:
        out.append(
            Notice(
                "warning",
                f"{len(capped)} window(s) stayed shorter than the minimum even at the loop cap; their energy is "
                "less reliable.",
            )
        )
    looped = [c for c in ok if c.window is not None and c.window.loops > 1]
    if looped:
        most = max(c.window.loops for c in looped)
        minimum = max(c.window.min_window_s for c in looped)
        out.append(
            Notice(
                "note",
                f"{len(looped)} of {len(ok)} window(s) were extended by repeating the test-set inference (up to "
                f"{most:,} loops) to reach the minimum window of {num(minimum)} s; energy and duration are divided "
                "by the loop count.",
            )
        )
    if not get(doc, "idle"):
        out.append(Notice("note", "No idle baseline was measured: net energy is not available."))
    return out


def accelerator_text(facts: dict[str, Any]) -> str:
    """A session's ``accelerator`` (``bench.environment.accelerator_facts``) in one line: "rocm: PyTorch 2.9.1 on its
    cuda device, HIP 7.0.51831"."""
    device = str(facts.get("device") or "?")
    if not facts.get("torch"):
        return f"{device} (PyTorch not imported)" if device == "cpu" else f"{device} (no PyTorch)"
    parts = [f"{device}: PyTorch {facts['torch']} on its {facts.get('torch_device', device)} device"]
    parts += [f"{name} {facts[key]}" for key, name in (("torch_hip", "HIP"), ("torch_cuda", "CUDA")) if facts.get(key)]
    if device == "mps":
        parts.append("mps available" if facts.get("mps_available") is True else "mps not available")
    return ", ".join(parts)


def manifest(doc: Any) -> dict[str, list[tuple[str, str]]]:
    """Machine, run and software, and library facts of a run: (label, value) pairs under those three keys."""
    m, s = environment_machine(doc), environment_software(doc)
    gpus = m.get("gpus") or []
    gpu_groups: dict[str, int] = defaultdict(int)
    for g in gpus:
        limit = g.get("power_limit_w")
        desc = f"{g.get('name', '?')}, {num(g.get('memory_gb'))} GB" + (
            f", power limit {num(limit)} W" if limit else ""
        )
        gpu_groups[desc] += 1
    machine = [
        ("CPU", f"{m.get('cpu_model', '—')} ({m.get('logical_cpus', '—')} logical CPUs)"),
        ("RAM", f"{num(m.get('ram_gb'))} GB" if m.get("ram_gb") is not None else "—"),
        ("GPUs", "; ".join(f"{n}× {d}" for d, n in gpu_groups.items()) or "none"),
        ("GPU driver", str(m.get("gpu_driver") or "—")),
        ("CUDA", str(m.get("cuda_version") or m.get("cuda") or s.get("cuda") or "—")),
        ("CUDA_VISIBLE_DEVICES", str(m.get("cuda_visible_devices") or "—")),
        ("OS", str(m.get("os") or "—")),
        ("Python", str(m.get("python") or "—")),
        ("host", str(m.get("hostname") or "—")),
        ("NVML", str(m.get("nvml_status") or "—")),
        ("RAPL", str(m.get("rapl_status") or "—")),
    ]
    sessions = (get(doc, "environment") or {}).get("sessions") or []
    recorded = [x["accelerator"] for x in sessions if isinstance(x, dict) and x.get("accelerator")]
    if recorded:  # runs since profile schema 3 record the device as PyTorch saw it
        machine.insert(4, ("device", accelerator_text(recorded[-1])))
    if len(sessions) > 1:
        machine.append(("sessions", f"{len(sessions)} (the run was resumed)"))
    profile = get(doc, "profile") or {}
    settings = get(doc, "settings") or {}
    software = [
        ("kit", f"bench {get(doc, 'kit_version', '?')}"),
        ("git commit", str(s.get("git_commit") or "—")),
        ("container image", str(s.get("container_image") or "— (ran on the host)")),
        ("image id", str(s.get("container_image_id") or "—")),
        ("profile", f"{profile.get('name', '—')}: {profile.get('description', '')}".rstrip(": ")),
        ("suite", f"{get(doc, 'suite_name', '—')}: {(get(doc, 'suite') or {}).get('description', '')}".rstrip(": ")),
        (
            "settings",
            ", ".join(
                f"{k} {settings[k]}"
                for k in ("min_window_s", "max_loops", "idle_baseline_s", "warmup_texts", "device")
                if k in settings
            )
            or "—",
        ),
        ("settings sha256", short_hash(get(doc, "settings_sha256"))),
    ]
    libraries = [(k, str(v)) for k, v in sorted((s.get("libraries") or {}).items()) if v]
    absent = sorted(k for k, v in (s.get("libraries") or {}).items() if not v)
    if absent:
        libraries.append(("not installed", ", ".join(absent)))
    return {"machine": machine, "software": software, "libraries": libraries}


def meters_table(doc: Any) -> Table:
    """One row per component: its method (badge), meter, idle power and details; CodeCarbon's side meter below."""
    meters = get(doc, "meters") or {}
    components = meters.get("components") or {}
    notes = meters.get("notes") or {}
    idle_list = list(get(doc, "idle") or [])
    rows = []
    for comp in COMPONENTS:
        info = components.get(comp) or {}
        method = info.get("method")
        if method is None:  # older documents: take the method from the first cell that has this component
            for c in get(doc, "cells") or []:
                if comp in (get(c, "energy") or {}):
                    method = c.energy[comp].method
                    break
        detail = info.get("detail") or {}
        facts = "; ".join(
            f"{label} {num(detail[k]) if isinstance(detail[k], float) else detail[k]}"
            for k, label in (("tdp_w", "TDP W"), ("tdp_source", "TDP from"), ("w_per_gb", "W/GB"), ("total_gb", "GB"))
            if detail.get(k) is not None
        )
        # Net energy uses the idle power measured at the start of each session; end-of-session records (where the
        # runner takes them) only say how far idle power drifted meanwhile.
        starts = [i for i in idle_list if get(i, "phase", "start") == "start"]
        idle_w = [w for w in (get(i, "power_w", {}).get(comp) for i in starts) if w is not None]
        drifts = [d for d in ((get(i, "drift") or {}).get(comp) for i in idle_list) if d is not None]
        drift = f"idle power drift by session end {max(drifts, key=abs) * 100:+.1f}%" if drifts else ""
        rows.append(
            [
                Td(comp, cls="name"),
                Td(method or "—", badge=badge(method, info.get("reason")), cls="label"),
                Td(str(info.get("meter") or "—"), cls="label"),
                Td(num(sum(idle_w) / len(idle_w)) if idle_w else "—", title=f"{len(idle_w)} idle phase(s)"),
                Td(
                    ". ".join(x for x in (facts, info.get("reason") or "", notes.get(comp) or "", drift) if x),
                    cls="text",
                ),
            ]
        )
    side = (meters.get("side") or {}).get("codecarbon") or {}
    if side:
        detail = side.get("detail") or {}
        rows.append(
            [
                Td("CodeCarbon", cls="name"),
                Td("side by side" if side.get("enabled") else "off", cls="label"),
                Td(str(detail.get("version") or "—"), cls="label"),
                Td("—"),
                Td(
                    f"tracking mode {detail.get('tracking_mode', '—')}, power sampled every "
                    f"{detail.get('measure_power_secs', '—')} s (the paper's setup)",
                    cls="text",
                ),
            ]
        )
    columns = [
        Column("component", numeric=False),
        Column("method", numeric=False),
        Column("meter", numeric=False),
        Column("idle power", "W", title="mean over the sessions' start idle phases (nothing running)"),
        Column("details", numeric=False),
    ]
    return Table(columns, rows, css_class="meters")
