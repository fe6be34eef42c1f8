"""Local data files read the way people save them (issue 13, B): encodings, delimiters, index columns, labels in
any format, and every refusal naming the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.data.loaders import load_dataset
from bench.errors import DataError

ROWS = [("a good film", 1), ("a bad film", 0), ("Störung im Betrieb", 1), ("dull, slow", 0)]


def _csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_with_or_without_bom_reads_the_same(tmp_path: Path, bom: bytes) -> None:
    file = tmp_path / "d.csv"
    file.write_bytes(bom + "text,label\nStörung,x\nok,y\n".encode())
    data = load_dataset(str(file))
    assert data.texts == ("Störung", "ok") and data.label_names == ("x", "y")


def test_other_encoding_is_refused_with_line_and_byte_or_read_as_told(tmp_path: Path) -> None:
    file = _csv(tmp_path / "d.csv", "text,label\nfine,x\nalso fine,y\nStörung,x\n", "cp1252")
    with pytest.raises(DataError, match=r"d.csv: line 4, column 3: byte 0xf6 is not valid UTF-8.*--encoding"):
        load_dataset(str(file))
    data = load_dataset(str(file), encoding="cp1252")
    assert data.texts[2] == "Störung" and data.pin["encoding"] == "cp1252"
    with pytest.raises(DataError, match=r"--encoding 'klingon': unknown encoding"):
        load_dataset(str(file), encoding="klingon")


def test_utf16_is_named(tmp_path: Path) -> None:
    file = _csv(tmp_path / "d.csv", "text,label\na,x\nb,y\n", "utf-16")
    with pytest.raises(DataError, match=r"d.csv is UTF-16.*--encoding utf-16"):
        load_dataset(str(file))
    assert load_dataset(str(file), encoding="utf-16").texts == ("a", "b")


@pytest.mark.parametrize(
    ("name", "delimiter"), [("comma.csv", ","), ("semicolon.csv", ";"), ("tab.csv", "\t"), ("tab.tsv", "\t")]
)
def test_delimiter_is_sniffed_whatever_the_extension(tmp_path: Path, name: str, delimiter: str) -> None:
    body = f"text{delimiter}label\n" + "".join(f'"{t}"{delimiter}{label}\n' for t, label in ROWS)
    data = load_dataset(str(_csv(tmp_path / name, body)))
    assert data.texts == tuple(t for t, _ in ROWS)  # "dull, slow" keeps its comma in every format
    assert data.pin["delimiter"] == delimiter


def test_quoted_multiline_fields_keep_their_lines_and_errors_name_the_file_line(tmp_path: Path) -> None:
    file = _csv(tmp_path / "d.csv", 'text,label\n"first line\nsecond line",x\nb,y\n"c",\n')
    with pytest.raises(DataError, match=r"d.csv: 1 row\(s\) without a label.*row 3 \(line 5\)"):
        load_dataset(str(file))
    file = _csv(tmp_path / "d.csv", 'text,label\n"first line\nsecond line",x\nb,y\n')
    assert load_dataset(str(file)).texts == ("first line\nsecond line", "b")


@pytest.mark.parametrize("index_header", ["", "Unnamed: 0"])
def test_unnamed_index_column_is_ignored(tmp_path: Path, index_header: str) -> None:
    file = _csv(tmp_path / "d.csv", f"{index_header},text,label\n0,a,x\n1,b,y\n")
    data = load_dataset(str(file))
    assert data.texts == ("a", "b") and data.pin["ignored_columns"] == [index_header or "(empty header)"]


def test_same_label_column_gives_the_same_classes_in_every_format(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [t for t, _ in ROWS]
    _csv(tmp_path / "ints.csv", "text,label\n" + "".join(f'"{t}",{label}\n' for t, label in ROWS))
    _csv(tmp_path / "floats.csv", "text,label\n" + "".join(f'"{t}",{label}.0\n' for t, label in ROWS))
    (tmp_path / "d.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": float(label)}) + "\n" for t, label in ROWS)
    )
    pq.write_table(pa.table({"text": texts, "label": [float(label) for _, label in ROWS]}), tmp_path / "d.parquet")
    loaded = [load_dataset(str(tmp_path / n)) for n in ("ints.csv", "floats.csv", "d.jsonl", "d.parquet")]
    assert {(d.label_names, d.labels) for d in loaded} == {(("0", "1"), (1, 0, 1, 0))}
    assert len({d.pin["content_sha256"] for d in loaded}) == 1


def test_label_names_rename_ids_and_mismatches_list_both_sides(tmp_path: Path) -> None:
    file = _csv(tmp_path / "d.csv", "text,label\na,0\nb,1\nc,1.0\n")
    data = load_dataset(str(file), label_map={"0": "negative", "1": "positive"})
    assert data.label_names == ("negative", "positive") and data.labels == (0, 1, 1)
    with pytest.raises(DataError, match=r"label\(s\) without a name: '1'.*the file does not have: '2'"):
        load_dataset(str(file), label_map={"0": "negative", "2": "positive"})


def test_spreadsheet_is_refused_with_how_to_save_it(tmp_path: Path) -> None:
    file = tmp_path / "reviews.xlsx"
    file.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(DataError, match=r"reviews.xlsx: a spreadsheet.*Save it as CSV UTF-8"):
        load_dataset(str(file))


def test_jsonl_blank_line_is_skipped_and_a_malformed_one_named(tmp_path: Path) -> None:
    file = tmp_path / "d.jsonl"
    file.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n')
    assert load_dataset(str(file)).texts == ("a", "b")
    file.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n{"text": "c" "label": "y"}\n')
    with pytest.raises(DataError, match=r"d.jsonl: line 4 is not valid JSON"):
        load_dataset(str(file))


def test_parquet_list_column_as_text_is_named_with_its_type(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = tmp_path / "d.parquet"
    pq.write_table(pa.table({"tokens": [["a", "b"], ["c"]], "label": ["x", "y"]}), file)
    with pytest.raises(DataError, match=r"text column 'tokens' holds list<.*string.*> values, not strings"):
        load_dataset(str(file), text_column="tokens")


def test_one_class_is_refused_with_the_numbers(tmp_path: Path) -> None:
    file = _csv(tmp_path / "d.csv", "text,label\na,x\nb,x\nc,x\n")
    with pytest.raises(DataError, match=r"d.csv: every row has the label 'x'.*3 rows, 1 class"):
        load_dataset(str(file))


def test_a_header_with_both_columns_named_otherwise_is_one_error_naming_both(tmp_path: Path) -> None:
    """A German Excel `Text;Label` header: one message with both options, not two tries."""
    from bench.data.loaders import load_dataset

    path = tmp_path / "de.csv"
    path.write_text("Text;Label\ngut;1\nschlecht;0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Did you mean: Text\?; and no label column.*--text-column and --label-column"):
        load_dataset(str(path))
