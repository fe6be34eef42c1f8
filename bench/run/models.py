"""Which backend serves a catalog model on this profile, and loading it.

Traditional and fine-tuned models get the profile's device and embedder (fine-tuned ones also its ``[training.<model>]``
settings). LLMs get the profile's serving settings (``[llm]``:
backend, serving mode, batch size, token budget, constrained decoding, dtype), their placement on the profile's GPUs
(``bench.catalog.placement``: vLLM's tensor parallel size per node, pipeline parallel size over nodes) and their
locked Hub revision (``bench.catalog.lock``). Loading is timed; a model that fails to load is returned as its error,
so its cells fail with the reason and the grid goes on.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from bench.config import HardwareProfile
from bench.errors import ConfigError


def load_model(
    spec: Any, profile: HardwareProfile, seed: int, *, nodes: int = 1, label_map: dict[str, str] | None = None
) -> tuple[Any, float | None, Exception | None]:
    """Create and load a model's backend: (backend, load seconds, None) or (None, None, the error).

    ``label_map``: a classifier's labels -> the data's label names (``--label-map``), for ``clf:`` models."""
    from bench.backends import create_backend

    overrides: dict[str, Any] = {"device": profile.hardware.torch_device, "seed": seed}
    if spec.kind == "classifier":
        overrides["label_map"] = dict(label_map or {})
    if "embedder" in spec.params:
        overrides["embedder"] = profile.embedder  # the profile pins the embedder it can have
    if spec.kind == "finetuned":
        overrides.update(profile.training.get(spec.name, {}))  # the profile's training budget ([training.<model>])
    spec = without_device_settings(spec)  # bench.run.power sets them on the GPUs; no backend takes them
    t0 = time.perf_counter()
    try:
        if spec.kind == "llm":
            spec, llm_overrides = llm_setup(spec, profile, nodes=nodes)
            overrides.update(llm_overrides)
        backend = create_backend(spec, **overrides)
        backend.load()
    except Exception as exc:  # the model's cells fail, the grid goes on
        return None, None, exc
    return backend, time.perf_counter() - t0, None


def without_device_settings(spec: Any) -> Any:
    """``spec`` without the device keys of its serving configuration (``power_limit_w``, ``gpu_clock_mhz``): the
    run sets those on the GPUs around each cell (``bench.run.power``), so no backend is given them."""
    from bench.catalog.models import DEVICE_SERVING_KEYS, FrozenParams

    if not any(key in spec.params for key in DEVICE_SERVING_KEYS):
        return spec
    params = {k: v for k, v in dict(spec.params).items() if k not in DEVICE_SERVING_KEYS}
    return dataclasses.replace(spec, params=FrozenParams(params))


def llm_setup(spec: Any, profile: HardwareProfile, *, nodes: int = 1) -> tuple[Any, dict[str, Any]]:
    """The profile's serving settings for an LLM: (the spec with the profile's LLM backend, backend overrides).

    Overrides: serving mode, batch size (both from the model entry's serving configuration where it has one, as are
    dtype and quantization), token budget, constrained decoding, dtype, GPUs (vLLM's
    tensor_parallel_size, per node), pipeline_parallel_size (nodes), and the locked revision of a Hub model.
    Raises ConfigError when the model needs more nodes than this run has, saying how to fix it.
    """
    from bench.catalog.models import DEVICE_SERVING_KEYS as DEVICE
    from bench.catalog.models import ENTRY_BACKENDS, LLM_BACKENDS, SERVING_KEYS, is_user_model
    from bench.catalog.placement import placement_for

    llm = profile.llm
    model = str(spec.params["model"])
    gpus, pipeline = 1, 1
    if profile.hardware.on_gpus:
        placement = placement_for(spec, profile, max_nodes=nodes)
        gpus, pipeline = placement.gpus_per_node, placement.nodes
    overrides: dict[str, Any] = {
        "serving": llm.serving,
        "batch_size": llm.batch_size,
        "max_new_tokens": llm.reasoning_max_new_tokens if spec.params.get("reasoning") else llm.max_new_tokens,
        "constrained": llm.constrained,
        "dtype": llm.dtype,
        "truncate": llm.truncate,
        "gpus": gpus,
        "pipeline_parallel_size": pipeline,
    }
    own_backend = spec.backend in ENTRY_BACKENDS.values()  # a GGUF entry: llama.cpp whatever the profile says
    if own_backend:
        overrides["dtype"] = "auto"  # the file's own types, not the profile's; an entry's own dtype converts the file
    # A model entry's own serving configuration (`smollm2-135m[serving=batched,batch_size=4]`) wins over the profile.
    # Device keys (power_limit_w, gpu_clock_mhz) are set on the GPUs by bench.run.power, not given to a backend.
    overrides.update({key: spec.params[key] for key in SERVING_KEYS if key in spec.params and key not in DEVICE})
    if is_user_model(spec.name) or not model.startswith("package:"):
        overrides["revision"] = llm_revision(spec)
    return (spec if own_backend else dataclasses.replace(spec, backend=LLM_BACKENDS[llm.backend])), overrides


def llm_revision(spec: Any) -> str | None:
    """The revision an LLM loads at: a user model's (``hf:ORG/NAME[@REV]``: its own, or the cached snapshot's; a
    folder: its ``@REV`` if any, else None), a catalog Hub model's locked commit (None without a lock entry: the
    backend refuses, naming ``bench models lock``), None for a package model. Raises ConfigError for a user Hub
    model that is not in the cache (``resolve_user_model``)."""
    from bench.catalog.lock import locked_revision
    from bench.catalog.models import is_user_model

    model = str(spec.params["model"])
    if is_user_model(spec.name):  # hf:ORG/NAME[@REV] or hf:/folder: its own revision, or the cached snapshot's
        if Path(model).is_dir() or model.endswith(".gguf"):  # a folder or a GGUF file: pinned by its sha256
            return spec.params.get("revision")
        from bench.catalog.resolve import resolve_user_model

        return resolve_user_model(model, spec.params.get("revision"), option="hf")[1]["revision"]
    if model.startswith("package:"):
        return None
    return locked_revision(model)


def model_record(spec: Any, backend: Any) -> dict[str, Any]:
    """What the results' ``models`` keep of a loaded model: its catalog entry and what the backend says of itself."""
    return {
        "name": spec.name,
        "paper_label": spec.paper_label,
        "kind": spec.kind,
        "backend": spec.backend,
        "params": dict(spec.params),
        "info": backend.info(),
    }


def check_classifier_labels(spec: Any, label_names_by_dataset: dict[str, list[str]], label_map: dict[str, str]) -> None:
    """Before the grid: a ``clf:`` model's labels (its config's ``id2label``) must each match a label of every data
    set of the run, by name or through ``label_map``; ConfigError listing both sides otherwise. Also refuses a Hub
    model that is not in the local cache, saying how to pin and fetch it."""
    from bench.backends.hf_classifier import check_labels, read_id2label
    from bench.catalog.resolve import resolve_user_model

    path, _ = resolve_user_model(str(spec.params["model"]), spec.params.get("revision"))
    id2label = read_id2label(path)
    for dataset, names in label_names_by_dataset.items():
        try:
            check_labels(id2label, names, label_map, model=spec.name)
        except Exception as exc:
            raise type(exc)(f"data set {dataset!r}: {exc}") from None


def check_context(spec: Any, profile: HardwareProfile, datasets: dict[str, Any], *, nodes: int = 1) -> list[str]:
    """Before the grid: every test text's prompt against an LLM's context window, with only its tokenizer loaded.

    A prompt fits when its tokens plus the answer's ``max_new_tokens`` fit the window (the model's config, capped by
    vLLM's ``max_model_len``). Returns notes for the results (texts that ``truncate`` will cut; a model that declares
    no window; labels that are bare ids, which the prompt would list as such). A model that cannot be resolved or
    set up is left to fail at load, where its cells record why.
    Raises ConfigError naming the over-long texts (row in the data, tokens) when ``truncate`` is off.
    """
    from bench.backends import create_backend
    from bench.catalog.models import is_user_model
    from bench.catalog.resolve import local_model_folder
    from bench.errors import BenchError, ConfigError

    if is_user_model(spec.name):  # a missing or wrong folder or file: refused here, before the grid spends energy
        model = str(spec.params["model"])
        if model.endswith(".gguf"):
            from bench.catalog.resolve import check_gguf_file

            check_gguf_file(Path(model).expanduser(), model=spec.name)
        else:
            local_model_folder(model, option=spec.name.split(":", 1)[0])
    try:
        served, overrides = llm_setup(without_device_settings(spec), profile, nodes=nodes)
        backend = create_backend(served, device=profile.hardware.torch_device, seed=0, **overrides)
        backend.load_tokenizer()
    except (BenchError, OSError, ValueError, ImportError):  # such a model fails its cells at load, saying why
        return []
    budget, window = backend.prompt_budget(), backend.context_window()
    if budget is None:
        return [f"model {spec.name}: its config declares no context window; prompt lengths were not checked"]
    notes = []
    for name, prepared in datasets.items():
        labels = list(prepared.record.label_names)
        if all(str(label).strip().lstrip("-").isdigit() for label in labels):
            ids = ",".join(f"{label}=NAME" for label in labels[:3]) + (",..." if len(labels) > 3 else "")
            notes.append(
                f"model {spec.name}, data set {name!r}: its labels are bare ids ({', '.join(labels[:6])}), and the "
                f"prompt asks the LLM to choose among them; say what they mean with --label-names {ids}"
            )
        backend.fit([], [], labels, language=prepared.record.language)
        rows = sorted({i for split in prepared.record.splits for i in split.test_idx})
        over = [(i, tokens) for i in rows if (tokens := backend.prompt_tokens(prepared.texts[i])) > budget]
        if not over:
            continue
        listed = ", ".join(f"row {i + 1} ({tokens:,} tokens)" for i, tokens in over[:5])  # rows, never texts
        more = f" and {len(over) - 5} more" if len(over) > 5 else ""
        what = (
            f"model {spec.name}, data set {name!r}: {len(over)} of {len(rows)} test texts make prompts longer than the "
            f"{budget:,} tokens its context window of {window:,} leaves after {backend.max_new_tokens} answer tokens"
        )
        if not backend.truncate:
            raise ConfigError(
                f"{what}: {listed}{more}. Shorten those texts, or run with --truncate (profile: [llm] truncate = "
                "true) to cut each to fit, keeping the instruction and the labels; the cut is recorded per text"
            )
        notes.append(f"{what}; --truncate cuts them to fit (recorded per text in each cell): {listed}{more}")
    return notes


def check_user_model_pins(stored_models: dict[str, Any], specs: dict[str, Any]) -> None:
    """A resumed run's own models (``clf:``/``hf:``) must be what its earlier sessions ran: a local folder's sha256
    and a Hub model's commit as recorded. Raises ConfigError naming the model, both values and what to do; a model
    the run has not loaded yet, or that cannot be resolved now (its cells fail at load, saying why), passes."""
    from bench.catalog.models import is_user_model
    from bench.catalog.resolve import resolve_user_model
    from bench.errors import ConfigError

    for name, spec in specs.items():
        stored = ((stored_models.get(name) or {}).get("info") or {}).get("pin") or {}
        if not is_user_model(name) or not stored:
            continue
        try:
            option = name.split(":", 1)[0]  # clf or hf
            _, now = resolve_user_model(str(spec.params["model"]), spec.params.get("revision"), option=option)
        except ConfigError:
            continue
        if stored.get("folder_sha256") and now.get("folder_sha256") and stored["folder_sha256"] != now["folder_sha256"]:
            raise ConfigError(
                f"model {name}: its folder's sha256 is {now['folder_sha256'][:12]} now but "
                f"{stored['folder_sha256'][:12]} when this run started; its cells would mix two models. Restore the "
                "folder as it was, or start a new run with --new"
            )
        if stored.get("revision") and now.get("revision") and stored["revision"] != now["revision"]:
            raise ConfigError(
                f"model {name}: it resolves to commit {now['revision'][:12]} now but {stored['revision'][:12]} when "
                f"this run started (unpinned, the Hub's default branch moved); its cells would mix two models. Start "
                f"a new run with --new, pinned: --model {option}:{spec.params['model']}@{now['revision']}"
            )


#: GPUs with FP8 tensor cores (Ada Lovelace and Hopper, compute capability >= 8.9, where vLLM computes in FP8), matched
#: by whole words against a profile's ``gpu_models`` (``bench.config.gpu_model_matches``; a schema-1
#: ``gpu_model_pattern`` as a substring). NVIDIA's compute capability table: developer.nvidia.com/cuda-gpus.
FP8_GPUS: tuple[str, ...] = ("H100", "H200", "GH200", "L4", "L40", "L40S", "B200")
#: AMD Instinct GPUs with FP8 matrix units, matched as ``FP8_GPUS`` on a ``rocm`` profile: CDNA 3 (the MI300 series:
#: MI300X, MI300A, MI325X) and CDNA 4 (MI350X, MI355X); an MI250X (CDNA 2) has none. AMD's Instinct datasheets
#: (amd.com/en/products/accelerators/instinct.html) list FP8 for these only.
AMD_FP8_GPUS: tuple[str, ...] = ("MI300X", "MI300A", "MI325X", "MI350X", "MI355X")


def fp8_gpu_names(device: str) -> tuple[str, ...]:
    """The GPU names with FP8 units on a profile of ``device``: AMD's on ``rocm``, else NVIDIA's."""
    return AMD_FP8_GPUS if device == "rocm" else FP8_GPUS


def has_fp8(hardware: Any) -> bool:
    """Whether a profile's GPU computes in FP8: ``fp8`` in its ``[hardware] precisions`` where the profile lists them
    (an AMD MI300X does, an MI250X does not), else its GPU model is one of ``fp8_gpu_names`` for its device."""
    from bench.config import gpu_model_matches

    if getattr(hardware, "precisions", None):
        return "fp8" in hardware.precisions
    names = fp8_gpu_names(getattr(hardware, "device", "cuda"))
    if hardware.gpu_models:
        return any(gpu_model_matches(fp8, model) for model in hardware.gpu_models for fp8 in names)
    pattern = (hardware.gpu_model_pattern or "").lower()
    return any(name.lower() in pattern for name in names)


def fp8_refusal(profile: HardwareProfile) -> str:
    """Why ``profile``'s GPU cannot run ``quantization=fp8`` (``has_fp8`` is false), in its vendor's terms: NVIDIA's
    compute capability on ``cuda``, AMD's FP8 parts (CDNA 3 and newer) on ``rocm``; each with the profile's
    ``[hardware] precisions``, which decide where they are listed."""
    hw = profile.hardware
    gpu = " | ".join(hw.gpu_models) or hw.gpu_model_pattern or "unnamed"
    if hw.precisions:
        listed = f"the profile's [hardware] precisions ({', '.join(hw.precisions)}) list no fp8"
    else:
        listed = "the profile lists no [hardware] precisions, so its GPU's name decides"
    if hw.device == "rocm":
        return (
            "quantization=fp8 needs FP8 matrix units, which AMD Instinct GPUs have from CDNA 3 on (the MI300 series "
            f"and newer: {', '.join(AMD_FP8_GPUS)}; an MI250X, CDNA 2, has none) and which a profile states with "
            f"'fp8' in [hardware] precisions; {listed}, and this profile's GPU ({gpu}) has none, so the allowed value "
            "is none"
        )
    return (
        f"quantization=fp8 needs FP8 tensor cores (compute capability 8.9 or newer: {', '.join(FP8_GPUS)}; or "
        f"'fp8' in the profile's [hardware] precisions); {listed}, and this profile's GPU ({gpu}) has none, so the "
        "allowed value is none"
    )


def check_serving(spec: Any, profile: HardwareProfile) -> None:
    """Before any energy is spent: whether this profile can serve an LLM entry as its configuration asks.

    Refused, with ConfigError naming the entry, the value and what is allowed: a batch size above the profile's
    ``[llm] max_batch_size``, ``fp8`` outside vLLM on a GPU (on a CPU, or with the HF pipeline), ``int8`` on vLLM
    (PyTorch dynamic quantization is an HF-on-CPU method; vLLM takes fp8 or a pre-quantized checkpoint) or on a GPU,
    ``int8`` with a dtype other than float32/auto (dynamic quantization replaces float32 Linear layers), and
    ``awq``/``gptq`` outside vLLM or on a model whose config.json does not say it is quantized so
    (``check_prequantized_checkpoint``), ``q8_0`` outside llama.cpp, ``length_sorted`` outside the HF pipeline's
    batched and scoring serving. Settings left to the profile are checked
    against the profile's ``[llm]``.
    Labels that tokenize to nothing under ``scoring`` are refused by ``check_context`` (it loads the tokenizer)."""
    if spec.kind != "llm":
        return
    from bench.backends.zero_shot import GGUF_QUANTIZATIONS, PREQUANTIZED
    from bench.catalog.models import ENTRY_BACKENDS

    own = spec.backend == ENTRY_BACKENDS["llamacpp"]
    backend, serving = ("llamacpp", "scoring") if own else (profile.llm.backend, profile.llm.serving)
    serving = spec.params.get("serving", serving)
    if spec.params.get("length_sorted") and (backend != "hf_pipeline" or serving == "sequential"):
        raise ConfigError(
            f"model {spec.name!r} on profile {profile.name!r}: length_sorted=true orders a pass's texts into batches "
            f"by token count, run by the hf_pipeline backend with serving=batched|scoring; here ({backend}, "
            f"serving={serving}) the allowed value is false"
        )
    if own:
        check_llamacpp(spec, profile)
        return
    llm = profile.llm
    dtype = spec.params.get("dtype", llm.dtype)
    quantization = spec.params.get("quantization", "none")
    device = profile.hardware.device
    where = f"model {spec.name!r} on profile {profile.name!r} (LLM backend {llm.backend}, device {device})"
    check_batch_size_limit(spec.params.get("batch_size", llm.batch_size), profile, where=where)
    if quantization == "fp8":
        if not profile.hardware.on_gpus or llm.backend != "vllm":
            raise ConfigError(
                f"{where}: quantization=fp8 needs vLLM on a GPU with FP8 support; here the allowed values are "
                + ("none | int8" if device == "cpu" else "none")
            )
        if not has_fp8(profile.hardware):
            raise ConfigError(f"{where}: {fp8_refusal(profile)}")
    if quantization in PREQUANTIZED:
        if llm.backend != "vllm":
            raise ConfigError(
                f"{where}: quantization={quantization} runs a pre-quantized checkpoint, which only the vllm backend "
                "does; here the allowed values are none" + (" | int8" if profile.hardware.device == "cpu" else "")
            )
        check_prequantized_checkpoint(spec, profile, quantization)
    if quantization in GGUF_QUANTIZATIONS:
        raise ConfigError(
            f"{where}: quantization={quantization} is a GGUF type that llama.cpp converts a GGUF file to: run it on a "
            f"GGUF entry (e.g. smollm2-135m-gguf[quantization={quantization}]); here the allowed values are none"
            + (" | int8" if llm.backend == "hf_pipeline" and device == "cpu" else "")
        )
    if quantization == "int8":
        if llm.backend != "hf_pipeline" or profile.hardware.device != "cpu":
            raise ConfigError(
                f"{where}: quantization=int8 is PyTorch dynamic quantization, run by the hf_pipeline backend on a "
                "CPU; here the allowed values are none"
                + (" | fp8 (on GPUs with FP8 support)" if llm.backend == "vllm" else "")
            )
        if dtype not in ("float32", "auto"):
            raise ConfigError(
                f"{where}: quantization=int8 quantizes float32 Linear layers; with it dtype must be float32 (or "
                f"auto), not {dtype}"
            )


def check_llamacpp(spec: Any, profile: HardwareProfile) -> None:
    """Before any energy is spent: an entry served by llama.cpp (``ENTRY_BACKENDS["llamacpp"]``) has its extra
    installed, a GGUF file where it says (``bench.catalog.resolve.resolve_gguf``: the package's, a local file, or a
    Hub file at its locked revision in the cache), and a configuration llama.cpp runs: weights llama.cpp runs
    (``llamacpp_weights_problem``: the file's own types, or converted to q8_0 or a float type, with a cache that
    can take the converted file), a batch size within the profile's limit. Raises MissingExtraError naming the
    ``llamacpp`` extra, or ConfigError naming the entry, the value or file and what is allowed."""
    import importlib.util

    from bench.catalog.resolve import resolve_gguf
    from bench.extras import missing_module_error

    device = profile.hardware.device
    where = f"model {spec.name!r} on profile {profile.name!r} (llamacpp backend, device {device})"
    check_batch_size_limit(spec.params.get("batch_size", profile.llm.batch_size), profile, where=where)
    from bench.backends.llamacpp_backend import gguf_target, llamacpp_weights_problem

    problem = llamacpp_weights_problem(spec.params.get("quantization", "none"), spec.params.get("dtype", "auto"))
    if problem:
        raise ConfigError(f"{where}: {problem}")
    if importlib.util.find_spec("llama_cpp") is None:
        raise missing_module_error("llama_cpp", needed_by=f"model {spec.name!r} (the llamacpp backend)")
    if spec.params.get("serving", "scoring") != "sequential":  # batched and scoring: a sequence per text
        from bench.backends.llamacpp_backend import batched_sequences_problem

        problem = batched_sequences_problem(int(spec.params.get("batch_size", profile.llm.batch_size)))
        if problem:
            raise ConfigError(f"{where}: {problem}")
    revision = None if str(spec.params["model"]).startswith("package:") else llm_revision(spec)
    path, pin = resolve_gguf(str(spec.params["model"]), revision, spec.params.get("gguf_file"))
    target = gguf_target(spec.params.get("quantization", "none"), spec.params.get("dtype", "auto"))
    if target:  # converted at load: the cache must take the file (bench.catalog.resolve.requantize_gguf)
        from bench.catalog.resolve import check_gguf_cache_writable, converted_gguf_path

        out = converted_gguf_path(path, pin, target)
        if not out.is_file():
            check_gguf_cache_writable(out.parent)


def check_prequantized_checkpoint(spec: Any, profile: HardwareProfile, quantization: str) -> None:
    """Before any energy is spent: an LLM entry with ``quantization=awq|gptq`` must be a checkpoint quantized so,
    as its config.json's ``quantization_config.quant_method`` says. The config is read from where the model will
    load: a local folder, the model store (``--model-store``), or the Hugging Face cache at the pinned revision
    (with Hub access, that one file is downloaded). Only config.json is read: no weights, no file hashes.

    Raises ConfigError naming the model, what its config says and what is allowed; also when the model has no
    pinned revision, is a package model (plain weights), or its config.json is not on this machine offline."""
    from bench.backends.zero_shot import check_prequantized
    from bench.catalog.resolve import MODEL_STORE_ENV, PACKAGE_PREFIX

    model = str(spec.params["model"])
    what = f"model {spec.name!r} (quantization={quantization})"
    if model.startswith(PACKAGE_PREFIX):
        raise ConfigError(f"{what}: a package model holds plain weights, no {quantization} checkpoint; allowed: none")
    if Path(model).is_dir():
        check_prequantized(model, spec.name, quantization)
        return
    revision = llm_revision(spec)  # no placement: only the checkpoint's identity matters here
    if not revision:
        raise ConfigError(
            f"{what}: {model} has no pinned revision, so its config.json cannot be checked; pin it in the model lock "
            "(`bench models lock`) or as hf:ORG/NAME@REV"
        )
    import os

    store = os.environ.get(MODEL_STORE_ENV)
    if store:
        from bench.catalog.resolve import store_folder

        check_prequantized(store_folder(Path(store), model, revision), spec.name, quantization)
        return
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from bench.catalog.embedders import hub_offline

    cached = try_to_load_from_cache(model, "config.json", revision=revision)
    if not isinstance(cached, str):
        if hub_offline():
            raise ConfigError(
                f"{what}: the config.json of {model}@{revision[:12]} is not in the local Hugging Face cache and "
                "HF_HUB_OFFLINE=1, so whether it is a quantized checkpoint cannot be checked; fetch the model first "
                "(`bench models fetch`, or a model store)"
            )
        try:
            cached = hf_hub_download(model, "config.json", revision=revision)
        except Exception as exc:  # no network, gated, unknown commit: say which model and what failed
            raise ConfigError(
                f"{what}: could not fetch the config.json of {model}@{revision[:12]} to check it "
                f"({type(exc).__name__}: {exc})"
            ) from None
    check_prequantized(Path(cached).parent, spec.name, quantization)


def check_batch_size_limit(batch_size: Any, profile: HardwareProfile, *, where: str) -> None:
    """Refuse a batch size above the profile's ``[llm] max_batch_size`` (``HardwareProfile.max_batch_size``).

    ``batch_size``: the value as given (None or a value that is not an integer pass: ``check_serving_value`` names
    those); ``where`` names the entry or option in the message. Raises ConfigError naming it, the value and the
    limit."""
    try:
        number = int(str(batch_size)) if batch_size is not None else None
    except ValueError:
        return
    if number is not None and number > profile.max_batch_size:
        raise ConfigError(
            f"{where}: batch_size={number} is above the limit of profile {profile.name!r} ([llm] max_batch_size = "
            f"{profile.max_batch_size}); allowed: 1 to {profile.max_batch_size}, or raise max_batch_size in the "
            "profile"
        )


def check_stored_methods(stored_models: dict[str, Any], dataset_languages: dict[str, str]) -> None:
    """A resumed run's cells must have been computed by the methods this kit uses, or its cells would mix two:
    label scoring by the answer's summed log-likelihood (``bench.backends.zero_shot.SCORING_RULE``; a stored scoring
    LLM without ``info.scoring_rule`` ranked labels by the mean per token), and bag-of-words tokenised by the data's
    script (a stored bag-of-words model without ``info.tokenisation`` split text without spaces as one word) on a
    data set whose language (``dataset_languages``, by name) is written without spaces. Raises ConfigError naming
    the model and what to do."""
    from bench.data.scripts import spaceless_locale
    from bench.errors import ConfigError

    for name, record in stored_models.items():
        info = (record or {}).get("info") or {}
        if info.get("decoding") == "label-likelihood" and not info.get("scoring_rule"):
            raise ConfigError(
                f"model {name}: this run's earlier cells ranked labels by the mean log-probability per token; this "
                "kit ranks them by the answer's summed log-likelihood (label and end marker): resumed, its cells "
                "would mix two rules. Start a new run (another --run-id, or none)"
            )
        spaceless = [d for d, language in dataset_languages.items() if spaceless_locale(language)]
        if info.get("features") == "bow" and "tokenisation" not in info and spaceless:
            raise ConfigError(
                f"model {name}: this run's earlier cells split {', '.join(spaceless)} (written without spaces) as "
                "whole sentences; this kit segments its words: resumed, its cells would mix two tokenisations. Start "
                "a new run (another --run-id, or none)"
            )


def record_fit(record: dict[str, Any] | None, dataset: str, backend: Any) -> None:
    """After a cell of ``dataset``: a bag-of-words model's tokenisation chosen at its fit (``info.tokenisation``:
    method, ICU locale, why) kept in its record (``document.models[name]``) under
    ``info.tokenisation_by_dataset[dataset]``, since the record's info is taken at load, before any fit. Other
    models: nothing."""
    info = (record or {}).get("info")
    if backend is None or not isinstance(info, dict) or info.get("features") != "bow":
        return
    chosen = {k: v for k, v in ((backend.info() or {}).get("tokenisation") or {}).items() if k != "rule"}
    if chosen:
        info.setdefault("tokenisation_by_dataset", {})[dataset] = chosen
