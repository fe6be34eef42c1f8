"""Aggregates over cells: classification metrics, and mean / std / 95% CI over repetitions.

Pure numpy, no sklearn: the runner and reports must not pull heavy libraries for a few sums.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.arithmetic import cell_ratios

# Two-sided 97.5% quantiles of Student's t for df = 1..30 (standard tables); above 30 the normal 1.96 is within 2%.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """Student's t 0.975 quantile for ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    return _T975[df - 1] if df <= len(_T975) else 1.959964


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Fraction of exact matches; an invalid prediction (-1) is wrong."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("no labels")
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred`` (as sklearn's
    ``f1_score(average='macro')``; invalid predictions, -1, are not a class but count as misses)."""
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    classes = sorted((set(truth.tolist()) | set(pred.tolist())) - {-1})
    scores = []
    for label in classes:
        tp = int(np.sum((pred == label) & (truth == label)))
        fp = int(np.sum((pred == label) & (truth != label)))
        fn = int(np.sum((pred != label) & (truth == label)))
        denominator = 2 * tp + fp + fn
        scores.append(0.0 if denominator == 0 else 2 * tp / denominator)
    return float(np.mean(scores)) if scores else 0.0


@dataclass(frozen=True)
class Summary:
    """Mean over repetitions with spread and a 95% confidence interval (t-distribution)."""

    n: int
    mean: float
    std: float
    cv: float | None
    ci95_low: float
    ci95_high: float

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "cv": self.cv,
            "ci95_low": self.ci95_low,
            "ci95_high": self.ci95_high,
        }


def summarize(values: Iterable[float | None]) -> Summary | None:
    """Summary of the non-null values, or None if there are none. std is the sample std (ddof=1)."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return None
    mean = float(data.mean())
    if data.size == 1:
        return Summary(1, mean, 0.0, None, mean, mean)
    std = float(data.std(ddof=1))
    half = t_quantile_975(data.size - 1) * std / math.sqrt(data.size)
    cv = std / abs(mean) if mean != 0 else None
    return Summary(int(data.size), mean, std, cv, mean - half, mean + half)


def _catalog_paper_label(model: str) -> str | None:
    """The paper's name for a catalog model (``llama-3.1-70b@2x1`` is llama-3.1-70b), None for others."""
    from bench.catalog.models import MODELS, base_model_name

    spec = MODELS.get(base_model_name(model))
    return spec.paper_label if spec is not None else None


@dataclass(frozen=True)
class ModelRow:
    """One (dataset, model) aggregated over its repetitions: what the summary table and reports show.

    Accuracy and macro-F1 are over every ok cell. Duration and energy are over the sound cells only
    (``sound_cells``): every check is about the measurement (window, power, GPU count, what else ran on the machine),
    so an invalid or flagged cell's predictions still count, its joules and seconds do not. ``n_invalid`` (an
    implausible reading, ``Cell.validity``) and ``n_flagged`` (a condition of the machine only, ``Cell.flags``) say how
    many ok cells were left out; a cell with both counts as invalid. ``n_ok - n_invalid - n_flagged`` cells are sound.
    """

    dataset: str
    model: str
    paper_label: str | None
    n_ok: int
    n_failed: int
    n_flagged: int
    n_invalid: int
    accuracy: Summary | None
    macro_f1: Summary | None
    duration_s: Summary | None
    energy_j: Summary | None  # gross, all measured/estimated components summed, per pass
    net_energy_j: Summary | None
    component_j: dict[str, float | None]  # mean per pass
    component_methods: dict[str, str]
    j_per_text: float | None
    wh_per_1000_texts: float | None
    j_per_correct: float | None
    codecarbon_j: float | None
    paper_accuracy: float | None
    paper_energy_wh: float | str | None
    #: LLM cells (``Cell.serving``), mean over the sound cells that have them; None for other models and old runs
    serving: str | None = None
    latency_median_s: float | None = None
    latency_p95_s: float | None = None
    batch_median_s: float | None = None
    texts_per_s: float | None = None
    #: LLM cells that recorded their arithmetic (``Cell.arithmetic``, derived): 2 x parameters x computed tokens per
    #: text, and the sound cells' gross energy over that arithmetic at the calibration GEMM's and at the datasheet's J
    #: per FLOP (``bench.arithmetic.cell_ratios``: reference ratios, not bounds); None for other models and old runs
    flop_per_text: float | None = None
    x_calibration: float | None = None
    x_datasheet: float | None = None


def total_energy_j(energy: dict, key: str = "energy_j") -> float | None:
    """Sum of a cell's component energies (``key``: energy_j or net_energy_j); None when no component has a number."""
    values = [getattr(v, key) for v in energy.values() if getattr(v, key) is not None]
    return float(sum(values)) if values else None


def sound_cells(cells: Iterable[object]) -> list[Any]:
    """Ok cells whose measurement passed the plausibility checks and was not flagged (a machine condition during its
    window, ``bench.validation.cell_flags``): the ones duration and energy figures rest on."""
    return [
        c
        for c in cells
        if getattr(c, "status", None) == "ok" and not getattr(c, "validity", None) and not getattr(c, "flags", None)
    ]


def _serving_means(cells: list[Any]) -> dict[str, Any]:
    """Mean latency and throughput over the cells that recorded them (``Cell.serving``), and their serving mode."""
    stats = [c.serving for c in cells if getattr(c, "serving", None) is not None]
    if not stats:
        return {}

    def mean(field: str) -> float | None:
        values = [getattr(s, field) for s in stats if getattr(s, field) is not None]
        return float(np.mean(values)) if values else None

    return {
        "serving": stats[0].serving,
        "latency_median_s": mean("latency_median_s"),
        "latency_p95_s": mean("latency_p95_s"),
        "batch_median_s": mean("batch_median_s"),
        "texts_per_s": mean("texts_per_s"),
    }


def model_rows(doc: object) -> list[ModelRow]:
    """Aggregate a ResultDocument's cells per (dataset, model), in suite order, with the paper's numbers beside."""
    from bench.reference import paper_value
    from bench.results import ResultDocument

    assert isinstance(doc, ResultDocument)
    catalog_names: dict[str, str | None] = {}
    try:
        from bench.catalog.datasets import DATASETS

        catalog_names = {name: spec.paper_name for name, spec in DATASETS.items()}
    except ImportError:  # pragma: no cover - the catalog is part of the package
        pass
    rows = []
    for dataset in doc.suite.get("datasets", []):
        for model in doc.suite.get("models", []):
            cells = [c for c in doc.cells if c.dataset == dataset and c.model == model]
            ok = [c for c in cells if c.status == "ok"]
            sound = sound_cells(ok)
            # the model's record is written when it loads: before that (a run interrupted early) the catalog says
            label = doc.models.get(model, {}).get("paper_label") or _catalog_paper_label(model)
            paper = paper_value(label, catalog_names.get(dataset)) if label else None
            components: dict[str, float | None] = {}
            methods: dict[str, str] = {}
            for comp in ("gpu", "cpu", "ram"):
                vals = [c.energy[comp].energy_j for c in sound if comp in c.energy]
                measured = [v for v in vals if v is not None]
                components[comp] = float(np.mean(measured)) if measured else None
                if ok and comp in ok[0].energy:
                    methods[comp] = ok[0].energy[comp].method
            totals = [total_energy_j(c.energy) for c in sound]
            energy = summarize(totals)
            acc = summarize(c.accuracy for c in ok)
            n_test = float(np.mean([c.n_test for c in ok])) if ok else None
            j_per_text = energy.mean / n_test if energy and n_test else None
            correct = acc.mean * n_test if acc and n_test else None
            cc = [total_energy_j(c.codecarbon) for c in sound if c.codecarbon]
            cc_vals = [v for v in cc if v is not None]
            rows.append(
                ModelRow(
                    dataset=dataset,
                    model=model,
                    paper_label=label,
                    n_ok=len(ok),
                    n_failed=len(cells) - len(ok),
                    n_flagged=sum(1 for c in ok if c.flags and not c.validity),
                    n_invalid=sum(1 for c in ok if c.validity),
                    accuracy=acc,
                    macro_f1=summarize(c.macro_f1 for c in ok),
                    duration_s=summarize(c.duration_s for c in sound),
                    energy_j=energy,
                    net_energy_j=summarize(total_energy_j(c.energy, "net_energy_j") for c in sound),
                    component_j=components,
                    component_methods=methods,
                    j_per_text=j_per_text,
                    wh_per_1000_texts=j_per_text * 1000 / 3600 if j_per_text is not None else None,
                    j_per_correct=energy.mean / correct if energy and correct else None,
                    codecarbon_j=float(np.mean(cc_vals)) if cc_vals else None,
                    paper_accuracy=paper.accuracy if paper else None,
                    paper_energy_wh=paper.energy_wh if paper else None,
                    **_serving_means(sound),
                    **cell_ratios(doc, sound),
                )
            )
    return rows


# --- warnings about the model (not the machine) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModelWarning:
    """Something a model's predictions say about the model, computed from the document (``model_warnings``): one
    per (data set, model) and kind, whatever the number of repetitions it concerns. Neither a flag (a condition of the
    machine, which a redo clears) nor a validity finding (an implausible reading): the numbers are what the model
    did, and they stay in every mean; the warning says they do not mean what they seem to.

    ``kind``: ``"one-class"`` (every test text got the same class while the test split holds several).
    ``repetitions``: the repetitions it concerns, of ``of`` ok cells whose predictions could be judged."""

    kind: str
    dataset: str
    model: str
    repetitions: tuple[int, ...]
    of: int
    message: str

    def __str__(self) -> str:
        return self.message


def model_warnings(doc: object) -> list[ModelWarning]:
    """Warnings about what the models of a ResultDocument predicted, in suite order, one per (data set, model).

    ``one-class``: an ok cell whose predictions (``Cell.predictions``, invalid answers -1 aside) are all one class
    while its repetition's test labels (``DatasetRecord.test_labels``) hold two or more: its accuracy is that class's
    share of the test split, whatever the model learned (a tokenizer that maps every word to one token, a script the
    vectorizer cannot split, labels the scoring rule cannot tell apart). Cells without predictions or without test
    labels (older documents) are not judged."""
    cells: dict[tuple[str, str], list[Any]] = {}
    for cell in getattr(doc, "cells", None) or []:
        if cell.status == "ok" and cell.predictions is not None:
            cells.setdefault((cell.dataset, cell.model), []).append(cell)
    suite = getattr(doc, "suite", None) or {}
    datasets = {name: i for i, name in enumerate(suite.get("datasets") or [])}
    models = {name: i for i, name in enumerate(suite.get("models") or [])}
    out = []
    for dataset, model in sorted(
        cells, key=lambda key: (datasets.get(key[0], len(datasets)), models.get(key[1], len(models)), key)
    ):
        record = getattr(doc, "datasets", {}).get(dataset)
        warning = _one_class_warning(dataset, model, record, cells[(dataset, model)]) if record is not None else None
        if warning is not None:
            out.append(warning)
    return out


def _one_class_warning(dataset: str, model: str, record: Any, cells: list[Any]) -> ModelWarning | None:
    """The ``one-class`` warning of one (data set, model) over its ok cells with predictions, or None."""
    from bench.data.classes import repetition_ranges

    names = list(record.label_names)
    single: dict[int, int] = {}  # repetition -> the one class predicted
    held: set[int] = set()  # how many classes those repetitions' test splits hold
    judged = 0
    for cell in sorted(cells, key=lambda c: c.repetition):
        truth = record.test_labels.get(str(cell.repetition))
        if not truth:
            continue
        judged += 1
        predicted = set(cell.predictions) - {-1}
        if len(predicted) == 1 and len(set(truth)) > 1:
            single[cell.repetition] = next(iter(predicted))
            held.add(len(set(truth)))
    if not single:
        return None

    def name(label: int) -> str:
        return repr(names[label]) if 0 <= label < len(names) else str(label)

    by_class: dict[int, list[int]] = {}
    for repetition, label in single.items():
        by_class.setdefault(label, []).append(repetition)
    if len(by_class) == 1:
        what = f"class {name(next(iter(by_class)))}"
    else:
        each = ", ".join(f"{name(label)} in {repetition_ranges(reps)}" for label, reps in sorted(by_class.items()))
        what = f"one class each ({each})"
    reps = tuple(sorted(single))
    classes = str(min(held)) if len(held) == 1 else f"{min(held)} to {max(held)}"
    message = (
        f"{model} on {dataset}: predicted {what} for every test text in repetition(s) {repetition_ranges(reps)} "
        f"({len(reps)} of {judged}), while the test split holds {classes} classes: its accuracy there is that "
        "class's share of the test split, not what the model learned. Check the model (its tokenizer files, the "
        "label names it was given, the script of the texts)."
    )
    return ModelWarning("one-class", dataset, model, reps, judged, message)


# --- Pareto front, regression, normalization (used by reports and compare) ------------------------------------------


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower cost (x) and higher score (y), as the paper's
    accuracy-vs-energy trade-off. A point is dominated when another is at least as good on both axes and strictly
    better on one. Returned in increasing cost; exact duplicates are all kept (none beats the other)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best_y = -math.inf
    best_x = math.nan
    for i in order:
        x, y = points[i]
        if y > best_y:
            front.append(i)
            best_y, best_x = y, x
        elif y == best_y and x == best_x:  # an exact tie with the last front point: equally good, keep both
            front.append(i)
    return front


@dataclass(frozen=True)
class Regression:
    """An ordinary least-squares fit ``y = sum(coef[name] * column[name])``.

    ``r2`` is the coefficient of determination (with an intercept, 1 - SS_res / SS_tot); ``adj_r2`` corrects it for
    the number of predictors and is None when there are too few points. ``dropped`` names the terms left out
    because they were constant or collinear on these data (e.g. the device count on a machine where every model
    used the same number of GPUs), so the fit stays identifiable instead of returning arbitrary coefficients.
    """

    n: int
    coefficients: dict[str, float]
    r2: float | None
    adj_r2: float | None
    dropped: tuple[str, ...] = ()

    def predict(self, columns: dict[str, float]) -> float:
        """The fitted value for one point (terms not in the fit are ignored; 'const' is implied)."""
        return sum(
            coef * (1.0 if name == "const" else columns.get(name, 0.0)) for name, coef in self.coefficients.items()
        )


def ols(columns: dict[str, Sequence[float]], y: Sequence[float], *, intercept: bool = True) -> Regression:
    """Least-squares fit of ``y`` on the named ``columns`` (numpy's lstsq).

    Columns that add no rank to the design matrix (constant, or a linear combination of earlier ones) are dropped
    and listed in ``Regression.dropped``, in the order given, so callers can state which effects the data cannot
    separate.
    """
    target = np.asarray(y, dtype=float)
    n = target.size
    names: list[str] = []
    matrix: list[np.ndarray] = []
    dropped: list[str] = []
    if intercept:
        names.append("const")
        matrix.append(np.ones(n))
    for name, values in columns.items():
        column = np.asarray(values, dtype=float)
        if column.size != n:
            raise ValueError(f"column {name!r} has {column.size} values for {n} observations")
        candidate = np.column_stack([*matrix, column]) if matrix else column[:, None]
        if np.linalg.matrix_rank(candidate) > len(matrix):
            names.append(name)
            matrix.append(column)
        else:
            dropped.append(name)
    if n == 0 or not matrix:
        return Regression(n=n, coefficients={}, r2=None, adj_r2=None, dropped=tuple(dropped))
    design = np.column_stack(matrix)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    fitted = design @ coef
    ss_res = float(np.sum((target - fitted) ** 2))
    centre = target.mean() if intercept else 0.0
    ss_tot = float(np.sum((target - centre) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else None
    predictors = len(names) - (1 if intercept else 0)
    dof = n - predictors - (1 if intercept else 0)
    adj = 1.0 - (1.0 - r2) * (n - 1) / dof if r2 is not None and dof > 0 else None
    return Regression(
        n=n,
        coefficients={k: float(v) for k, v in zip(names, coef, strict=True)},
        r2=r2,
        adj_r2=adj,
        dropped=tuple(dropped),
    )


def energy_duration_regression(
    duration_s: Sequence[float], energy: Sequence[float], devices: Sequence[float] | None = None
) -> Regression:
    """The paper's runtime-as-proxy model (its Table 3): ``energy ~ duration + devices + duration x devices``.

    Units are the caller's (the report passes seconds and joules, so the duration coefficient reads as watts).
    With one device count throughout, the device terms are collinear with the intercept and the duration term and
    are dropped: the fit becomes ``energy ~ duration``. The result holds for one machine only; across machines the
    slope is a different power draw.
    """
    columns: dict[str, Sequence[float]] = {"duration_s": duration_s}
    if devices is not None:
        dev = np.asarray(devices, dtype=float)
        columns["devices"] = dev
        columns["duration_x_devices"] = np.asarray(duration_s, dtype=float) * dev
    return ols(columns, energy)


@dataclass(frozen=True)
class PerText:
    """Per-pass figures normalized by the number of texts, so runs with other split sizes compare."""

    n_texts: float
    s_per_text: float | None
    j_per_text: float | None
    net_j_per_text: float | None
    wh_per_1000_texts: float | None
    j_per_correct: float | None


def per_text(
    n_texts: float | None,
    duration_s: float | None,
    energy_j: float | None,
    net_energy_j: float | None = None,
    accuracy_mean: float | None = None,
) -> PerText | None:
    """Normalize one pass (whole test split) to per text; None where ``n_texts`` is unknown or zero."""
    if not n_texts:
        return None
    j = energy_j / n_texts if energy_j is not None else None
    correct = accuracy_mean * n_texts if accuracy_mean else None
    return PerText(
        n_texts=float(n_texts),
        s_per_text=duration_s / n_texts if duration_s is not None else None,
        j_per_text=j,
        net_j_per_text=net_energy_j / n_texts if net_energy_j is not None else None,
        wh_per_1000_texts=j * 1000 / 3600 if j is not None else None,
        j_per_correct=energy_j / correct if energy_j is not None and correct else None,
    )


def component_summaries(cells: Iterable[object], component: str) -> tuple[Summary | None, Summary | None]:
    """Gross and net per-pass energy of one component over ok cells (each a Summary, or None if never measured)."""
    gross: list[float | None] = []
    net: list[float | None] = []
    for cell in cells:
        value = getattr(cell, "energy", {}).get(component)
        if value is None or getattr(cell, "status", "ok") != "ok":
            continue
        gross.append(value.energy_j)
        net.append(value.net_energy_j)
    return summarize(gross), summarize(net)
