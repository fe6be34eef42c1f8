"""A synthetic, schema-valid results document: for the report's tests, its browser test and its render benchmark.

Numbers are made up but shaped like real runs (the paper's models and data sets, GPU energy from counters, CPU from
RAPL, RAM estimated, CodeCarbon beside them, sequential and batched serving of the LLMs, a few failed and flagged
cells), so every part of the report has something to show. Deterministic for a given ``seed``. Nothing here is
imported by ``bench run``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from bench.meters.series import round_sig
from bench.results import (
    Cell,
    CellError,
    DatasetRecord,
    EnergyValue,
    IdleBaseline,
    PowerSeries,
    ResultDocument,
    SplitRecord,
    Window,
)

#: (kit name, paper label, kind, typical seconds per pass over 200 texts, accuracy on tomatoes)
MODELS: tuple[tuple[str, str, str, float, float], ...] = (
    ("linear-bow", "Linear BoW", "traditional", 0.003, 0.60),
    ("linear-tfidf", "Linear Tf-idf", "traditional", 0.015, 0.59),
    ("linear-embedding", "Linear Embedding", "traditional", 1.2, 0.78),
    ("xgboost-bow", "XGBoost BoW", "traditional", 0.004, 0.55),
    ("xgboost-tfidf", "XGBoost Tf-idf", "traditional", 0.02, 0.55),
    ("xgboost-embedding", "XGBoost Embedding", "traditional", 1.3, 0.75),
    ("llama-3.1-8b", "Llama 3.1 8B", "llm", 36.0, 0.87),
    ("qwen-2.5-7b", "Qwen 2.5 7B", "llm", 35.0, 0.74),
    ("phi-3.5-mini", "Phi 3.5 Mini", "llm", 41.0, 0.86),
    ("phi-3.5-moe", "Phi 3.5 MoE", "llm", 46.0, 0.88),
    ("jamba-mini-1.5", "Jamba Mini 1.5", "llm", 60.0, 0.90),
    ("llama-3.1-70b", "Llama 3.1 70B", "llm", 160.0, 0.91),
    ("ds-llama-8b", "DS Llama 8B", "llm", 700.0, 0.83),
)
DATASETS = ("tomatoes", "news", "yelp", "emotion", "fktg")
LABELS = {
    "tomatoes": ["neg", "pos"],
    "news": ["World", "Sports", "Business", "Sci/Tech"],
    "yelp": ["1", "2", "3", "4", "5"],
    "emotion": ["sadness", "joy", "love", "anger", "fear", "surprise"],
    "fktg": [f"topic {i}" for i in range(9)],
}


@dataclass(frozen=True)
class Machine:
    """The synthetic machine: names and the power draw the energies are made from."""

    name: str
    gpu_name: str | None
    gpu_count: int
    gpu_w: float  # while busy
    gpu_idle_w: float
    cpu_w: float
    ram_gb: float
    speed: float  # duration multiplier against the catalogue's typical seconds


MACHINES = {
    "h100": Machine("h100", "NVIDIA H100 80GB HBM3", 4, 350.0, 70.0, 110.0, 768.0, 1.0),
    "a30": Machine("a30", "NVIDIA A30", 8, 140.0, 30.0, 90.0, 1024.0, 0.6),
    "cpu": Machine("cpu", None, 0, 0.0, 0.0, 8.0, 25.0, 1.0),
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sample_document(
    datasets: tuple[str, ...] = ("tomatoes", "news"),
    *,
    models: int | None = None,
    repetitions: int = 3,
    serving: bool = True,
    machine: str = "h100",
    failures: bool = True,
    hostile: bool = False,
    n_test: int = 200,
    predictions: bool = True,
    seed: int = 0,
) -> ResultDocument:
    """A complete run. ``models`` limits the catalogue (LLMs count twice with ``serving``: sequential and batched).
    ``hostile`` adds a model and a data set whose names are HTML, to check the report shows them as text."""
    rng = random.Random(seed)
    box = MACHINES[machine]
    chosen = list(MODELS if models is None else MODELS[:models])
    model_names: list[str] = []
    model_info: dict[str, dict[str, Any]] = {}
    specs: dict[str, tuple[str, str, float, float, str | None]] = {}
    for name, label, kind, seconds, acc in chosen:
        modes: tuple[str | None, ...] = ("sequential", "batched") if serving and kind == "llm" else (None,)
        for mode in modes:
            full = f"{name}-{mode}" if mode else name
            model_names.append(full)
            params: dict[str, Any] = {"classifier": "logreg"} if kind == "traditional" else {"hub_revision": "0" * 40}
            if mode:
                params["serving"] = mode
            if kind == "llm" and box.gpu_count:
                params["gpus"] = 2 if "70b" in name else 1
            model_info[full] = {"name": full, "paper_label": label, "kind": kind, "params": params, "info": {}}
            # Batching the whole split into one engine call is several times faster than one request at a time.
            speed = box.speed * (0.15 if mode == "batched" else 1.0)
            specs[full] = (label, kind, seconds * speed, acc, mode)
    dataset_names = list(datasets)
    if hostile:
        hostile_model = "<script>alert(1)</script>"
        model_names.append(hostile_model)
        model_info[hostile_model] = {"name": hostile_model, "paper_label": None, "kind": "traditional", "params": {}}
        specs[hostile_model] = ("", "traditional", 0.01, 0.5, None)
        dataset_names.append('<img src=x onerror="alert(2)">')

    records: dict[str, DatasetRecord] = {}
    for ds in dataset_names:
        labels = LABELS.get(ds, ["a", "b"])
        splits = [
            SplitRecord(
                repetition=r,
                seed=seed + r,
                train_idx=list(range(r, r + n_test)),
                test_idx=list(range(10_000 + r, 10_000 + r + n_test)),
            )
            for r in range(repetitions)
        ]
        records[ds] = DatasetRecord(
            name=ds,
            pin={"source": "hub", "hub_id": f"example/{ds}", "revision": _sha(ds)[:40], "content_sha256": _sha(ds)},
            label_names=labels,
            language="de" if ds == "fktg" else "en",
            n_items=20_000,
            n_train=n_test,
            n_test=n_test,
            splits=splits,
            splits_sha256=_sha(f"{ds}-{seed}-{repetitions}"),
            test_labels={str(r): [(i + r) % len(labels) for i in range(n_test)] for r in range(repetitions)},
        )

    idle_w = {"gpu": box.gpu_idle_w * box.gpu_count or None, "cpu": 0.2 * box.cpu_w, "ram": 0.375 * box.ram_gb}
    cells: list[Cell] = []
    for ds in dataset_names:
        n_classes = len(records[ds].label_names)
        ds_factor = 1.0 + 0.15 * (dataset_names.index(ds) % 3)
        for model in model_names:
            label, kind, seconds, acc, mode = specs[model]
            for rep in range(repetitions):
                stamp = f"2026-01-01T00:{(len(cells) // 60) % 60:02d}:{len(cells) % 60:02d}+00:00"
                if failures and kind == "llm" and "70b" in model and rep == repetitions - 1:
                    cells.append(
                        Cell(
                            dataset=ds,
                            model=model,
                            repetition=rep,
                            status="failed",
                            started_at=stamp,
                            finished_at=stamp,
                            error=CellError(type="OutOfMemoryError", message="CUDA out of memory <tried 2.0 GiB>"),
                        )
                    )
                    continue
                cells.append(
                    _cell(
                        rng,
                        box,
                        ds,
                        model,
                        rep,
                        kind,
                        seconds * ds_factor,
                        acc,
                        records[ds].test_labels[str(rep)],
                        n_classes,
                        idle_w,
                        stamp,
                        predictions,
                        flagged=failures and rep == 0 and model.startswith("qwen"),
                    )
                )

    machine_info = {
        "hostname": f"node-{box.name}",
        "os": "Linux 6.1",
        "python": "3.11.7",
        "cpu_model": "AMD EPYC 9334 32-Core Processor" if box.gpu_count else "AMD EPYC",
        "logical_cpus": 128 if box.gpu_count else 2,
        "ram_gb": box.ram_gb,
        "gpus": [
            {"index": i, "name": box.gpu_name, "memory_gb": 80.0, "power_limit_w": 700.0, "uuid": f"GPU-{i}"}
            for i in range(box.gpu_count)
        ],
        "gpu_driver": "550.54.15" if box.gpu_count else None,
        "cuda_visible_devices": ",".join(str(i) for i in range(box.gpu_count)) or None,
        "nvml_status": f"ok: {box.gpu_count} GPU(s)" if box.gpu_count else "NVML unavailable",
        "rapl_status": "ok: package-0, package-1",
    }
    software = {
        "kit_version": "0.1.0",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "container_image_id": "sha256:" + _sha("image")[:64],
        "container_image": f"bench:{box.name}",
        "libraries": {"numpy": "2.4.6", "scikit-learn": "1.9.1", "torch": "2.13.0", "vllm": "0.9.0", "xgboost": None},
        "hf_hub_offline": "1",
    }
    gpu_method = "measured:nvml-energy-counter" if box.gpu_count else "unavailable"
    settings = {"min_window_s": 10.0, "max_loops": 100000, "idle_baseline_s": 30.0, "warmup_texts": 8, "device": "cuda"}
    suite = {"datasets": dataset_names, "models": model_names, "repetitions": repetitions, "description": "synthetic"}
    return ResultDocument(
        run_id=f"{box.name}-synthetic-{seed}",
        status="complete",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T01:00:00+00:00",
        kit_version="0.1.0",
        profile={"name": box.name, "description": f"synthetic {box.name} machine"},
        suite_name="synthetic",
        suite=suite,
        settings=settings,
        settings_sha256=_sha(repr(settings)),
        environment={"machine": machine_info, "software": software},
        meters={
            "components": {
                "gpu": {"meter": "nvml" if box.gpu_count else None, "method": gpu_method, "reason": None},
                "cpu": {"meter": "rapl", "method": "measured:rapl"},
                "ram": {"meter": "ram-estimate", "method": "estimated:ram-0.375W/GB", "detail": {"w_per_gb": 0.375}},
            },
            "side": {
                "codecarbon": {
                    "enabled": True,
                    "detail": {"version": "3.3.2", "tracking_mode": "machine", "measure_power_secs": 15.0},
                }
            },
            "notes": {"ram": "estimated: no RAPL DRAM domain on this machine"},
        },
        idle=[
            IdleBaseline(
                session=0,
                measured_at="2026-01-01T00:00:00+00:00",
                duration_s=30.0,
                power_w=idle_w,
                methods={"gpu": gpu_method, "cpu": "measured:rapl", "ram": "estimated:ram-0.375W/GB"},
            )
        ],
        datasets=records,
        models=model_info,
        cells=cells,
    )


def _cell(
    rng: random.Random,
    box: Machine,
    ds: str,
    model: str,
    rep: int,
    kind: str,
    seconds: float,
    acc: float,
    truth: list[int],
    n_classes: int,
    idle_w: dict[str, float | None],
    stamp: str,
    predictions: bool,
    flagged: bool,
) -> Cell:
    duration = seconds * rng.uniform(0.93, 1.07)
    loops = max(1, int(10.0 // duration) + (1 if duration < 10 else 0))
    gpus = 2 if "70b" in model else 1
    # The GPU meter covers every visible GPU: idle ones draw their idle power, busy ones more.
    busy_gpu = box.gpu_idle_w * box.gpu_count + ((box.gpu_w - box.gpu_idle_w) * gpus if kind == "llm" else 5.0)
    power = {"gpu": busy_gpu, "cpu": box.cpu_w * rng.uniform(0.3, 0.6), "ram": 0.375 * box.ram_gb * 1.02}
    methods = {
        "gpu": "measured:nvml-energy-counter",
        "cpu": "measured:rapl",
        "ram": "estimated:ram-0.375W/GB",
    }
    energy: dict[str, EnergyValue] = {}
    codecarbon: dict[str, EnergyValue] = {}
    for comp, watts in power.items():
        if comp == "gpu" and not box.gpu_count:
            energy[comp] = EnergyValue(energy_j=None, method="unavailable", reason="no GPU")
            codecarbon[comp] = EnergyValue(energy_j=None, method="unavailable", reason="CodeCarbon found no GPU")
            continue
        joules = watts * duration * rng.uniform(0.97, 1.03)
        idle = idle_w.get(comp)
        net = joules - idle * duration if idle is not None else None
        energy[comp] = EnergyValue(energy_j=joules, net_energy_j=net, method=methods[comp])
        # CodeCarbon in machine scope samples every 15 s: over short windows it misses or overcounts.
        codecarbon[comp] = EnergyValue(energy_j=joules * rng.uniform(0.8, 1.6), method="measured:codecarbon")
    n_test = len(truth)
    correct = round(min(1.0, max(0.0, acc + rng.gauss(0, 0.015))) * n_test)
    # LLMs sometimes answer with no label: -1, counted as wrong (some of the wrong answers).
    n_invalid = min(n_test - correct, round(rng.uniform(0.0, 0.03) * n_test)) if kind == "llm" else 0
    preds = [
        t if i < correct else (-1 if i >= n_test - n_invalid else (t + 1) % n_classes) for i, t in enumerate(truth)
    ]
    return Cell(
        dataset=ds,
        model=model,
        repetition=rep,
        status="ok",
        started_at=stamp,
        finished_at=stamp,
        n_test=n_test,
        accuracy=correct / n_test,
        macro_f1=max(0.0, correct / n_test - rng.uniform(0.0, 0.04)),
        invalid_rate=n_invalid / n_test,
        load_s=rng.uniform(1, 30) if kind == "llm" else 0.1,
        train_s=0.05 if kind == "traditional" else None,
        duration_s=duration,
        window=Window(duration_s=duration * loops, loops=loops, min_window_s=10.0),
        energy=energy,
        codecarbon=codecarbon,
        predictions=preds if predictions else None,
        validity=["gpu power 912 W above the device's limit of 700 W"] if flagged else [],
        power_series=_power_series(
            f"{ds}/{model}/{rep}",
            power,
            idle_w,
            duration * loops,
            bool(box.gpu_count),
            {c: v.energy_j * loops for c, v in energy.items() if v.energy_j is not None},
        ),
    )


def _power_series(
    key: str,
    power: dict[str, float],
    idle_w: dict[str, float | None],
    window_s: float,
    gpu: bool,
    window_j: dict[str, float],
) -> PowerSeries:
    """A series shaped like ``bench.meters.series`` records it: the GPU counter in >= 1 s bins, RAPL and the RAM
    estimate in 0.1 s bins (at most 600), rising from idle over the first second, scaled so that it integrates to the
    cell's energy of the window (``window_j``, J per component), as a recorded one does (``bench validate`` checks
    it). Its own random stream (seeded by the cell), so adding it left the rest of the sample unchanged."""
    rng = random.Random(key)
    components: dict[str, dict[str, Any]] = {}
    for comp, method, floor_s in (
        ("gpu", "measured:nvml-energy-counter", 1.0),
        ("cpu", "measured:rapl", 0.1),
        ("ram", "estimated:ram-0.375W/GB", 0.1),
    ):
        if comp == "gpu" and not gpu:
            continue
        n = min(max(int(window_s / floor_s), 1), 600)
        interval = window_s / n
        idle = idle_w.get(comp) or 0.0
        watts = []
        for k in range(n):
            rise = min(1.0, (k + 0.5) * interval)  # the first second climbs from idle to the working draw
            level = idle + (power[comp] - idle) * rise
            noise = 1.0 if comp == "ram" else rng.uniform(0.97, 1.03)
            watts.append(level * noise)
        scale = window_j[comp] / (sum(watts) * interval) if comp in window_j and sum(watts) > 0 else 1.0
        watts = [round_sig(w * scale) for w in watts]  # stored as a recorded series is
        source = "counter"
        components[comp] = {"method": method, "source": source, "interval_s": interval, "watts": watts}
    missing = {} if gpu else {"gpu": "not measured: no GPU"}
    return PowerSeries.model_validate({"window_s": window_s, "hz": 10.0, "components": components, "missing": missing})
