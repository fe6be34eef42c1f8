"""The result schema (versioned), atomic writes, and loading with validation, hash check and migration.

One JSON document per run, ``reports/<run-id>/results.json``. Reports and the leaderboard read only this format.
The document carries a ``content_hash`` (sha256 over its canonical JSON without that field), so a file truncated or
edited by hand is detected. Old schema versions load through the explicit functions in ``MIGRATIONS``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.errors import ResultsError
from bench.fsutil import atomic_write_bytes

# 2: cells gained ``gpus`` and ``nodes`` (multi-GPU / multi-node allocations), documents ``parts`` (runs merged from
# Slurm tasks). A v1 document is a v2 document without them; the bump makes an older kit say "upgrade bench" on a v2
# file instead of failing on unknown fields.
# 3: cells and idle baselines gained ``others`` (the CPU time and GPU processes of everything outside the run's own
# process tree over the window), documents ``grid`` (the carbon intensity, PUE and price the derived gCO2e and cost
# rest on) and ``calibration`` (each session's reference-workload index). Optional (None or empty in older
# documents): a v2 document is a v3 document without them.
# 4: cells gained ``truncated`` (LLM texts cut to fit the context window), ``power_series`` (power over time per
# component), ``serving`` (an LLM cell's serving mode, latency and throughput) and ``training`` (the metered training
# window). Optional (None in older documents): a v3 document is a v4 document without them. A v3 kit refuses a v4
# document by its version, not on an unknown field.
# 5: the reasons a cell is doubtful are split by what they mean. ``Cell.flags``: conditions of the machine during the
# window (other processes, throttling, temperature out of range): the numbers are kept but left out of every mean and
# ranking until the cell is redone (``bench run --run-id X --redo-flagged``); the document stays valid.
# ``Cell.validity``: implausible readings and inconsistencies (power above the limit, a counter's 0 J): invalid as
# before. Documents gained ``repairs`` (which cells a redo session ran again, when, and why). A v4 document's
# validity reasons that are machine conditions (``MACHINE_CONDITION_MARKERS``) move to ``flags``.
# 6: LLM cells gained ``arithmetic`` (issue 27): the pass's prompt, cached and generated tokens, the parameters one
# token runs through (active ones for mixture-of-experts models) with their source, and the derived 2 x parameters x
# computed tokens; ``serving.prefix`` records the reuse of the prompt's shared beginning (``prefix_cache=true``).
# Optional (None in older documents and for other models): a v5 document is a v6 document without them.
SCHEMA_VERSION = 6
DOCUMENT_KIND = "bench.results"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnergyValue(_Model):
    """Energy of one component for one pass over the test set (window energy / loops)."""

    energy_j: Annotated[float, Field(ge=0)] | None
    net_energy_j: float | None = Field(default=None, description="energy_j minus idle power x duration")
    method: str
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_silent_zero(self) -> EnergyValue:
        if self.energy_j is None and not self.reason:
            raise ValueError("energy_j is null without a reason")
        return self


class Window(_Model):
    """The metered window: whole test-set inference repeated ``loops`` times until ``duration_s >= min_window_s``."""

    duration_s: Annotated[float, Field(ge=0)]
    loops: Annotated[int, Field(ge=1)]
    min_window_s: Annotated[float, Field(ge=0)]
    max_loops_reached: bool = False


class TrainingWindow(_Model):
    """The metered training window of a trained model (``bench.run.cell.measure_training``): ``fit`` on the split's
    training texts, repeated ``loops`` times until ``min_window_s`` as the inference window, with the same meters and
    idle baseline. ``duration_s`` and ``energy`` are per fit (window / loops). Never part of an inference figure.
    Optional in every schema version: None for zero-shot models and in documents written before it existed."""

    duration_s: Annotated[float, Field(ge=0)] = Field(description="one fit (s)")
    loops: Annotated[int, Field(ge=1)]
    min_window_s: Annotated[float, Field(ge=0)]
    max_loops_reached: bool = False
    n_train: Annotated[int, Field(ge=0)] | None = None
    energy: dict[str, EnergyValue] = Field(default_factory=dict, description="one fit, per component (J)")


class CellError(_Model):
    type: str
    message: str
    traceback: str | None = None


class NodeEnergy(_Model):
    """One node's share of a multi-node cell, per pass: its own window duration and energy per component.

    The cell's own numbers follow the paper: energy summed over every node's meters, duration the maximum.
    """

    host: str
    duration_s: Annotated[float, Field(ge=0)]
    energy_j: dict[str, float | None]
    methods: dict[str, str] = Field(default_factory=dict)


class GpuProcess(_Model):
    """One process NVML listed as running compute work on a metered GPU (``nvmlDeviceGetComputeRunningProcesses``)."""

    gpu_index: int
    pid: int
    used_memory_bytes: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="GPU memory the process held (bytes); None where NVML does not say (MIG, WSL)"
    )
    name: str | None = Field(default=None, description="process name where visible in this PID namespace")
    own: bool | None = Field(
        default=None,
        description="True: the run's own process tree; False: another process; None: the pid is not visible here "
        "(NVML reports host pids, a container sees its own), so it cannot be attributed",
    )
    at: Literal["start", "end"] = "start"


class OtherLoad(_Model):
    """What ran on the machine besides the run over one window (a cell's or an idle baseline's; bench.meters.others).

    CPU: ``other_cpu_share`` = (system-wide busy CPU time - the run's own process tree's CPU time) / (``wall_s`` x
    ``logical_cpus``), from ``psutil.cpu_times()`` (/proc/stat) and ``psutil.Process.cpu_times()``. Both count in
    clock ticks (10 ms on Linux), so a short window cannot be judged: ``judged`` is False (with ``note``) when the
    window is shorter than ``bench.meters.others.MIN_JUDGED_S``; the share is still stored. GPUs: the compute
    processes NVML lists on the metered GPUs at the window's start and end.
    """

    wall_s: Annotated[float, Field(ge=0)]
    logical_cpus: Annotated[int, Field(ge=1)]
    machine_busy_cpu_s: float | None = Field(default=None, description="all CPUs' busy time over the window (s)")
    own_cpu_s: float | None = Field(default=None, description="the run's process and its children's CPU time (s)")
    other_cpu_share: float | None = Field(
        default=None,
        description="(machine_busy_cpu_s - own_cpu_s) / (wall_s x logical_cpus), kept within [0, 1] (the two are "
        "counted in ticks by different accounts); None: not measured",
    )
    resolution_share: float | None = Field(
        default=None, description="the share's quantization step: clock ticks of the counters / (wall x CPUs)"
    )
    judged: bool = False
    note: str | None = None
    gpu_processes: list[GpuProcess] | None = Field(
        default=None, description="NVML compute processes on the metered GPUs; None: no GPU metered or NVML failed"
    )
    gpu_note: str | None = None
    gpu_other_tenants: dict[int, int] | None = Field(
        default=None,
        description="per metered GPU index: compute processes NVML listed beyond the run's own CUDA contexts there "
        "that could not be attributed by pid (NVML reports host pids, a container sees its own): another tenant",
    )


class TruncatedText(_Model):
    """A test text cut to fit an LLM's context window (``--truncate``): its position in the split's test texts, and
    its prompt's length in tokens before and after the cut."""

    index: Annotated[int, Field(ge=0)]
    prompt_tokens: Annotated[int, Field(ge=1)]
    kept_tokens: Annotated[int, Field(ge=1)]


class ComponentSeries(_Model):
    """One component's power over a window, as mean power per equal bin (``bench.meters.series``).

    ``watts[k]`` is the mean power (W, 3 significant digits) over ``[t0_s + k * interval_s, t0_s + (k + 1) *
    interval_s]``, in seconds since the window opened; ``sum(watts) * interval_s`` is the window's energy.
    """

    method: str = Field(description="the component's energy method (what the watts rest on)")
    source: str = Field(description="'counter' (read and differenced), 'samples' (the meter's own), or both joined")
    t0_s: float = 0.0
    interval_s: Annotated[float, Field(gt=0)]
    watts: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1, max_length=600)]
    reads: Annotated[int, Field(ge=0)] | None = Field(default=None, description="counter reads in the window")


class PowerSeries(_Model):
    """A window's power over time per component (issue 16, item 5; ``bench.meters.series``). The whole metered
    window, all its loops: not divided per pass. ``missing``: per component without a series, why."""

    encoding: Literal["mean-power-bins-v1"] = "mean-power-bins-v1"
    window_s: Annotated[float, Field(ge=0)]
    hz: Annotated[float, Field(gt=0)] = Field(description="how often counters were read (per second)")
    components: dict[str, ComponentSeries] = Field(default_factory=dict)
    missing: dict[str, str] = Field(default_factory=dict)


class PrefixReuse(_Model):
    """``prefix_cache=true`` on the HF backend, last pass of the window: the prompt's shared beginning computed once
    and reused (``bench.backends.hf_pipeline``). ``texts_whole``: prompts that did not begin with its tokens (or all,
    where there is no prefix), computed whole; ``why_whole`` says why (None when every text reused it)."""

    prefix_tokens: Annotated[int, Field(ge=0)]
    texts_reused: Annotated[int, Field(ge=0)]
    texts_whole: Annotated[int, Field(ge=0)]
    why_whole: str | None = None


class ServingStats(_Model):
    """How an LLM cell was served and how fast, from the last pass of its window (``bench.run.cell.serving_stats``).

    ``latency_*_s``: what one request waited, from the backend's timed engine calls: in ``sequential`` serving its own
    call, in ``batched`` and ``scoring`` the call of its batch (a batch's requests finish together; vLLM's batched
    serving is one call for the whole split). ``batch_*_s``: seconds per engine call (batched and scoring only).
    ``texts_per_s``: test texts over the pass's duration (the cell's ``duration_s``)."""

    serving: str
    batch_size: Annotated[int, Field(ge=1)]
    requests: Annotated[int, Field(ge=0)]
    calls: Annotated[int, Field(ge=0)]
    latency_median_s: Annotated[float, Field(ge=0)] | None = None
    latency_p95_s: Annotated[float, Field(ge=0)] | None = None
    batch_median_s: Annotated[float, Field(ge=0)] | None = None
    batch_p95_s: Annotated[float, Field(ge=0)] | None = None
    texts_per_s: Annotated[float, Field(ge=0)] | None = None
    prefix: PrefixReuse | None = Field(default=None, description="prefix_cache=true: the prefix's reuse (v6)")


class Arithmetic(_Model):
    """An LLM cell's arithmetic for one pass over the test texts (``bench.arithmetic.arithmetic_record``): derived,
    never measured. ``flop`` = 2 x ``params`` x ``computed_tokens`` (a forward pass multiplies every token by each
    weight once, a multiply and an add: Kaplan et al. 2020, "Scaling Laws for Neural Language Models", C_forward ~ 2N
    per token); attention over the context is left out, and padding is not counted. A reference quantity for the
    "x times the calibration's J per FLOP" ratio, not the work the device did."""

    prompt_tokens: Annotated[int, Field(ge=0)] = Field(
        description="tokens of every prompt (scoring: and of the labels' answers), as the model reads them"
    )
    cached_tokens: Annotated[int, Field(ge=0)] = Field(
        default=0, description="of the prompt tokens, those read from a reused KV cache instead of computed"
    )
    generated_tokens: Annotated[int, Field(ge=0)]
    computed_tokens: Annotated[int, Field(ge=0)] = Field(description="prompt - cached + generated tokens")
    params: Annotated[int, Field(ge=1)] = Field(description="parameters per token (active ones for MoE models)")
    params_source: str
    flop: Annotated[float, Field(ge=0)] = Field(description="2 x params x computed_tokens, one pass (FLOP)")
    method: str = "derived:2*params*tokens"


class Cell(_Model):
    """One (dataset, model, repetition): accuracy and per-pass duration and energy."""

    dataset: str
    model: str
    repetition: Annotated[int, Field(ge=0)]
    status: Literal["ok", "failed"]
    started_at: str
    finished_at: str
    error: CellError | None = None
    n_test: Annotated[int, Field(ge=0)] | None = None
    accuracy: Annotated[float, Field(ge=0, le=1)] | None = None
    macro_f1: Annotated[float, Field(ge=0, le=1)] | None = None
    invalid_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    load_s: Annotated[float, Field(ge=0)] | None = None
    train_s: Annotated[float, Field(ge=0)] | None = None
    duration_s: Annotated[float, Field(ge=0)] | None = Field(default=None, description="one pass over the test set")
    window: Window | None = None
    energy: dict[str, EnergyValue] = Field(default_factory=dict)
    codecarbon: dict[str, EnergyValue] | None = None
    predictions: list[int] | None = None
    validity: list[str] = Field(
        default_factory=list, description="implausible readings and inconsistencies; empty: valid (v5: flags apart)"
    )
    flags: list[str] = Field(
        default_factory=list,
        description="conditions of the machine during the window (other processes, throttling, temperature): the "
        "numbers are kept out of means and rankings until the cell is redone (v5)",
    )
    tokens: dict[str, int] | None = Field(
        default=None, description="LLMs, one pass: requests, input_tokens, output_tokens"
    )
    answers_sample: list[str] | None = Field(default=None, description="LLMs: the first raw answers of the pass")
    gpus: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="GPUs the cell ran on when not the profile's count (a Slurm task's allocation)"
    )
    nodes: list[NodeEnergy] | None = Field(
        default=None, description="multi-node cells: each node's duration and energy (the cell sums / takes the max)"
    )
    others: OtherLoad | None = Field(
        default=None, description="what else ran on the machine during the window (v3; None in older documents)"
    )
    truncated: list[TruncatedText] | None = Field(
        default=None,
        description="LLMs run with --truncate: the test texts cut to fit the context window (None: none was cut)",
    )
    power_series: PowerSeries | None = Field(
        default=None, description="power over time in the window, per component (None in older documents)"
    )
    serving: ServingStats | None = Field(
        default=None, description="LLM cells: serving mode, latency and throughput (None: not an LLM, or older)"
    )
    training: TrainingWindow | None = Field(
        default=None, description="trained models: the metered fit (None: zero-shot, or an older document)"
    )
    arithmetic: Arithmetic | None = Field(
        default=None, description="LLM cells: tokens and the model's arithmetic per pass (v6; derived)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Cell:
        if self.status == "failed" and self.error is None:
            raise ValueError("a failed cell needs an error")
        if self.status == "ok":
            missing = [f for f in ("accuracy", "duration_s", "window", "n_test") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"an ok cell needs {', '.join(missing)}")
            for component in ("gpu", "cpu", "ram"):
                if component not in self.energy:
                    raise ValueError(f"an ok cell needs energy.{component} (null with a reason if unmeasured)")
            if self.predictions is not None and len(self.predictions) != self.n_test:
                raise ValueError(f"{len(self.predictions)} predictions for n_test={self.n_test}")
        return self

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.dataset, self.model, self.repetition)


class SplitRecord(_Model):
    repetition: int
    seed: int
    train_idx: list[int]
    test_idx: list[int]


class DatasetRecord(_Model):
    """A data set as it was used: pin, labels, and the exact split indices of every repetition."""

    name: str
    pin: dict[str, Any]
    label_names: list[str]
    language: str
    n_items: int
    n_train: int
    n_test: int
    splits: list[SplitRecord]
    splits_sha256: str
    test_labels: dict[str, list[int]] = Field(
        default_factory=dict, description="per repetition (as a string key), the true labels of the test split"
    )

    def same_data(self, other: DatasetRecord) -> bool:
        """The same content and the same splits: cells over the two are comparable (where the file lay is not)."""
        return self.splits_sha256 == other.splits_sha256 and self.pin.get("content_sha256") == other.pin.get(
            "content_sha256"
        )


class IdleBaseline(_Model):
    """Idle power measured with the same meters as the cells (nothing running), at the start and end of a session.

    Cells use the start record of their session for net energy. The end record carries ``drift``: per component the
    relative change of idle power from the session's start (``(end - start) / start``); beyond
    ``bench.validation.IDLE_DRIFT_LIMIT`` (5%) the run gets a warning, since the net energies then rest on a baseline
    that moved. Documents written before ``phase`` existed have start records only (the default).
    """

    session: int
    measured_at: str
    duration_s: float
    power_w: dict[str, float | None]
    methods: dict[str, str]
    reasons: dict[str, str | None] = Field(default_factory=dict)
    phase: Literal["start", "end"] = "start"
    drift: dict[str, float | None] = Field(
        default_factory=dict, description="end records: relative change of idle power vs the session's start"
    )
    detail: dict[str, Any] = Field(default_factory=dict, description="per component: the meter's detail")
    others: OtherLoad | None = Field(default=None, description="what else ran during the baseline (v3)")


def idle_power_for(idle: IdleBaseline | None, indices: list[int] | None) -> dict[str, float | None] | None:
    """The idle power (W per component) to subtract from cells metered on GPU ``indices`` only: GPU idle summed over
    those GPUs; all of the idle power when ``indices`` is None; None without an idle baseline. Raises nothing.

    A function of the stored baseline (the run subtracts it, the report draws it), so it lives with the results.

    The idle phase meters every visible GPU; a cell of a 1-GPU placement must not have four GPUs' idle power taken
    from one GPU's energy. Without per-GPU idle records the GPU's net energy is left unknown, never guessed.
    """
    if idle is None or indices is None:
        return idle.power_w if idle is not None else None
    power = dict(idle.power_w)
    gpu_detail = idle.detail.get("gpu") or {}
    records = gpu_detail.get("gpus") if isinstance(gpu_detail, dict) else None
    per_gpu: dict[int, float] = {}
    for record in records or []:
        energy = record.get("energy_j") if isinstance(record, dict) else None
        if isinstance(record, dict) and isinstance(record.get("index"), int) and isinstance(energy, int | float):
            per_gpu[record["index"]] = float(energy) / idle.duration_s if idle.duration_s > 0 else 0.0
    known = power.get("gpu") is not None and all(i in per_gpu for i in indices)
    power["gpu"] = sum(per_gpu[i] for i in indices) if known else None
    return power


class GridRecord(_Model):
    """What the derived carbon and cost numbers rest on (``bench.derived``), fixed when the run starts.

    ``intensity_gco2e_per_kwh``: the grid's carbon intensity, from the profile (``grid_intensity_gco2e_per_kwh``) or
    else the table CodeCarbon ships (``codecarbon/data/private_infra/global_energy_mix.json``, per country ISO code,
    ``intensity_source`` names file, version and the data's year; ``user, --grid-intensity`` when given to ``bench
    run``). ``pue``: the data centre's power usage effectiveness (1.0: the machine's own draw, as the paper).
    ``price_per_kwh``: in ``currency`` per kWh, None where no price was given; ``price_source`` says who gave it.
    """

    country_iso_code: str | None = None
    intensity_gco2e_per_kwh: Annotated[float, Field(ge=0)] | None = None
    intensity_source: str
    pue: Annotated[float, Field(ge=1)] = 1.0
    price_per_kwh: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="in ``currency`` (ISO 4217 code) per kWh; None where no price was given"
    )
    currency: str | None = None
    price_source: str | None = Field(
        default=None, description="where the price came from: 'user, --price-per-kwh' or the profile's setting"
    )

    def assumed_country(self) -> str | None:
        """The country whose average grid the intensity assumes (``assumed_grid_country``), None where the intensity
        was given (``--grid-intensity``, the profile's setting) or there is none."""
        if self.intensity_gco2e_per_kwh is None:
            return None
        return assumed_grid_country(self.intensity_source, self.country_iso_code)


#: The start of ``intensity_source`` for an intensity read from CodeCarbon's per-country table (``bench.derived``).
TABLE_SOURCE_START = "CodeCarbon "
_TABLE_COUNTRY = re.compile(r": (?P<name>[^:]+?) \((?P<iso>[A-Z]{3})\), [^,]* energy mix$")


def assumed_grid_country(source: str | None, country_iso_code: str | None = None) -> str | None:
    """Where a grid intensity is an assumption, the country it assumes: ``"Germany (DEU)"``; None otherwise.

    An intensity read from CodeCarbon's table (``bench.derived.codecarbon_intensity``: the source reads ``CodeCarbon
    <version> ...: Germany (DEU), 2023 energy mix``) is the average of the profile's ``country_iso_code`` (Germany
    in the shipped profiles), not the machine's grid: the user gave no intensity. One given with ``--grid-intensity``
    (``user, --grid-intensity``) or in the profile (``the profile's measurement...``) is not assumed."""
    if not source or not source.startswith(TABLE_SOURCE_START):
        return None
    found = _TABLE_COUNTRY.search(source)
    if found:
        return f"{found['name']} ({found['iso']})"
    return country_iso_code or "the profile's country"


class Calibration(_Model):
    """A session's calibration job (``bench.calibration``): the reference workload ``reference`` metered like a cell.

    ``j_per_unit`` (gross J, every component, per reference unit) and ``s_per_unit`` are the machine's index;
    ``energy`` holds each component per unit with its method. Where the job could not run (``reason``), they are None.
    """

    session: int
    reference: str
    device: str
    unit_flop: Annotated[int, Field(ge=1)]
    measured_at: str
    loops: Annotated[int, Field(ge=1)] | None = None
    duration_s: Annotated[float, Field(ge=0)] | None = Field(default=None, description="the metered window (s)")
    s_per_unit: Annotated[float, Field(ge=0)] | None = None
    j_per_unit: Annotated[float, Field(ge=0)] | None = None
    energy: dict[str, EnergyValue] = Field(default_factory=dict, description="per component, per reference unit")
    others: OtherLoad | None = None
    reason: str | None = Field(default=None, description="why there is no index (job not run or failed)")


class PartRecord(_Model):
    """Provenance of one part of a run merged from Slurm array tasks (``bench merge``): which task, where, when."""

    task: str
    run_id: str
    content_hash: str | None
    kit_version: str
    settings_sha256: str
    hosts: list[str] = Field(default_factory=list)
    slurm: dict[str, Any] = Field(default_factory=dict, description="job id, array task id, node list, log path")
    sessions: list[int] = Field(default_factory=list, description="indices into environment.sessions")
    cells: Annotated[int, Field(ge=0)] = 0


class RepairedCell(_Model):
    """One cell a redo session ran again, and what it was before (``before``: its status then, ``reasons``: why)."""

    dataset: str
    model: str
    repetition: Annotated[int, Field(ge=0)]
    before: Literal["failed", "flagged", "invalid"]
    reasons: list[str] = Field(default_factory=list)


class Repair(_Model):
    """A redo session (``bench run --run-id X --redo-flagged``): the cells it ran again in place, when, and why.

    ``session`` indexes ``environment.sessions``; the session has its own idle baseline and calibration. Every cell
    not listed is byte-identical to what the earlier sessions wrote."""

    session: Annotated[int, Field(ge=0)]
    started_at: str
    finished_at: str | None = None
    cells: list[RepairedCell] = Field(default_factory=list)


class ResultDocument(_Model):
    """A whole run. ``content_hash`` covers everything else."""

    schema_version: Literal[6] = SCHEMA_VERSION
    kind: Literal["bench.results"] = DOCUMENT_KIND
    run_id: str
    status: Literal["running", "interrupted", "complete"]
    created_at: str
    updated_at: str
    kit_version: str
    profile: dict[str, Any]
    suite_name: str
    suite: dict[str, Any]
    settings: dict[str, Any]
    settings_sha256: str
    hardware_mismatch: list[str] = Field(default_factory=list)
    forced: bool = False
    environment: dict[str, Any]
    meters: dict[str, Any]
    idle: list[IdleBaseline] = Field(default_factory=list)
    datasets: dict[str, DatasetRecord]
    models: dict[str, dict[str, Any]]
    cells: list[Cell]
    warnings: list[str] = Field(
        default_factory=list, description="run-level cautions (e.g. idle power drift > 5%); cells carry validity"
    )
    parts: list[PartRecord] = Field(
        default_factory=list, description="merged runs (`bench merge`): one record per Slurm task's part"
    )
    calibration: list[Calibration] = Field(
        default_factory=list, description="one reference-workload index per session (bench.calibration; v3)"
    )
    grid: GridRecord | None = Field(
        default=None, description="carbon intensity, PUE and price for the derived gCO2e and cost (v3)"
    )
    repairs: list[Repair] = Field(
        default_factory=list, description="redo sessions: which cells were run again, when and why (v5)"
    )
    content_hash: str | None = None

    def cell_map(self) -> dict[tuple[str, str, int], Cell]:
        """Cells by (dataset, model, repetition)."""
        return {c.key: c for c in self.cells}


def json_differences(
    expected: Any, actual: Any, where: str = "", *, names: tuple[str, str] = ("expected", "found")
) -> list[str]:
    """Paths where two JSON values differ, each with both values: ``settings.min_window_s: 2.0 now, 0.2 in the
    run`` (``names`` says what each side is)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            path = f"{where}.{key}" if where else str(key)
            out += json_differences(expected.get(key), actual.get(key), path, names=names)
        return out
    if expected != actual:
        return [f"{where or 'value'}: {expected!r} {names[0]}, {actual!r} {names[1]}"]
    return []


def planned_cells(suite: dict[str, Any] | None) -> int | None:
    """How many cells a stored suite has: data sets x each model's repetitions (a per-model count capped at the
    suite's, as ``SuiteSpec.repetitions_of``); None when the suite does not say (an older or partial record)."""
    suite = suite or {}
    models, datasets, repetitions = suite.get("models"), suite.get("datasets"), suite.get("repetitions")
    if not isinstance(models, list) or not isinstance(datasets, list) or not isinstance(repetitions, int):
        return None
    per_model = suite.get("model_repetitions") or {}
    return len(datasets) * sum(min(int(per_model.get(m, repetitions)), repetitions) for m in models)


# --- hashing, writing, reading ----------------------------------------------------------------------------------


def canonical_json(data: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no whitespace); NaN/inf are refused (not valid JSON)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def content_hash(data: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of ``data`` without its ``content_hash`` field."""
    body = {k: v for k, v in data.items() if k != "content_hash"}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def _finite(value: Any, where: str = "") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ResultsError(f"non-finite number at {where or 'top level'}: {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]")


def write_results(document: ResultDocument, path: Path) -> str:
    """Validate, hash and write atomically (temp file + fsync + rename): a crash never leaves half a file."""
    data = document.model_dump(mode="json")
    _finite(data)
    data["content_hash"] = content_hash(data)
    ResultDocument.model_validate(data)  # validate on write: what we store must load
    body = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False).encode() + b"\n"
    atomic_write_bytes(path, body)
    document.content_hash = data["content_hash"]
    return data["content_hash"]


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v2 only added optional fields with defaults (``Cell.gpus``, ``Cell.nodes``, ``parts``): relabel."""
    return {**data, "schema_version": 2}


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """v3 only added optional fields defaulting to None or empty (``Cell.others``, ``IdleBaseline.others``, ``grid``,
    ``calibration``):
    relabel. Their absence means "not observed", never "nothing else ran"."""
    return {**data, "schema_version": 3}


def _v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    """v4 only added optional cell fields defaulting to None (``truncated``, ``power_series``, ``serving``,
    ``training``): relabel. Their absence means "not recorded"."""
    return {**data, "schema_version": 4}


#: Substrings of the reasons ``bench.validation`` writes for conditions of the machine during a window (its
#: ``others_problems`` and ``gpu_telemetry_problems``), each with its kind in a few words: how a v4 document's
#: ``validity`` is split into v5's ``flags``, and how a run's end names what flagged its cells.
MACHINE_CONDITION_KINDS: dict[str, str] = {
    "other processes used": "other processes on the CPU",
    "other process(es) on a metered GPU": "other processes on a metered GPU",
    " throttled (": "GPU throttling",
    " C at the window's ": "GPU temperature out of range",
}
MACHINE_CONDITION_MARKERS = tuple(MACHINE_CONDITION_KINDS)


def is_machine_condition(reason: str) -> bool:
    """Whether a stored validity reason is a condition of the machine (a flag) rather than an implausible reading."""
    return any(marker in reason for marker in MACHINE_CONDITION_MARKERS)


def _v4_to_v5(data: dict[str, Any]) -> dict[str, Any]:
    """v5 split ``Cell.validity`` into machine conditions (``flags``) and implausible readings (``validity``), and
    added ``repairs`` (empty: no redo session): a v4 cell's reasons are split by ``is_machine_condition``."""
    cells = []
    for cell in data.get("cells") or []:
        if isinstance(cell, dict) and isinstance(cell.get("validity"), list):
            reasons = cell["validity"]
            flags = [r for r in reasons if isinstance(r, str) and is_machine_condition(r)]
            cell = {**cell, "validity": [r for r in reasons if r not in flags], "flags": flags}
        cells.append(cell)
    return {**data, "cells": cells, "schema_version": 5}


def _v5_to_v6(data: dict[str, Any]) -> dict[str, Any]:
    """v6 only added the optional ``Cell.arithmetic`` (None: not recorded): relabel. An older LLM cell's tokens stay
    in ``Cell.tokens``; its arithmetic is not derived after the fact (the parameter count it ran with is not stored)."""
    return {**data, "schema_version": 6}


#: schema_version -> function turning a document of that version into the next version's shape.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}


def migrate(data: dict[str, Any], path: Path | str = "<memory>") -> dict[str, Any]:
    """Bring an old document to SCHEMA_VERSION through MIGRATIONS, one version at a time."""
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise ResultsError(
            f"{path}: schema_version missing or not an integer (got {version!r}); is this a results.json?"
        )
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema_version {version} is newer than this kit understands ({SCHEMA_VERSION}); upgrade bench"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ResultsError(f"{path}: no migration from schema_version {version}")
        data = step(data)
        version = data["schema_version"]
    return data


def parse_results(data: dict[str, Any], path: Path | str = "<memory>", *, check_hash: bool = True) -> ResultDocument:
    """Validate a decoded document: hash first (on the bytes as written), then migrate and validate the schema."""
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: top level must be a JSON object, got {type(data).__name__}")
    if check_hash:
        stored = data.get("content_hash")
        if not stored:
            raise ResultsError(f"{path}: content_hash missing; the file was not written by bench or was edited")
        actual = content_hash(data)
        if stored != actual:
            raise ResultsError(
                f"{path}: content hash mismatch (stored {stored[:19]}..., computed {actual[:19]}...): the file was "
                "edited or corrupted after it was written. Rerun the cells, or restore the original file."
            )
    data = migrate(data, path)
    try:
        return ResultDocument.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:20]:
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"  - {where}: {err['msg']}")
        more = f"\n  ... and {exc.error_count() - 20} more" if exc.error_count() > 20 else ""
        raise ResultsError(
            f"{path}: does not match results schema v{SCHEMA_VERSION}:\n" + "\n".join(problems) + more
        ) from None


def load_results(path: Path | str, *, check_hash: bool = True) -> ResultDocument:
    """Read ``results.json`` (or a run folder holding one) and return the validated document."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    if not raw.strip():
        raise ResultsError(f"{path}: file is empty")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "the file looks truncated or edited (the kit writes it atomically, so something else changed it). Its "
            "cells cannot be recovered from it: move the run folder aside and run again (or use another --run-id)."
        ) from None
    return parse_results(data, path, check_hash=check_hash)
