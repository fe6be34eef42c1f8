"""One cell (data set x model x repetition): fit on the split's training texts (trained models: in a metered training
window of its own, ``measure_training``, with the same meters, idle baseline and loop rule; kept apart from every
inference figure, as the paper measures inference only), warm up, then one metered window around inference over the
whole test split, synchronized at both edges. A window shorter than the minimum repeats the whole test-set inference
until long enough (or the loop cap) and divides by the loop count. Energies are per pass, gross and net of idle
power; the finished cell is checked for plausibility (``bench.validation.cell_validity``) and carries the reasons in
``Cell.validity``. Any exception becomes a failed cell with its stage and traceback.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Sequence
from typing import Any

from bench.analysis import accuracy, macro_f1, total_energy_j
from bench.arithmetic import arithmetic_record
from bench.fsutil import now_iso
from bench.results import (
    Cell,
    CellError,
    NodeEnergy,
    PowerSeries,
    PrefixReuse,
    ServingStats,
    TrainingWindow,
    TruncatedText,
)
from bench.run.plan import WARMUP_TEXTS, PreparedDataset
from bench.validation import Expectations, cell_flags, cell_validity
from bench.window import measure_window, other_load, per_pass

#: How many raw LLM answers per cell are kept in the results (to see what the parser saw), not all 200.
ANSWER_SAMPLE = 5


def measure_training(
    backend: Any,
    texts: Sequence[str],
    labels: Sequence[int],
    label_names: Sequence[str],
    language: str,
    meter_set: Any,
    *,
    min_window_s: float,
    max_loops: int,
    idle_w: dict[str, float | None] | None,
) -> TrainingWindow:
    """One metered training window: ``backend.fit`` on the training texts, repeated until ``min_window_s`` (s) or
    ``max_loops`` (every fit starts afresh, so the last one is the model that is tested), synchronized at both edges.
    Energy and duration are per fit, gross and net of idle power (``per_pass``). The first fit includes one-time
    costs a library may have (lazy imports inside ``fit``); there is no warm-up fit. An exception of ``fit`` closes the
    window (its reading discarded) and propagates: the cell fails "during training", naming the reason."""
    backend.synchronize()
    meter_set.start()
    started = time.perf_counter()
    loops = 0
    try:
        while True:
            backend.fit(texts, labels, label_names, language=language)
            loops += 1
            if time.perf_counter() - started >= min_window_s or loops >= max_loops:
                break
        backend.synchronize()
    except BaseException:
        with contextlib.suppress(Exception):  # close the window (its reading is void) so the next cell can open one
            meter_set.stop()
        raise
    reading = meter_set.stop()
    duration_s = reading.duration_s / loops
    return TrainingWindow(
        duration_s=duration_s,
        loops=loops,
        min_window_s=min_window_s,
        max_loops_reached=loops >= max_loops and reading.duration_s < min_window_s,
        n_train=len(texts),
        energy=per_pass(reading.components, loops, duration_s, idle_w, getattr(reading, "component_duration_s", None)),
    )


def add_arithmetic(cell: Cell, usage: dict[str, Any] | None, backend: Any) -> str | None:
    """Derived (``bench.arithmetic``): the pass's tokens and 2 x parameters x computed tokens, into ``cell.arithmetic``
    for a backend that counts tokens and parameters. Returns why none was derived where the backend's token counts
    are inconsistent (the cell then says so), else None."""
    if usage is None or not hasattr(backend, "arithmetic_params"):
        return None
    try:
        cell.arithmetic = arithmetic_record(usage, backend.arithmetic_params())
    except ValueError as exc:
        return f"arithmetic not derived: {exc}"
    return None


def run_cell(
    backend: Any,
    data: PreparedDataset,
    dataset_name: str,
    model_name: str,
    rep: int,
    meter_set: Any,
    *,
    min_window_s: float,
    max_loops: int,
    idle_w: dict[str, float | None] | None,
    load_s: float | None,
    gpus: int | None,
    expectations: Expectations,
    meter_training: bool = False,
) -> Cell:
    """Train, warm up, measure and check one cell; any exception becomes a failed cell.

    ``meter_training``: fit in a metered training window (``measure_training``; trained models), else fit timed
    only (zero-shot models, whose fit just records the labels). ``gpus``: the GPUs the cell used and was metered on
    (an allocation or a host run's placement), None otherwise; ``expectations``: what the document the cell goes into
    expects of its cells (GPU count, power limits)."""
    started = now_iso()
    split = data.record.splits[rep]
    stage = "training" if meter_training else "fit"
    training: TrainingWindow | None = None
    try:
        train_texts = [data.texts[i] for i in split.train_idx]
        train_labels = [data.labels[i] for i in split.train_idx]
        test_texts = [data.texts[i] for i in split.test_idx]
        test_labels = data.record.test_labels[str(rep)]
        t0 = time.perf_counter()
        if meter_training:
            training = measure_training(
                backend,
                train_texts,
                train_labels,
                data.record.label_names,
                data.record.language,
                meter_set,
                min_window_s=min_window_s,
                max_loops=max_loops,
                idle_w=idle_w,
            )
        else:
            backend.fit(train_texts, train_labels, data.record.label_names, language=data.record.language)
        train_s = training.duration_s if training is not None else time.perf_counter() - t0
        stage = "warm-up"
        if hasattr(backend, "prepare"):  # LLMs: texts cut to fit the context window (--truncate), outside the window
            backend.prepare(test_texts)
        backend.predict(test_texts[:WARMUP_TEXTS])
        stage = "measured inference"
        predictions, window, reading = measure_window(backend, test_texts, meter_set, min_window_s, max_loops)
    except Exception as exc:
        return failed_cell(dataset_name, model_name, rep, started, exc, stage)
    duration_s = window.duration_s / window.loops
    side = reading.side.get("codecarbon") if getattr(reading, "side", None) else None
    invalid = sum(1 for p in predictions if p < 0) / len(predictions)
    usage = backend.usage() if hasattr(backend, "usage") else None  # one pass; LLM backends count tokens
    nodes = getattr(reading, "nodes", None)  # multi-node windows (bench.meters.multinode) keep each node's reading
    cell = Cell(
        dataset=dataset_name,
        model=model_name,
        repetition=rep,
        status="ok",
        started_at=started,
        finished_at=now_iso(),
        n_test=len(test_texts),
        accuracy=accuracy(test_labels, predictions),
        macro_f1=macro_f1(test_labels, predictions),
        invalid_rate=invalid,
        load_s=load_s,
        train_s=train_s,
        duration_s=duration_s,
        window=window,
        energy=per_pass(
            reading.components, window.loops, duration_s, idle_w, getattr(reading, "component_duration_s", None)
        ),
        codecarbon=per_pass(side.components, window.loops, duration_s, None) if side is not None else None,
        predictions=[int(p) for p in predictions],
        tokens=usage,
        answers_sample=list(getattr(backend, "last_answers", []))[:ANSWER_SAMPLE] or None,
        nodes=node_energies(nodes, window.loops) if nodes else None,
        others=other_load(reading),
        truncated=truncated_texts(backend),
        power_series=power_series(reading),
        training=training,
    )
    if gpus is not None:
        cell.gpus = gpus
    if hasattr(backend, "serving_stats"):
        cell.serving = serving_stats(backend.serving_stats(), len(test_texts), duration_s)
    arithmetic_problem = add_arithmetic(cell, usage, backend)
    cell.validity = cell_validity(cell, expectations)
    if arithmetic_problem:
        cell.validity.append(arithmetic_problem)
    cell.flags = cell_flags(cell, expectations)
    return cell


def power_series(reading: Any) -> PowerSeries | None:
    """The window's power over time as stored (``bench.meters.series``); None where the meter set records none
    (multi-node windows, sets built without ``series_hz``)."""
    series = getattr(reading, "series", None)
    return PowerSeries.model_validate(series) if series else None


def truncated_texts(backend: Any) -> list[TruncatedText] | None:
    """The test texts an LLM backend cut to fit its context window in the last pass (``--truncate``); None when it
    cut none or is not an LLM."""
    cuts = backend.truncations() if hasattr(backend, "truncations") else []
    return [
        TruncatedText(index=t.index, prompt_tokens=t.prompt_tokens, kept_tokens=t.kept_tokens) for t in cuts
    ] or None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated between order statistics (numpy's default
    method, Hyndman & Fan type 7). Raises ValueError for no values."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def serving_stats(stats: dict[str, Any], n_texts: int, duration_s: float) -> ServingStats | None:
    """A backend's timed engine calls of one pass (``serving``, ``batch_size``, ``call_s`` [s] and, per call, how
    many requests it carried in ``call_sizes``; default: sequential 1, else ``batch_size`` with the remainder last)
    as the cell's latency and throughput. Each request's latency is the time of the call that carried it (batched:
    its batch), weighted per request; None when the backend timed no call."""
    calls = [float(s) for s in stats.get("call_s") or []]
    if not calls:
        return None
    serving = str(stats.get("serving", "batched"))
    batch_size = int(stats.get("batch_size", 1))
    sizes = list(stats.get("call_sizes") or [])
    if not sizes:
        if serving == "sequential":
            sizes = [1] * len(calls)
        else:
            sizes = [min(batch_size, n_texts - i * batch_size) for i in range(len(calls))]
            sizes = [max(1, s) for s in sizes]
    per_request = [t for t, size in zip(calls, sizes, strict=True) for _ in range(size)]
    batched = serving != "sequential"
    return ServingStats(
        serving=serving,
        batch_size=batch_size,
        requests=len(per_request),
        calls=len(calls),
        latency_median_s=percentile(per_request, 50),
        latency_p95_s=percentile(per_request, 95),
        batch_median_s=percentile(calls, 50) if batched else None,
        batch_p95_s=percentile(calls, 95) if batched else None,
        texts_per_s=n_texts / duration_s if duration_s > 0 else None,
        prefix=PrefixReuse.model_validate(stats["prefix"]) if stats.get("prefix") else None,
    )


def failed_cell(dataset: str, model: str, rep: int, started: str, exc: BaseException, stage: str) -> Cell:
    """A failed cell: the error's type, ``during <stage>: <message>`` and the end of its traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    return Cell(
        dataset=dataset,
        model=model,
        repetition=rep,
        status="failed",
        started_at=started,
        finished_at=now_iso(),
        error=CellError(type=type(exc).__name__, message=f"during {stage}: {exc}", traceback=tb[-4000:]),
    )


def node_energies(nodes: dict[str, Any], loops: int) -> list[NodeEnergy]:
    """Each node's window reading as per-pass numbers (the cell's own are their sum and maximum)."""
    return [
        NodeEnergy(
            host=host,
            duration_s=reading.duration_s / loops,
            energy_j={c: None if ce.energy_j is None else ce.energy_j / loops for c, ce in reading.components.items()},
            methods={c: ce.method for c, ce in reading.components.items()},
        )
        for host, reading in nodes.items()
    ]


def cell_brief(cell: Cell) -> str:
    """One line about a finished cell, for logs."""
    if cell.status != "ok" or cell.window is None:
        return f"FAILED ({cell.error.type if cell.error else '?'})"
    total = total_energy_j(cell.energy) or 0.0
    brief = f"acc {cell.accuracy:.3f}, {cell.duration_s:.4f} s, {total:.3f} J per pass, {cell.window.loops} loop(s)"
    return brief + (f", INVALID: {'; '.join(cell.validity)}" if cell.validity else "")
