"""How long rendering report.html takes for a 1,000-cell result, and how big the file is (issue 6: < 2 s, < 2 MB).

Builds a synthetic, schema-valid document (5 data sets x 20 models x 10 repetitions, with 200 predictions per cell,
like a real run), writes it with bench.results.write_results (validated on write), then times, separately:
loading (parse + hash check + schema validation), rendering the HTML, and the whole `bench report` path. Every
number printed is measured on this machine; nothing is hard-coded.

    python benchmarks/report_render.py [--cells-per-model 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench.report import render_report, write_report
from bench.report.sample import DATASETS, sample_document
from bench.results import load_results, write_results

BUDGET_S = 2.0
BUDGET_BYTES = 2 * 1024 * 1024


def _timed(fn, repeat: int) -> tuple[list[float], object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=10, help="repetitions per (data set, model)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (median and best are printed)")
    args = parser.parse_args()

    doc = sample_document(DATASETS, repetitions=args.repetitions, seed=0)
    n_cells = len(doc.cells)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        write_results(doc, run / "results.json")
        json_bytes = (run / "results.json").stat().st_size
        render_report(load_results(run))  # warm-up: template compilation and imports are one-off costs
        load_t, loaded = _timed(lambda: load_results(run), args.repeat)
        render_t, html = _timed(lambda: render_report(loaded), args.repeat)
        total_t, path = _timed(lambda: write_report(run), args.repeat)
        size = Path(path).stat().st_size  # type: ignore[arg-type]
    assert isinstance(html, str)

    def line(name: str, times: list[float]) -> str:
        return f"  {name:<34s} median {statistics.median(times):6.3f} s   best {min(times):6.3f} s"

    print(
        f"synthetic result: {n_cells} cells ({len(doc.datasets)} data sets x {len(doc.models)} models x "
        f"{args.repetitions} repetitions), results.json {json_bytes / 1e6:.2f} MB"
    )
    print(f"timings over {args.repeat} rounds:")
    print(line("load results.json (validate)", load_t))
    print(line("render report.html", render_t))
    print(line("bench report (load+render+write)", total_t))
    total = statistics.median(total_t)
    print(f"report.html size: {size:,} bytes ({size / 1e6:.2f} MB), {html.count('<svg')} inline SVG charts")
    print(f"vs budget: time {total / BUDGET_S:.2f} x of {BUDGET_S:g} s, size {size / BUDGET_BYTES:.2f} x of 2 MB")
    ok = total < BUDGET_S and size < BUDGET_BYTES
    print("OK" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
