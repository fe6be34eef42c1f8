"""Load a data set (catalog name or local file) into :class:`~bench.data.labeled.LabeledTexts`, with its provenance
pin: :func:`load_dataset` chooses the source and checks the options that apply to it.

Three kinds of source, chosen by the catalog entry (:mod:`bench.catalog.datasets`) or by the argument being a path,
each in its own module:

- ``package`` (:mod:`bench.data.packaged`): the files that ship inside a PyPI package, read directly.
- ``hub`` (:mod:`bench.data.hub`): ``datasets.load_dataset`` at a pinned commit, the Hub checked first so an offline
  machine fails at once with what to do.
- ``local`` (:mod:`bench.data.local`, reading through :mod:`bench.data.tables`): a ``.csv`` / ``.tsv``, ``.jsonl`` /
  ``.json`` or ``.parquet`` file the user gives.

Every result carries ``pin['content_sha256']`` (:func:`bench.data.labeled.content_sha256`) so two machines can check
that they classified the same texts with the same labels. Heavy libraries (``datasets``, ``pyarrow``) are imported
inside functions, so ``import bench.data`` stays light.
"""

from __future__ import annotations

from pathlib import Path

from bench.catalog.datasets import DATASETS, DatasetSpec, get_dataset_spec
from bench.data.hub import load_hub_set
from bench.data.labeled import LabeledTexts
from bench.data.local import UNDETERMINED_LANGUAGE, load_local_catalog_set, load_local_file, looks_like_path
from bench.data.packaged import load_package_set
from bench.errors import ConfigError, DataError


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
            data = load_local_catalog_set(spec, path, text_column, label_column, encoding)
        elif spec.source == "package":
            data = load_package_set(spec)
        else:
            data = load_hub_set(spec, revision=revision, allow_unpinned=allow_unpinned)
        _check_expected_content(spec, data)
        return data

    if path is not None or looks_like_path(name_or_path):
        file = path if path is not None else name_or_path
        name = name_or_path if path is not None else Path(name_or_path).stem
        if revision is not None:
            raise ConfigError("--revision applies to Hugging Face Hub data sets only, not to local files.")
        return load_local_file(
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
