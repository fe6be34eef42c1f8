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


def load_model(
    spec: Any, profile: HardwareProfile, seed: int, *, nodes: int = 1, label_map: dict[str, str] | None = None
) -> tuple[Any, float | None, Exception | None]:
    """Create and load a model's backend: (backend, load seconds, None) or (None, None, the error).

    ``label_map``: a classifier's labels -> the data's label names (``--label-map``), for ``clf:`` models."""
    from bench.backends import create_backend

    overrides: dict[str, Any] = {"device": profile.hardware.device, "seed": seed}
    if spec.kind == "classifier":
        overrides["label_map"] = dict(label_map or {})
    if "embedder" in spec.params:
        overrides["embedder"] = profile.embedder  # the profile pins the embedder it can have
    if spec.kind == "finetuned":
        overrides.update(profile.training.get(spec.name, {}))  # the profile's training budget ([training.<model>])
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


def llm_setup(spec: Any, profile: HardwareProfile, *, nodes: int = 1) -> tuple[Any, dict[str, Any]]:
    """The profile's serving settings for an LLM: (the spec with the profile's LLM backend, backend overrides).

    Overrides: serving mode, batch size, token budget, constrained decoding, dtype, GPUs (vLLM's
    tensor_parallel_size, per node), pipeline_parallel_size (nodes), and the locked revision of a Hub model.
    Raises ConfigError when the model needs more nodes than this run has, saying how to fix it.
    """
    from bench.catalog.lock import locked_revision
    from bench.catalog.models import LLM_BACKENDS, is_user_model
    from bench.catalog.placement import placement_for

    llm = profile.llm
    model = str(spec.params["model"])
    gpus, pipeline = 1, 1
    if profile.hardware.device == "cuda":
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
    if is_user_model(spec.name):  # hf:ORG/NAME[@REV] or hf:/folder: its own revision, or the cached snapshot's
        overrides["revision"] = spec.params.get("revision")
        if not Path(model).is_dir():
            from bench.backends.hf_classifier import resolve_user_model

            overrides["revision"] = resolve_user_model(model, spec.params.get("revision"), option="hf")[1]["revision"]
    elif not model.startswith("package:"):
        overrides["revision"] = locked_revision(model)  # None: the backend refuses, naming `bench models lock`
    return dataclasses.replace(spec, backend=LLM_BACKENDS[llm.backend]), overrides


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
    from bench.backends.hf_classifier import check_labels, read_id2label, resolve_user_model

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
    no window). A model that cannot be resolved or set up is left to fail at load, where its cells record why.
    Raises ConfigError naming the over-long texts (row in the data, tokens) when ``truncate`` is off.
    """
    from bench.backends import create_backend
    from bench.errors import ConfigError

    try:
        served, overrides = llm_setup(spec, profile, nodes=nodes)
        backend = create_backend(served, device=profile.hardware.device, seed=0, **overrides)
        backend.load_tokenizer()
    except Exception:  # a model that cannot be resolved fails its cells at load, with the reason, as without this check
        return []
    budget, window = backend.prompt_budget(), backend.context_window()
    if budget is None:
        return [f"model {spec.name}: its config declares no context window; prompt lengths were not checked"]
    notes = []
    for name, prepared in datasets.items():
        backend.fit([], [], prepared.record.label_names, language=prepared.record.language)
        rows = sorted({i for split in prepared.record.splits for i in split.test_idx})
        over = [(i, tokens) for i in rows if (tokens := backend.prompt_tokens(prepared.texts[i])) > budget]
        if not over:
            continue
        listed = ", ".join(f"row {i + 1} ({tokens:,} tokens: {prepared.texts[i][:40]!r}...)" for i, tokens in over[:5])
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
    from bench.backends.hf_classifier import resolve_user_model
    from bench.catalog.models import is_user_model
    from bench.errors import ConfigError

    for name, spec in specs.items():
        stored = ((stored_models.get(name) or {}).get("info") or {}).get("pin") or {}
        if not is_user_model(name) or not stored:
            continue
        try:
            _, now = resolve_user_model(str(spec.params["model"]), spec.params.get("revision"), option=name[:3])
        except ConfigError:
            continue
        for key, what in (("folder_sha256", "its folder's sha256"), ("revision", "its commit")):
            if stored.get(key) and now.get(key) and stored[key] != now[key]:
                raise ConfigError(
                    f"model {name}: {what} is {now[key][:12]} now but {stored[key][:12]} when this run started; its "
                    "cells would mix two models. Restore the model as it was, or start a new run with --new"
                )
