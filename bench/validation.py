"""Checks on a results document beyond its schema: consistency and plausibility a reviewer can rely on.

``load_results`` already refuses truncated files, hash mismatches and schema violations. This module checks that the
numbers agree with each other and with physics, and records the conditions of the machine each window ran in.

Two kinds of finding, and which check is which (docs/concepts/measurement.md says the same):

**Invalid** (``Problem.flag`` False): the document's own consistency, or a reading that cannot be. ``bench validate``
calls such a document INVALID (exit 1) and the leaderboard refuses it. A hand edit that clears ``Cell.validity`` is
still caught: ``check_document`` recomputes every check.

- schema and content hash (``load_results``, before any check here);
- consistency: accuracy recomputed from the stored predictions and true labels, split sizes, no duplicate cells,
  every component with a known method label, per-pass duration = window / loops, per-GPU energies add up, a complete
  run with every planned cell;
- implausible readings (``cell_validity``, run on every cell by the runner, which stores the reasons in
  ``Cell.validity``, and again here on every file): the window at least as long as its minimum (and that minimum not
  below the run's setting or the meters' floor); the average power of every device above zero when measured and below
  a bound for that device (GPU: 1.1 x its power limit; an MI250X GCD ``counted_in`` its module's reading has none
  of its own, and that reading must be there); no measured component at exactly 0 J; as many GPUs metered as
  the profile (or the cell's allocation) asked for, and a cell's allocation (``cell.gpus``) equal to its model's
  placement; the same power bounds for every idle baseline;
- power series (``series_energy_problems``, in ``check_document`` only): each component's stored power over time
  integrates to the cell's metered gross energy of that component, within the tolerance its bin layout allows.

**Flags** (``Problem.flag`` True): conditions of the machine during a window, not faults of the document. The
document stays valid: ``bench validate`` prints OK with the number of flagged cells and each flag as a warning (exit
0), the leaderboard accepts it. A flagged cell's energy and duration are kept out of every mean, plot, fit and
ranking (``bench.analysis.sound_cells``) until ``bench run --run-id X --redo-flagged`` runs it again in a new session.

- other processes (``others_problems``, per cell in ``cell_flags``, stored in ``Cell.flags``; per idle baseline in
  ``check_document``): no more than the profile's ``max_other_cpu_share`` of the machine's CPU time used outside the
  run's process tree over a window long enough to judge, and no other process on a metered GPU;
- GPU telemetry at the window's edges (``gpu_telemetry_problems``, in ``cell_flags``): no thermal or power
  throttling, temperatures within ``GPU_TEMPERATURE_RANGE_C``;
- idle drift (``drift_warnings``): idle power that moved more than ``IDLE_DRIFT_LIMIT`` between the start and the end
  of a session; a run-level warning (``ResultDocument.warnings``), written by the runner.

``redo_reasons`` names why a cell would be run again by a redo: failed, flagged or invalid alike. ``split_problems``
parts ``check_document``'s findings into the invalid ones and the flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.analysis import accuracy
from bench.meters.base import METHODS
from bench.meters.series import DIGITS as SERIES_DIGITS
from bench.results import Cell, IdleBaseline, ResultDocument, load_results

#: Relative tolerance for recomputed accuracy (stored as a float; exact up to rounding).
_ACC_TOL = 1e-9
#: Relative tolerance for sums and ratios recomputed from stored floats (JSON round trips are exact for floats; this
#: only absorbs the division and re-multiplication by the loop count).
_REL_TOL = 1e-6

#: A GPU may exceed its power limit only briefly (the limit is enforced over a control window of about a second);
#: a window average more than 10% above it is impossible for a healthy board and means a unit or editing error.
GPU_POWER_LIMIT_FACTOR = 1.1
#: Bound for a measured CPU package: twice the highest TDP of any shipping server CPU (500 W: AMD EPYC 9965, Intel
#: Xeon 6980P), which also covers client parts' short-term PL2 (about 250 W). Its job is to catch unit errors (uJ read
#: as J) and broken counters, not to judge efficiency.
CPU_MAX_W_PER_PACKAGE = 1000.0
#: A TDP x utilization estimate cannot exceed its TDP (utilization <= 1); 10% slack for rounding.
CPU_ESTIMATE_FACTOR = 1.1
#: Bound for DRAM: DDR4/DDR5 modules draw about 0.1 to 0.5 W per GB under load (e.g. 3 to 15 W per 32 GB RDIMM);
#: 1.5 W/GB is three times the worst case.
RAM_MAX_W_PER_GB = 1.5
#: Bound for DRAM when the machine's RAM size is unknown: 1.5 W/GB x 4 TB, more than any single node holds.
RAM_MAX_W = 6000.0
#: Idle power may move by this much (relative) between the start and the end of a session before a warning.
IDLE_DRIFT_LIMIT = 0.05
#: GPU temperatures (C) a window may start and end at: 20 to 95 C, the range ML.ENERGY's validator accepts (as issue 16
#: cites it). Below, the sensor or the room is implausible; above, the GPU is at its thermal limits.
GPU_TEMPERATURE_RANGE_C = (20.0, 95.0)
#: Clocks event reasons (``bench.meters.gpu.CLOCKS_EVENT_REASONS``) that mean the GPU was held back by power or heat:
#: its energy and duration then describe a throttled GPU, not the model. ``hw_slowdown`` is set with either.
THROTTLE_REASONS = {
    "sw_power_cap": "power",
    "hw_power_brake_slowdown": "power",
    "sw_thermal_slowdown": "thermal",
    "hw_thermal_slowdown": "thermal",
    "hw_slowdown": "hardware (thermal or power brake)",
    "board_limit": "power (board limit)",
    "reliability": "reliability (voltage/reliability limit)",
}
#: Share of a window a GPU may spend held back by power or heat (NVML's violation counters, read at both edges)
#: before the window is flagged: catches throttling that started and ended inside the window.
MAX_THROTTLED_SHARE = 0.01
#: Relative rounding of a power series' bins: each mean power is stored to ``bench.meters.series.DIGITS`` (3)
#: significant digits, off by at most half a unit in the last digit: 0.005 x 10^k for a value d.dd x 10^k, at most
#: 0.5% of it (at 1.00 x 10^k; 0.05% at 9.99 x 10^k).
SERIES_ROUNDING = 0.5 * 10.0 ** (1 - SERIES_DIGITS)
#: Bins at each edge of a window whose energy a power series may miss or the meter may count beyond it
#: (``series_energy_problems``).
SERIES_EDGE_BINS = 1
#: Series of fewer bins are not checked against their energy: their two edge bins are a fifth or more of them, and a
#: reader thread delayed at an edge (a loaded machine: CI saw a 3-bin series of a 0.3 s window read 0 W where the
#: window's reading had 0.04 J) leaves more unseen than one bin. Every profile's minimum window (2 s and up, at
#: 10 Hz) makes 20 bins or more.
SERIES_MIN_CHECKED_BINS = 10
#: The share of the machine's CPU time that processes outside the run may use in a window before it is invalid, where
#: the profile does not say (``measurement.max_other_cpu_share``; documents written before it existed).
MAX_OTHER_CPU_SHARE = 0.10


@dataclass(frozen=True)
class Problem:
    """One finding: where (a cell key or a section) and what. ``flag``: a condition of the machine (the document
    stays valid, the cell is kept out of means); otherwise the document is invalid."""

    where: str
    message: str
    flag: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Expectations:
    """What a run's cells are checked against, taken from the document (profile, settings, meters, environment)."""

    settings_min_window_s: float | None = None
    meter_min_window_s: float | None = None
    meter_min_window_by: str | None = None
    device: str | None = None
    gpu_count: int | None = None
    gpu_power_limits_w: Mapping[int, float] | None = None
    profile_gpu_max_power_w: float | None = None
    ram_gb: float | None = None
    max_other_cpu_share: float = MAX_OTHER_CPU_SHARE
    #: the whole profile when the document's parses as one (older or hand-made documents: None, check skipped)
    profile: Any = None

    @classmethod
    def from_document(cls, doc: ResultDocument) -> Expectations:
        """Read the expectations from a (possibly partial, possibly older) document; unknown facts stay None."""
        hardware = doc.profile.get("hardware") if isinstance(doc.profile, dict) else None
        hardware = hardware if isinstance(hardware, dict) else {}
        machine = doc.environment.get("machine") if isinstance(doc.environment, dict) else None
        machine = machine if isinstance(machine, dict) else {}
        limits: dict[int, float] = {}
        for gpu in machine.get("gpus") or []:
            if isinstance(gpu, dict) and _number(gpu.get("power_limit_w")) and isinstance(gpu.get("index"), int):
                limits[gpu["index"]] = float(gpu["power_limit_w"])
        device = hardware.get("device")
        gpu_count = hardware.get("gpu_count")
        measurement = doc.profile.get("measurement") if isinstance(doc.profile, dict) else None
        other_share = _float_or_none(
            (measurement or {}).get("max_other_cpu_share") if isinstance(measurement, dict) else None
        )
        profile = None
        try:
            from bench.config import HardwareProfile

            profile = HardwareProfile.model_validate(doc.profile)
        except Exception:  # a partial or older profile: the placement check needs the whole one
            profile = None
        return cls(
            settings_min_window_s=_float_or_none(doc.settings.get("min_window_s")),
            meter_min_window_s=_float_or_none(doc.meters.get("min_window_s")),
            meter_min_window_by=doc.meters.get("min_window_by"),
            device=device if isinstance(device, str) else None,
            gpu_count=int(gpu_count) if isinstance(gpu_count, int) else (0 if device == "cpu" else None),
            gpu_power_limits_w=limits,
            profile_gpu_max_power_w=_float_or_none(hardware.get("gpu_max_power_w")),
            ram_gb=_float_or_none(machine.get("ram_gb")),
            max_other_cpu_share=other_share if other_share is not None else MAX_OTHER_CPU_SHARE,
            profile=profile,
        )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float_or_none(value: object) -> float | None:
    return float(value) if _number(value) else None  # type: ignore[arg-type]


def _gpu_records(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    gpus = detail.get("gpus")
    return [g for g in gpus if isinstance(g, dict)] if isinstance(gpus, list) else []


def _metered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The GPU records that carry a reading: not those ``counted_in`` another's (an MI250X's second GCD)."""
    return [r for r in records if r.get("counted_in") is None]


def _counted_problems(records: list[dict[str, Any]]) -> list[str]:
    """A record ``counted_in`` another must have no energy of its own, and that other (same node) must be a metered
    record of its module (``scope`` ``gcd-pair``) that no other record is counted in; else it would hide a GPU that
    was not read."""
    out: list[str] = []
    claimed: set[tuple[Any, Any]] = set()
    for r in (r for r in records if r.get("counted_in") is not None):
        into, node = r["counted_in"], r.get("node")
        partner = [p for p in _metered(records) if p.get("index") == into and p.get("node") == node]
        if (
            r.get("energy_j") is not None
            or not partner
            or partner[0].get("scope") != "gcd-pair"
            or (node, into) in claimed
        ):
            out.append(
                f"energy.gpu: GPU {r.get('index')} ({r.get('name', '?')}) is recorded as counted in GPU {into}, but "
                "that GPU's metered record, of scope gcd-pair, is not there (or it has energy of its own, or another "
                "GPU is counted in it)"
            )
        claimed.add((node, into))
    return out


def power_problems(
    component: str, power_w: float, method: str, detail: Mapping[str, Any], expect: Expectations
) -> list[str]:
    """Why an average power of ``component`` is implausible (empty: plausible). Used for cells and idle records."""
    problems: list[str] = []
    measured = method.startswith("measured:")
    if measured and power_w <= 0:
        problems.append(f"energy.{component}: average power {power_w:.3f} W is not above zero (meter not counting?)")
    if component == "gpu":
        records = _gpu_records(detail)
        problems += _counted_problems(records)
        records = _metered(records)
        limits: list[float] = []
        for record in records:
            index = record.get("index")
            limit = _float_or_none(record.get("power_limit_w"))
            if limit is None and isinstance(index, int) and expect.gpu_power_limits_w:
                limit = expect.gpu_power_limits_w.get(index)
            if limit is None:
                limit = expect.profile_gpu_max_power_w
            if limit is not None:
                limits.append(limit)
            gpu_power = _float_or_none(record.get("power_w"))
            label = f"GPU {index} ({record.get('name', '?')})"
            if gpu_power is not None and measured and gpu_power <= 0:
                problems.append(f"energy.gpu: {label} average power {gpu_power:.3f} W is not above zero")
            if gpu_power is not None and limit is not None and gpu_power > GPU_POWER_LIMIT_FACTOR * limit:
                problems.append(
                    f"energy.gpu: {label} average power {gpu_power:.1f} W is above {GPU_POWER_LIMIT_FACTOR:g} x its "
                    f"power limit {limit:g} W"
                )
        if records and len(limits) == len(records):
            bound = GPU_POWER_LIMIT_FACTOR * sum(limits)
            what = f"the power limits of its {len(records)} GPU(s) ({sum(limits):g} W)"
        elif not records and expect.profile_gpu_max_power_w and expect.gpu_count:
            bound = GPU_POWER_LIMIT_FACTOR * expect.profile_gpu_max_power_w * expect.gpu_count
            what = f"the profile's {expect.gpu_count} x {expect.profile_gpu_max_power_w:g} W"
        else:
            bound, what = None, ""
        if bound is not None and power_w > bound:
            problems.append(f"energy.gpu: average power {power_w:.1f} W is above {GPU_POWER_LIMIT_FACTOR:g} x {what}")
    elif component == "cpu":
        tdp_w = _float_or_none(detail.get("tdp_w"))
        if method == "estimated:tdp-utilization" and tdp_w is not None:
            bound = CPU_ESTIMATE_FACTOR * tdp_w
            what = f"{CPU_ESTIMATE_FACTOR:g} x the estimate's own TDP {tdp_w:g} W"
        else:
            domains = detail.get("domains")
            packages = len(domains) if isinstance(domains, list) and domains else detail.get("cpu_packages")
            packages = packages if isinstance(packages, int) and packages > 0 else 1
            bound = CPU_MAX_W_PER_PACKAGE * packages
            what = f"{CPU_MAX_W_PER_PACKAGE:g} W per package x {packages}"
        if power_w > bound:
            problems.append(f"energy.cpu: average power {power_w:.1f} W is above {what}")
    elif component == "ram":
        ram_gb = _float_or_none(detail.get("total_gb")) or expect.ram_gb
        bound = RAM_MAX_W_PER_GB * ram_gb if ram_gb else RAM_MAX_W
        what = f"{RAM_MAX_W_PER_GB:g} W/GB x {ram_gb:g} GB" if ram_gb else f"{RAM_MAX_W:g} W"
        if power_w > bound:
            problems.append(f"energy.ram: average power {power_w:.1f} W is above {what}")
    return problems


def gpu_telemetry_problems(detail: Mapping[str, Any]) -> list[str]:
    """Throttling and out-of-range temperatures in the GPU meter's per-GPU records (``_start``/``_end`` telemetry
    of ``bench.meters.gpu``); records without telemetry (older documents, unsupported queries) are not judged."""
    problems: list[str] = []
    low, high = GPU_TEMPERATURE_RANGE_C
    for record in _gpu_records(detail):
        label = f"GPU {record.get('index')} ({record.get('name', '?')})"
        for edge in ("start", "end"):
            temperature = _float_or_none(record.get(f"temperature_c_{edge}"))
            if temperature is not None and not low <= temperature <= high:
                problems.append(
                    f"energy.gpu: {label} at {temperature:g} C at the window's {edge}, outside {low:g}-{high:g} C"
                )
            names = record.get(f"clocks_event_reason_names_{edge}")  # edge == "start"/"end"
            throttled = [n for n in names if n in THROTTLE_REASONS] if isinstance(names, list) else []
            if throttled:
                kinds = sorted({THROTTLE_REASONS[n] for n in throttled})
                problems.append(
                    f"energy.gpu: {label} throttled ({', '.join(kinds)}: {', '.join(throttled)}) at the window's {edge}"
                )
        duration_s = _float_or_none(record.get("duration_s"))
        for kind in ("power", "thermal"):
            held_s = _float_or_none(record.get(f"throttled_{kind}_s"))
            if held_s is not None and duration_s and held_s / duration_s > MAX_THROTTLED_SHARE:
                problems.append(
                    f"energy.gpu: {label} held back by {kind} for {held_s:.2f} s of the {duration_s:.2f} s window "
                    f"(NVML violation counters; limit {MAX_THROTTLED_SHARE:.0%})"
                )
    return problems


def others_problems(others: Any, limit: float) -> list[str]:
    """Why a window shared the machine (empty: it did not, or it could not be judged). ``others``: an ``OtherLoad``.

    CPU: judged windows only (``OtherLoad.judged``: long enough for the tick-counted CPU times), flagged when others
    used more than ``limit`` of the machine's CPU time. GPUs: any process NVML listed on a metered GPU that is not in
    the run's process tree (pids that cannot be attributed are not flagged; ``bench.meters.others``)."""
    if others is None:
        return []
    problems: list[str] = []
    share = others.other_cpu_share
    if others.judged and share is not None and share > limit:
        other_s = (others.machine_busy_cpu_s or 0.0) - (others.own_cpu_s or 0.0)
        problems.append(
            f"other processes used {share:.1%} of the machine's CPU time (limit {limit:.0%}; {other_s:.2f} CPU-s of "
            f"{others.wall_s:.2f} s x {others.logical_cpus} CPUs): machine-scope energy counts them"
        )
    foreign: dict[tuple[int, int], Any] = {}
    for proc in others.gpu_processes or []:
        if proc.own is False:
            foreign.setdefault((proc.gpu_index, proc.pid), proc)
    if foreign:
        listed = ", ".join(
            f"GPU {gpu} pid {pid}"
            + (f" ({p.name})" if p.name else "")
            + (f" {p.used_memory_bytes / 2**20:.0f} MiB" if p.used_memory_bytes is not None else "")
            for (gpu, pid), p in sorted(foreign.items())
        )
        problems.append(f"other process(es) on a metered GPU: {listed}: the GPU's energy counts them")
    for gpu, extra in sorted((getattr(others, "gpu_other_tenants", None) or {}).items()):
        problems.append(
            f"GPU {gpu} ran {extra} compute process(es) more than this run's own CUDA contexts there (pids not "
            "visible here, a container): another tenant; the GPU's energy counts it"
        )
    return problems


def idle_others_warnings(idle: IdleBaseline, limit: float) -> list[str]:
    """Run warnings for an idle baseline that other processes shared (its net energies rest on it)."""
    return [
        f"session {idle.session}: idle baseline ({idle.phase}): {p}; net energies of this session rest on it"
        for p in others_problems(idle.others, limit)
    ]


def cell_flags(cell: Cell, expect: Expectations) -> list[str]:
    """The conditions of the machine during one cell's window (empty: none seen): other processes
    (``others_problems``) and GPU throttling or temperature (``gpu_telemetry_problems``). Failed cells have none."""
    if cell.status != "ok" or cell.window is None:
        return []
    flags: list[str] = []
    gpu = cell.energy.get("gpu")
    if gpu is not None and gpu.energy_j is not None:
        flags.extend(gpu_telemetry_problems(gpu.detail))
    flags.extend(others_problems(cell.others, expect.max_other_cpu_share))
    return flags


def redo_command(doc: Any, folder: Path | str | None = None) -> str:
    """The ``bench run`` line that repairs run ``doc`` in place (``--redo-flagged``): its profile when not the
    default ``cpu``, the reports folder that holds ``folder`` (the run's folder or its results.json, named after the
    run as ``bench run`` names it) when not ``reports``, and its run id; ``--run-id`` alone restores the rest of what
    the run recorded (``bench.run.options.restored_fields``). ``doc``: a ResultDocument or its dict."""
    import shlex

    def get(key: str) -> Any:
        return doc.get(key) if isinstance(doc, dict) else getattr(doc, key, None)

    profile = get("profile")
    profile_name = profile.get("name") if isinstance(profile, dict) else None
    words = ["bench", "run"]
    if profile_name and profile_name != "cpu":
        words += ["--profile", str(profile_name)]
    if folder is not None:
        run_folder = Path(folder).parent if Path(folder).name == "results.json" else Path(folder)
        if run_folder.name == str(get("run_id")) and run_folder.parent != Path("reports"):
            words += ["--reports-dir", str(run_folder.parent)]
    return shlex.join([*words, "--run-id", str(get("run_id") or "RUN"), "--redo-flagged"])


def redo_reasons(cell: Cell) -> list[str]:
    """Why ``--redo-flagged`` runs ``cell`` again (empty: it stays): its error when it failed, its flags, and its
    stored validity reasons (implausible readings)."""
    if cell.status == "failed":
        error = cell.error
        return [f"failed ({error.type}: {error.message})" if error is not None else "failed"]
    return [*cell.flags, *cell.validity]


#: Two power limits within this many watts are the same setting (NVML counts mW; the kit sets whole watts).
POWER_LIMIT_TOLERANCE_W = 0.5


def limit_problems(model: str, records: list[dict[str, Any]]) -> list[str]:
    """Where a cell's GPUs did not run at the power limit its model asks for (``bench.run.power`` sets it): each GPU
    record's limit read at the window's edges (``power_limit_w_start``/``_end``, ``bench.meters.gpu``) against
    ``power_limit_w`` of the model's serving configuration. Empty for models without one, and for records that did
    not read a limit."""
    from bench.catalog.models import split_serving
    from bench.errors import ConfigError

    try:
        wanted = split_serving(model)[1].get("power_limit_w")
    except ConfigError:
        return []
    if wanted is None:
        return []
    out = []
    for r in records:
        for edge in ("start", "end"):
            read = r.get(f"power_limit_w_{edge}")
            if isinstance(read, (int, float)) and abs(float(read) - float(wanted)) > POWER_LIMIT_TOLERANCE_W:
                out.append(
                    f"energy.gpu: GPU {r.get('index')} power limit read {read:g} W at the window's {edge}, the model "
                    f"asks for power_limit_w={wanted}"
                )
    return out


def cell_validity(cell: Cell, expect: Expectations) -> list[str]:
    """Every plausibility problem of one cell (empty list: valid), machine conditions aside (``cell_flags``).
    Failed cells have none (they have an error)."""
    if cell.status != "ok" or cell.window is None:
        return []
    reasons: list[str] = []
    window = cell.window
    if window.duration_s < window.min_window_s:
        tail = f" (max_loops reached after {window.loops} loops)" if window.max_loops_reached else ""
        reasons.append(f"window {window.duration_s:.3f} s shorter than the minimum {window.min_window_s:g} s{tail}")
    if expect.settings_min_window_s is not None and window.min_window_s < expect.settings_min_window_s * (1 - _REL_TOL):
        reasons.append(
            f"window minimum {window.min_window_s:g} s is below the run's setting {expect.settings_min_window_s:g} s"
        )
    if expect.meter_min_window_s and window.min_window_s < expect.meter_min_window_s * (1 - _REL_TOL):
        reasons.append(
            f"window minimum {window.min_window_s:g} s is below the {expect.meter_min_window_s:g} s that meter "
            f"{expect.meter_min_window_by or '?'} needs"
        )
    if cell.duration_s is not None and window.loops >= 1:
        per_pass = window.duration_s / window.loops
        if abs(cell.duration_s - per_pass) > _REL_TOL * max(per_pass, 1e-12):
            reasons.append(f"duration_s {cell.duration_s:g} s is not window.duration_s / loops ({per_pass:g} s)")
    for component, value in cell.energy.items():
        if value.method not in METHODS:
            reasons.append(f"energy.{component}: unknown method {value.method!r}")
        if value.energy_j is None:
            continue
        if value.method == "unavailable":
            reasons.append(f"energy.{component}: a number labelled 'unavailable'")
        if value.energy_j == 0.0 and value.method.startswith("measured:"):
            reasons.append(f"energy.{component}: measured exactly 0 J (meter not counting?)")
            continue
        if cell.duration_s:
            reasons.extend(
                power_problems(component, value.energy_j / cell.duration_s, value.method, value.detail, expect)
            )
        if component == "gpu":
            records = _metered(_gpu_records(value.detail))
            reasons.extend(limit_problems(cell.model, records))  # the power limit the model asks for, in force
            parts = [_float_or_none(r.get("energy_j")) for r in records]
            if records and all(p is not None for p in parts):
                window_j = value.energy_j * window.loops
                summed = sum(p for p in parts if p is not None)
                if abs(summed - window_j) > _REL_TOL * max(window_j, 1e-9):
                    reasons.append(
                        f"energy.gpu: the per-GPU energies sum to {summed:.3f} J per window, the cell says "
                        f"{window_j:.3f} J ({value.energy_j:.3f} J x {window.loops} loops)"
                    )
    # A Slurm task is given the model's GPUs, not the node's: the cell records its allocation (cell.gpus). That field
    # is part of the document itself, so it is held against the model's placement on the profile before it is used.
    placed = placement_gpus(cell.model, expect.profile) if cell.gpus is not None else None
    if placed is not None and cell.gpus != placed:
        reasons.append(
            f"GPU count: the cell records {cell.gpus} GPU(s), but model {cell.model!r} is placed on {placed} GPU(s) "
            f"of profile {expect.profile.name!r}"
        )
    wanted_gpus = cell.gpus if cell.gpus is not None else expect.gpu_count
    if wanted_gpus is not None:
        gpu = cell.energy.get("gpu")
        seen = len(_gpu_records(gpu.detail)) if gpu is not None and gpu.energy_j is not None else 0
        if seen != wanted_gpus:
            why = f" ({gpu.reason})" if gpu is not None and gpu.energy_j is None and gpu.reason else ""
            asks = "the profile asks" if cell.gpus is None else "the cell's allocation has"
            reasons.append(f"GPU count: {asks} for {wanted_gpus} GPU(s), the GPU meter saw {seen}{why}")
    return reasons


def series_energy_problems(cell: Cell) -> list[str]:
    """Where a cell's power series (``Cell.power_series``) and its metered energy disagree: per component, the
    series' integral (mean power per bin x bin width, summed: J over the whole window, all loops) against the cell's
    gross energy of that component (J per pass x ``window.loops``). Empty when they agree, or when the cell has no
    series (older documents, multi-node windows) or a component no number.

    Tolerance, from the bin layout of ``bench.meters.series`` (``encoding = "mean-power-bins-v1"``):

    - rounding: every bin is stored to 3 significant digits, so the integral is within ``SERIES_ROUNDING`` (0.5%) of
      what was recorded;
    - the edges: the series runs from the meter set's first read to its last, inside each primary meter's own window
      (each meter opens before and closes after the read; a counter read lags the counter's last update). Bins are
      never finer than the source resolves (the read period, at least ``COUNTER_BINS`` counter updates, or the sample
      period), so what falls between an edge read and the meter's own edge is at most ``SERIES_EDGE_BINS`` (one) bin
      at each end, at no more than the series' highest bin power.

    So ``|integral - metered| <= SERIES_ROUNDING x integral + 2 x SERIES_EDGE_BINS x interval_s x max(watts)``. A
    series of fewer than ``SERIES_MIN_CHECKED_BINS`` bins is not checked: its layout resolves no more.
    Raises nothing; a component whose metered energy is stored without a series is not checked."""
    series = cell.power_series
    if series is None or cell.window is None or cell.status != "ok":
        return []
    out: list[str] = []
    for component, curve in series.components.items():
        value = cell.energy.get(component)
        if value is None or value.energy_j is None or len(curve.watts) < SERIES_MIN_CHECKED_BINS:
            continue
        metered_j = value.energy_j * cell.window.loops
        integral_j = sum(curve.watts) * curve.interval_s
        tolerance_j = SERIES_ROUNDING * integral_j + 2 * SERIES_EDGE_BINS * curve.interval_s * max(curve.watts)
        if abs(integral_j - metered_j) > tolerance_j:
            out.append(
                f"power_series.{component}: its integral is {integral_j:.4g} J over the window ({len(curve.watts)} "
                f"bins of {curve.interval_s:.4g} s), but the cell's metered {component} energy is {metered_j:.4g} J "
                f"({value.energy_j:.4g} J x {cell.window.loops} loops); they may differ by {tolerance_j:.3g} J "
                "(rounding and one bin at each edge): the file was changed after the run, or the series lost "
                "samples; restore the results.json the run wrote, or measure the cell again in a new run"
            )
    return out


def placement_gpus(model: str, profile: Any) -> int | None:
    """GPUs over all nodes the model's placement on ``profile`` has (``placement_for``, as ``bench slurm`` and the
    runner place it); None when the profile or model is unknown or the model does not fit."""
    if profile is None:
        return None
    from bench.catalog.models import get_model_spec
    from bench.catalog.placement import placement_for
    from bench.errors import BenchError

    try:
        return placement_for(get_model_spec(model), profile).total_gpus
    except BenchError:
        return None


def idle_drift(start: IdleBaseline, end: IdleBaseline) -> dict[str, float | None]:
    """Per component, the relative change of idle power from ``start`` to ``end`` (None where not comparable)."""
    drift: dict[str, float | None] = {}
    for component in sorted(set(start.power_w) | set(end.power_w)):
        a, b = start.power_w.get(component), end.power_w.get(component)
        drift[component] = (b - a) / a if a is not None and b is not None and a > 0 else None
    return drift


def drift_warnings(start: IdleBaseline, end: IdleBaseline, limit: float = IDLE_DRIFT_LIMIT) -> list[str]:
    """A warning per measured component whose idle power moved more than ``limit`` between start and end of a session.

    Estimated components are not flagged (their drift is still stored in the end record): an estimate's idle "power"
    is a model of utilization or a constant, not a reading, so its change says another process ran (which the
    estimate's ``mean_utilization`` already shows), not that the machine's baseline moved.
    """
    out: list[str] = []
    for component, rel in idle_drift(start, end).items():
        measured = start.methods.get(component, "").startswith("measured:") and end.methods.get(
            component, ""
        ).startswith("measured:")
        if measured and rel is not None and abs(rel) > limit:
            out.append(
                f"session {end.session}: idle {component} power drifted {rel:+.1%} "
                f"({start.power_w[component]:.2f} W at start, {end.power_w[component]:.2f} W at end; "
                f"{end.methods.get(component, '?')}), beyond {limit:.0%}: net energies of this session rest on a "
                "baseline that moved"
            )
    return out


def check_document(doc: ResultDocument) -> list[Problem]:
    """Every finding on a loaded document (empty list: consistent, plausible, nothing flagged), in document order.

    Findings with ``flag`` True are conditions of the machine (other processes, throttling, temperature; the document
    stays valid, ``split_problems``); every other finding makes the document invalid. Plausibility and flags are
    recomputed for every ok cell (so a hand edit that clears ``validity`` is still caught); reasons stored at run time
    that the recomputation does not reproduce are reported too. A flag the recomputation finds that the cell does not
    store in ``Cell.flags`` is invalid: the stored flags decide which cells the means leave out, so clearing them would
    let a disturbed window into them. Raises nothing."""
    problems: list[Problem] = []
    expect = Expectations.from_document(doc)
    seen: set[tuple[str, str, int]] = set()
    for cell in doc.cells:
        where = f"cell {cell.dataset}/{cell.model}/rep{cell.repetition}"
        if cell.key in seen:
            problems.append(Problem(where, "duplicate cell"))
        seen.add(cell.key)
        dataset = doc.datasets.get(cell.dataset)
        if dataset is None:
            problems.append(Problem(where, f"data set {cell.dataset!r} is not described in 'datasets'"))
            continue
        if cell.repetition >= len(dataset.splits):
            problems.append(Problem(where, f"repetition {cell.repetition} has no recorded split"))
            continue
        if cell.status != "ok":
            continue
        split = dataset.splits[cell.repetition]
        if cell.n_test != len(split.test_idx):
            problems.append(Problem(where, f"n_test={cell.n_test} but the split has {len(split.test_idx)} test items"))
        truth = dataset.test_labels.get(str(cell.repetition))
        if cell.predictions is not None and truth is not None and len(truth) == len(cell.predictions):
            recomputed = accuracy(truth, cell.predictions)
            if abs(recomputed - (cell.accuracy or 0.0)) > _ACC_TOL:
                problems.append(Problem(where, f"accuracy {cell.accuracy} but predictions give {recomputed:.6f}"))
        reasons = cell_validity(cell, expect)
        problems.extend(Problem(where, r) for r in reasons)
        problems.extend(Problem(where, f"marked invalid at run time: {r}") for r in cell.validity if r not in reasons)
        flags = cell_flags(cell, expect)
        problems.extend(Problem(where, f, flag=True) for f in flags if f in cell.flags)
        problems.extend(
            Problem(where, f"{f} (not in the cell's stored flags: the file was edited after the run)")
            for f in flags
            if f not in cell.flags
        )
        problems.extend(Problem(where, f"flagged at run time: {f}", flag=True) for f in cell.flags if f not in flags)
        problems.extend(Problem(where, p) for p in series_energy_problems(cell))
    for i, idle in enumerate(doc.idle):
        where = f"idle[{i}] (session {idle.session}, {idle.phase})"
        for component, power_w in idle.power_w.items():
            method = idle.methods.get(component, "unavailable")
            if power_w is None or method not in METHODS:
                continue
            detail = idle.detail.get(component) if isinstance(idle.detail.get(component), dict) else {}
            problems.extend(Problem(where, p) for p in power_problems(component, power_w, method, detail, expect))
        problems.extend(Problem(where, p, flag=True) for p in others_problems(idle.others, expect.max_other_cpu_share))
    for name, dataset in doc.datasets.items():
        for split in dataset.splits:
            if set(split.train_idx) & set(split.test_idx):
                problems.append(Problem(f"datasets.{name}", f"repetition {split.repetition}: train and test overlap"))
            if len(split.test_idx) != dataset.n_test or len(split.train_idx) != dataset.n_train:
                problems.append(
                    Problem(
                        f"datasets.{name}", f"repetition {split.repetition}: split sizes differ from n_train/n_test"
                    )
                )
    if doc.status == "complete":
        per_model = doc.suite.get("model_repetitions") or {}
        expected = len(doc.suite.get("datasets", [])) * sum(
            min(per_model.get(m, doc.suite.get("repetitions", 0)), doc.suite.get("repetitions", 0))
            for m in doc.suite.get("models", [])
        )
        if len(doc.cells) != expected:
            problems.append(Problem("cells", f"status complete but {len(doc.cells)} cells for a grid of {expected}"))
    return problems


def split_problems(problems: list[Problem]) -> tuple[list[Problem], list[Problem]]:
    """``check_document``'s findings parted into (invalid, flags): the first make a document INVALID, the second are
    conditions of the machine (warnings; the document stays valid). Order is kept within each."""
    return [p for p in problems if not p.flag], [p for p in problems if p.flag]


def flagged_cells(problems: list[Problem]) -> list[str]:
    """The cells (``Problem.where``, ``cell <dataset>/<model>/rep<n>``) with at least one flag, in first-seen order;
    idle baselines and other sections are not cells and are not counted."""
    return list(dict.fromkeys(p.where for p in problems if p.flag and p.where.startswith("cell ")))


def validate_file(path: Path | str) -> tuple[ResultDocument, list[Problem]]:
    """Load (hash, schema) and check a results file; ResultsError if it cannot be loaded at all."""
    doc = load_results(path)
    return doc, check_document(doc)
