"""GPU check: the kit's meters and serving paths on one GPU, offline, in a few minutes (issue 17, item 1).

    python benchmarks/gpu_check.py --out DIR [--wheels WHEELS] [--embedder FOLDER] [--fake-nvml]

Windows metered (each ``--window-s`` long, 10 s by default: NVML's counter floor): the idle baseline; a traditional
cell (bag of words + logistic regression on generated texts); an embedding cell (``--embedder`` folder, or a tiny
random-weight sentence-transformer built here; float16 on CUDA); a tiny random-weight decoder (built here with a
locally trained tokenizer) through the transformers pipeline, sequential, batched and scoring. Over every window
two GPU methods integrate the same span: NVML's energy counter (the primary meter) and NVML power sampled at 10 Hz
(the side meter of ``build_meter_set(gpu_cross_check=True)``). The ratio counter/sampling is printed per window and
written to DIR/gpu-check.json; a side meter that cannot run is "unavailable" with the reason, never a zero.

Then the kit's own run (``run_kit``): the generated texts as a CSV (DIR/gpu-check-texts.csv), an ad-hoc run through
``bench.runner.run`` (what ``bench run --dataset FILE --model ...`` does: meters, idle baseline, calibration, the loop
rule, validity, the plausibility checks) on a profile made for the GPUs NVML sees (``check_profile``: device cuda, the
hf_pipeline LLM backend), 1 repetition, windows of ``--window-s``; models: linear-bow and the tiny decoder folder as
an own ``hf:`` model served sequential, batched and scoring (the embedder is no catalog embedder, so the embedding cell
stays a cross-check window only). It writes DIR/<run id>/results.json and report.html, validates them as ``bench
validate`` does, and prints both paths. On the fake NVML the profile still says cuda (so the fake GPU is metered and
checked as a GPU run's), while the models and the calibration's torch GEMM run on the CPU, which has no CUDA: the
calibration is then ``gemm-torch-f32-256-v1``, not the GPU reference, as its record says.

``--wheels DIR`` installs the wheels there (``pip install --no-index --no-deps --target``, a temp folder put first
on sys.path) BEFORE importing the kit: pydantic is a hard dependency and is not in a stock CUDA PyTorch environment.
``--fake-nvml`` runs on a fake NVML (one GPU at a constant ``--fake-power-w``), for CPU machines and CI; every number
it prints is then the fake's, not hardware's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def install_wheels(wheels: Path) -> Path:
    """pip-install every wheel in ``wheels`` (offline, no dependency resolution) into a temp folder put on sys.path.

    Exits (SystemExit with the message) when ``wheels`` is no folder, holds no ``.whl`` file, or pip refuses one of
    them (its own message printed above), naming the folder and how to rebuild it."""
    rebuild = f"make gpu-check-wheels WHEELS={wheels} builds it"
    if not wheels.is_dir():
        raise SystemExit(f"--wheels {wheels}: no such folder ({rebuild})")
    files = sorted(str(p) for p in wheels.glob("*.whl"))
    if not files:
        raise SystemExit(f"--wheels {wheels}: no .whl files there ({rebuild})")
    target = Path(tempfile.mkdtemp(prefix="bench-gpu-check-wheels-"))
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target), *files]
    if subprocess.run(cmd).returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise SystemExit(f"--wheels {wheels}: pip could not install its wheels (pip's message above); {rebuild} anew")
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])
    return target


def texts_and_labels(n: int) -> tuple[list[str], list[int]]:
    """Generated two-class texts (no data package, no Hub): label 1 positive words, label 0 negative ones."""
    good = ["great", "wonderful", "moving", "sharp", "funny", "brilliant"]
    bad = ["boring", "awful", "flat", "dull", "clumsy", "tedious"]
    texts, labels = [], []
    for i in range(n):
        words = good if i % 2 else bad
        texts.append(f"a {words[i % 6]} film, {words[(i // 2) % 6]} acting and a {words[(i // 3) % 6]} plot, take {i}")
        labels.append(i % 2)
    return texts, labels


def build_tiny_sentence_transformer(folder: Path) -> Path:
    """A 2-layer random-weight BERT with a locally written vocabulary, wrapped as a sentence-transformer (mean pool)."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted(
        {w.strip(",") for t in texts_and_labels(24)[0] for w in t.split()} | set("abcdefghijklmnopqrstuvwxyz0123456789")
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    # A plain transformer folder loads as a sentence-transformer with mean pooling (its documented default), through
    # the one API sentence-transformers 5 and 6 share (the `models` module is deprecated in 6.2).
    out = folder / "st"
    SentenceTransformer(str(folder), device="cpu").save(str(out))
    return out


class EmbeddingProbe:
    """The embedding cell's inference: encode the texts (float16 on CUDA), predict the sign of the first dimension."""

    def __init__(self, folder: Path, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.device = device
        self.encoder = SentenceTransformer(str(folder), device=device, local_files_only=True)
        if device.startswith("cuda"):
            self.encoder.half()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def predict(self, texts: list[str]) -> list[int]:
        emb = self.encoder.encode(texts, batch_size=32, convert_to_numpy=True)
        return [int(v > 0) for v in emb[:, 0]]


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def window_record(name: str, reading: Any, side_unavailable: dict[str, str]) -> dict[str, Any]:
    """The two GPU energies of one window and their ratios, with the plausibility checks of the primary reading."""
    counter = reading.components["gpu"]
    counter_s = reading.component_duration_s.get("gpu") or reading.duration_s
    out: dict[str, Any] = {
        "window": name,
        "duration_s": reading.duration_s,
        "counter_j": counter.energy_j,
        "counter_method": counter.method,
        "counter_reason": counter.reason,
    }
    for key, meter in (("sampling", "nvml-sampling"),):
        side = reading.side.get(meter)
        ce = side.components.get("gpu") if side is not None else None
        energy = ce.energy_j if ce is not None else None
        reason = (ce.reason if ce is not None else None) or side_unavailable.get(meter)
        out[f"{key}_j"] = energy
        out[f"{key}_reason"] = None if energy is not None else (reason or "no reading")
        # Mean powers over each meter's own span: a side meter's window encloses the counter's by milliseconds (it
        # starts before and stops after), so a ratio of raw energies would read that skew as disagreement.
        side_s = side.duration_s if side is not None else None
        out[f"counter_vs_{key}"] = ratio(ratio(counter.energy_j, counter_s), ratio(energy, side_s))
    for component in ("gpu", "cpu", "ram"):
        out[f"{component}_power_w"] = reading.power_w(component)
    return out


def check_window(record: dict[str, Any], gpu_limit_w: float | None) -> list[str]:
    """Plausibility of one window (the rules ``bench.validation`` applies to cells): energies not negative, GPU power
    within its limit, the two methods within 10% of one another."""
    problems: list[str] = []
    power = record["gpu_power_w"]
    if power is not None and gpu_limit_w and power > gpu_limit_w * 1.1:
        problems.append(f"GPU power {power:.1f} W above 110% of its limit {gpu_limit_w:.0f} W")
    for key in ("counter_vs_sampling",):
        r = record[key]
        if r is not None and not 0.9 <= r <= 1.1:
            problems.append(f"{key} = {r:.3f}: the methods disagree by more than 10%")
    return problems


#: The decoder's serving modes, in the cross-check windows and in the kit's run.
SERVINGS = ("sequential", "batched", "scoring")
#: The kit run's split of the generated texts (1 repetition).
RUN_N_TRAIN = 64
RUN_N_TEST = 32


def check_profile(gpus: list[dict[str, Any]], window_s: float, fake: bool, max_other_cpu_share: float | None) -> Any:
    """The hardware profile of the kit's run: the H100 profile's fields, made for the GPUs NVML sees (their name as
    the pattern, their count, the lowest power limit as the profile's maximum), device cuda, windows and idle baseline
    of ``window_s`` s, no CodeCarbon (a side meter the check does not need), the calibration on, and the hf_pipeline
    LLM backend with 4 new tokens (float16 on a GPU; float32 on the fake NVML's CPU). Raises ValueError without a GPU
    and pydantic's ValidationError if the result is not a valid profile."""
    import re

    from bench.config import HardwareProfile, load_profile

    if not gpus:
        raise ValueError("the kit's run needs a metered GPU; NVML lists none")
    base = load_profile("h100").model_dump()
    limits = [g["power_limit_w"] for g in gpus if g.get("power_limit_w")]
    base.update(
        name="gpu-check",
        description=f"benchmarks/gpu_check.py on {len(gpus)} x {gpus[0]['name']}" + (" (FAKE NVML)" if fake else ""),
        hardware={
            "device": "cuda",
            "gpu_model_pattern": re.escape(str(gpus[0]["name"])),
            "gpu_count": len(gpus),
            "gpu_max_power_w": min(limits) if limits else None,
        },
    )
    base["measurement"].update(min_window_s=window_s, idle_baseline_s=window_s, codecarbon=False, calibration=True)
    if max_other_cpu_share is not None:
        base["measurement"]["max_other_cpu_share"] = max_other_cpu_share
    base["llm"].update(backend="hf_pipeline", serving="sequential", batch_size=16, max_new_tokens=4)
    base["llm"]["dtype"] = "float32" if fake else "float16"
    return HardwareProfile.model_validate(base)


def run_kit(
    args: argparse.Namespace, gpus: list[dict[str, Any]], decoder: Path, texts: list[str], labels: list[int], fake: bool
) -> dict[str, Any]:
    """The kit's own run over the generated texts (see the module's docstring): returns the paths of results.json and
    report.html, the calibration in words, and what ``bench validate`` finds (empty: accepted).

    On the fake NVML, backends are created on the CPU and the calibration runs a CPU torch GEMM (there is no CUDA);
    both are put back afterwards. Raises what ``bench.runner.run`` raises for a run that cannot start."""
    import csv

    import bench.backends
    import bench.calibration
    from bench.report import write_report
    from bench.runner import RunRequest, run
    from bench.validation import validate_file

    data = args.out / "gpu-check-texts.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows((t, "positive" if y else "negative") for t, y in zip(texts, labels, strict=True))
    folder = decoder.resolve()
    models = ["linear-bow", *(f"hf:{folder}[serving={s},batch_size=16]" for s in SERVINGS)]
    profile = check_profile(gpus, args.window_s, fake, args.max_other_cpu_share)
    request = RunRequest(
        profile=profile,
        suite_name="default",
        suite_given=False,
        reports_dir=args.out,
        new=True,
        datasets=[f"gpu-check={data}"],
        models=models,
        n_train=RUN_N_TRAIN,
        n_test=RUN_N_TEST,
        repetitions=1,
        min_window_s=args.window_s,
        idle_baseline_s=args.window_s,
        codecarbon=False,
        progress=False,
        language="en",
    )
    create_backend, workload_for = bench.backends.create_backend, bench.calibration.workload_for
    if fake:

        def on_cpu(*a: Any, **kw: Any) -> Any:
            if str(kw.get("device", "")).startswith("cuda"):
                kw["device"] = "cpu"
            return create_backend(*a, **kw)

        bench.backends.create_backend = on_cpu
        bench.calibration.workload_for = lambda device: bench.calibration.TorchGemm("cpu", n=256, dtype="float32")
    try:
        outcome = run(request)
    finally:
        bench.backends.create_backend, bench.calibration.workload_for = create_backend, workload_for
    report = write_report(outcome.results_path)
    doc, problems = validate_file(outcome.results_path)
    calibration = [
        f"{c.reference} on {c.device}: "
        + (f"{c.j_per_unit:.4g} J and {c.s_per_unit:.4g} s per unit" if c.j_per_unit is not None else str(c.reason))
        for c in doc.calibration
    ]
    return {
        "results": str(outcome.results_path),
        "report": str(report),
        "cells": {c.model: c.status for c in doc.cells},
        "calibration": "; ".join(calibration) or "none",
        "validation": [str(p) for p in problems],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--wheels", type=Path)
    parser.add_argument("--embedder", type=Path, help="a sentence-transformers folder (default: a tiny random one)")
    parser.add_argument("--window-s", type=float, default=10.0, help="seconds per window (default 10)")
    parser.add_argument("--fake-nvml", action="store_true", help="a fake NVML GPU (CPU machines, CI)")
    parser.add_argument("--fake-power-w", type=float, default=90.0)
    parser.add_argument(
        "--max-other-cpu-share",
        type=float,
        help="the run's measurement.max_other_cpu_share (default: the profile's 0.1); CI's busy machines pass 1",
    )
    args = parser.parse_args(argv)
    if args.wheels:
        install_wheels(args.wheels)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    fake = None
    if args.fake_nvml:
        sys.path.insert(0, str(REPO))
        from tests.fakes.fake_pynvml import FakeGpu, FakePynvml

        fake = FakePynvml([FakeGpu(name="NVIDIA H200 (fake NVML)", power_w=args.fake_power_w, power_limit_w=700.0)])
        sys.modules["pynvml"] = fake
        from bench.meters import gpu as nvml_module

        nvml_module.DEFAULT_MIN_WINDOW_S = min(nvml_module.DEFAULT_MIN_WINDOW_S, args.window_s)

    from bench.meters import build_meter_set
    from bench.run.session import measure_idle
    from bench.runner import measure_window

    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    # The three GPU methods only: CodeCarbon (machine scope, the paper's) is the kit's side meter in real runs.
    meters = build_meter_set(use_gpu=True, gpu_cross_check=True, codecarbon=False)
    described = meters.describe()
    side_unavailable = {n: v["reason"] for n, v in described["side"].items() if not v.get("enabled")}
    gpu_meter = meters.owner("gpu")
    if gpu_meter is None:
        print(f"gpu-check: no GPU can be metered here: {described['components']['gpu']['reason']}", file=sys.stderr)
        return 2
    gpus = gpu_meter.describe()["gpus"]  # read while NVML is open (the run opens its own)
    limit_w = next(iter(g["power_limit_w"] for g in gpus), None)
    import torch

    device = "cuda" if torch.cuda.is_available() and fake is None else "cpu"
    texts, labels = texts_and_labels(400)
    windows: list[dict[str, Any]] = []
    work = tempfile.TemporaryDirectory(prefix="bench-gpu-check-")
    try:
        print(f"gpu-check: meters {described['components']['gpu']['method']} + side {list(described['side'])}")
        idle = measure_idle(meters, args.window_s, 0)
        windows.append({"window": "idle", "duration_s": idle.duration_s, "idle": idle.power_w})

        def metered(name: str, backend: Any, items: list[str]) -> None:
            _, _, reading = measure_window(backend, items, meters, args.window_s, 100_000)
            windows.append(window_record(name, reading, side_unavailable))

        # idle again as a window record (the three methods over an idle span)
        class Idle:
            def synchronize(self) -> None: ...

            def predict(self, items: list[str]) -> list[int]:
                time.sleep(0.5)
                return [0]

        metered("idle (cross-check)", Idle(), ["."])
        from bench.backends.traditional import TraditionalBackend

        trad = TraditionalBackend("logreg", "bow", device=device)
        trad.load()
        trad.fit(texts[:200], labels[:200], ["neg", "pos"], language="en")
        metered("traditional: linear-bow", trad, texts[200:])
        folder = args.embedder or build_tiny_sentence_transformer(Path(work.name) / "embedder")
        metered(
            f"embedding ({'float16' if device == 'cuda' else 'float32'}, {device})",
            EmbeddingProbe(folder, device),
            texts,
        )
        sys.path.insert(0, str(REPO))
        from bench.backends.hf_pipeline import HFPipelineBackend
        from tests.tiny_models import build_tiny_llama

        # under --out, not the temp folder: the kit run's results name this folder as its `hf:` model, so it must
        # outlive the check (a few MB) for the run to be resumed or rerun
        tiny = build_tiny_llama(args.out / "tiny-decoder")
        for serving in SERVINGS:
            llm = HFPipelineBackend(str(tiny), device=device, serving=serving, batch_size=16, max_new_tokens=4)
            llm.load()
            llm.fit(texts[:20], labels[:20], ["neg", "pos"], language="en")
            metered(f"decoder: hf pipeline {serving}", llm, texts[: 8 if serving == "sequential" else 32])
            llm.close()
        meters.close()  # the run builds its own meter set
        try:
            run_paths = run_kit(args, gpus, tiny, texts, labels, fake is not None)
        except Exception as exc:  # the cross-check's numbers are still written, with why the run is missing
            run_paths = {"error": f"{type(exc).__name__}: {exc}", "validation": [f"the kit's run failed: {exc}"]}
    finally:
        meters.close()
        work.cleanup()
    problems = {w["window"]: check_window(w, limit_w) for w in windows if "counter_j" in w}
    doc = {
        "fake_nvml": fake is not None,
        "device": device,
        "meters": described,
        "side_unavailable": side_unavailable,
        "windows": windows,
        "problems": problems,
        "run": run_paths,
        "total_s": time.perf_counter() - started,
    }
    (args.out / "gpu-check.json").write_text(json.dumps(doc, indent=2, default=str))
    head = f"{'counter J':>10s} {'sampled J':>10s} {'cnt/smp':>8s}"
    print(f"\n{'window':40s} {'s':>6s} {head}   (ratios: mean power over each meter's own span)")

    def fmt(value: float | None, spec: str) -> str:
        """``value`` in ``spec`` (e.g. ``10.1f``), or ``n/a`` padded to the same width."""
        return format("n/a", f">{spec.split('.')[0]}") if value is None else format(value, spec)

    for w in windows:
        if "counter_j" not in w:
            print(
                f"{w['window']:40s} {w['duration_s']:6.1f} idle power W: "
                + ", ".join(f"{c} {'n/a' if v is None else f'{v:.1f}'}" for c, v in w["idle"].items())
            )
            continue
        print(
            f"{w['window']:40s} {w['duration_s']:6.1f} {fmt(w['counter_j'], '10.1f')} {fmt(w['sampling_j'], '10.1f')} "
            f"{fmt(w['counter_vs_sampling'], '8.3f')}"
        )
    for name, why in side_unavailable.items():
        print(f"unavailable: {name}: {why}")
    bad = {k: v for k, v in problems.items() if v}
    for name, items in bad.items():
        print(f"PROBLEM {name}: {'; '.join(items)}")
    if "results" in run_paths:
        print(f"calibration: {run_paths['calibration']}")
        print(f"results: {run_paths['results']}")
        print(f"report: {run_paths['report']}")
    for problem in run_paths["validation"]:
        print(f"PROBLEM bench validate: {problem}")
    if run_paths["validation"]:
        bad["bench validate"] = run_paths["validation"]
    else:
        print(f"bench validate {run_paths['results']}: ok (cells: {run_paths['cells']})")
    print(
        f"gpu-check: {len(windows)} windows in {doc['total_s']:.0f} s{' on a FAKE NVML' if fake else ''}; "
        f"{args.out / 'gpu-check.json'}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
