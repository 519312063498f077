from __future__ import annotations

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aekit.data.ingest import ingest
from aekit.errors import DataError


def _csv(tmp_path, text: str):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_npy_is_memory_mapped_and_kept_exactly(tmp_path, monkeypatch):
    X = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    seen = {}
    real_load = np.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    store = ingest(tmp_path / "x.npy", tmp_path / "s.zarr", progress=False)
    assert seen["mmap_mode"] == "r"
    np.testing.assert_array_equal(store.read(np.arange(300)), X)


def test_npy_of_the_wrong_shape_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(10.0))
    with pytest.raises(DataError, match=r"x.npy: expected samples along axis 0.*got shape \(10,\)"):
        ingest(tmp_path / "x.npy", tmp_path / "s.zarr", progress=False)
    assert not (tmp_path / "s.zarr").exists()


def test_csv_with_a_text_label_column(tmp_path):
    path = _csv(tmp_path, "a,b,kind\n1,2.5,x\n3,4,y\n5,6e-1,x\n")
    store = ingest(path, tmp_path / "s.zarr", label_column="kind", val_fraction=0, progress=False)
    np.testing.assert_allclose(store.read(np.arange(3)), [[1, 2.5], [3, 4], [5, 0.6]])
    assert store.class_names == ["x", "y"]
    np.testing.assert_array_equal(store.labels, [0, 1, 0])
    assert store.meta["source"]["feature_names"] == ["a", "b"]


def test_an_array_keeps_the_feature_names_given_with_it(tmp_path):
    store = ingest(np.eye(3), tmp_path / "s.zarr", feature_names=["a", "b", "c"], progress=False)
    assert store.meta["source"]["feature_names"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a", "b"], r"2 feature_names for an array of shape \(3, 3\); give one name per column"),
        ("abc", r"feature_names must be a list of strings"),
        ([1, 2, 3], r"feature_names must be a list of strings"),
    ],
)
def test_feature_names_that_do_not_name_the_columns_are_refused(tmp_path, names, message):
    with pytest.raises(DataError, match=message):
        ingest(np.eye(3), tmp_path / "s.zarr", feature_names=names, progress=False)
    assert not (tmp_path / "s.zarr").exists()


def test_feature_names_are_refused_for_a_file(tmp_path):
    np.save(tmp_path / "x.npy", np.eye(3))
    with pytest.raises(DataError, match=r"x.npy: feature_names names an in-memory array"):
        ingest(tmp_path / "x.npy", tmp_path / "s.zarr", feature_names=["a", "b", "c"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3,4,5\n", r"row '3,4,5': has 3 fields where the header has 2"),
        ("a,b\n1,2\n,4\n", r"row 2: contains NaN, empty or infinite values"),
        ("a,b\n1,2\n3,inf\n", r"row 2: contains NaN, empty or infinite values"),
        ("a,b\n1,2\n3,4\n5,abc\n", r"row 3: column 'b' holds 'abc', not a number"),
        ("a,b\n1,x\n3,y\n", r"column 'b' is not numeric \(text\); name it with --label-column"),
    ],
)
def test_bad_csv_records_stop_the_ingest_naming_them(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        ingest(_csv(tmp_path, text), tmp_path / "s.zarr", progress=False)
    assert not (tmp_path / "s.zarr").exists()
    assert not list(tmp_path.glob(".s.zarr*"))


def test_bad_csv_records_are_skipped_and_reported(tmp_path):
    text = "a,b,c\n1,2,u\n3,4,5,6\n,1,u\n7,abc,u\n8,9,u\n"
    store = ingest(
        _csv(tmp_path, text), tmp_path / "s.zarr", on_error="skip", val_fraction=0, progress=False
    )
    # 'c' is text everywhere: dropped as a column; three rows are bad
    np.testing.assert_allclose(store.read(np.arange(store.n)), [[1, 2], [8, 9]])
    report = store.report
    assert report["skipped_count"] == 3
    problems = [s["problem"] for s in report["skipped"]]
    assert "not numeric (text)" in problems
    assert any("has 4 fields" in p for p in problems)
    assert any("'abc', not a number" in p for p in problems)


def test_parquet_streams_numeric_columns_with_labels(tmp_path):
    table = pa.table({"f1": np.arange(10.0), "f2": np.arange(10) * 2, "label": [1, 0] * 5})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=3)
    store = ingest(
        tmp_path / "t.parquet",
        tmp_path / "s.zarr",
        label_column="label",
        val_fraction=0,
        progress=False,
    )
    np.testing.assert_allclose(store.read(np.arange(10))[:, 1], np.arange(10) * 2)
    assert store.n == 10 and store.labels.tolist() == [1, 0] * 5


def test_hdf5_needs_a_dataset_name_when_it_holds_several(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["signals/x"] = np.ones((20, 4), dtype=np.float32)
        f["meta"] = np.zeros(3)
    with pytest.raises(DataError, match=r"holds 2 datasets .*choose one with --dataset NAME"):
        ingest(tmp_path / "d.h5", tmp_path / "s.zarr", progress=False)
    with pytest.raises(DataError, match="no dataset 'nope'"):
        ingest(tmp_path / "d.h5", tmp_path / "s.zarr", dataset="nope", progress=False)
    store = ingest(tmp_path / "d.h5", tmp_path / "s.zarr", dataset="signals/x", progress=False)
    assert store.sample_shape == (4,) and store.n == 20


def test_unknown_and_missing_sources_say_what_to_do(tmp_path):
    (tmp_path / "data.xlsx").write_text("")
    with pytest.raises(DataError, match=r"unknown kind of source .\.xlsx.; use a folder of images"):
        ingest(tmp_path / "data.xlsx", tmp_path / "s.zarr", progress=False)
    with pytest.raises(DataError, match="does not exist"):
        ingest(tmp_path / "missing.csv", tmp_path / "s.zarr", progress=False)


def test_dataframe_source_with_label_column(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [4.0, 3, 2, 1], "y": ["p", "q", "p", "q"]})
    store = ingest(df, tmp_path / "s.zarr", label_column="y", val_fraction=0, progress=False)
    assert store.class_names == ["p", "q"]
    assert store.meta["source"]["feature_names"] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ('a\tb\tkind\n1\t2.5\t"x,y;z"\n3\t4\t"w|v"\n5\t6e-1\t"x,y;z"\n', "\t"),
        ('a;b;kind\n1;2.5;"x,y\tz"\n3;4;w\n5;6e-1;"x,y\tz"\n', ";"),
        ('a|b|kind\n1|2.5|"x;y"\n3|4|w\n5|6e-1|"x;y"\n', "|"),
        ('a,b,kind\n1,2.5,"x;y\tz|u"\n3,4,w\n5,6e-1,"x;y\tz|u"\n', ","),
    ],
    ids=["tab", "semicolon", "pipe", "comma"],
)
def test_the_delimiter_of_a_text_table_is_found(tmp_path, text, delimiter):
    # Quoted fields hold the other delimiters; the first lines still tell which one separates
    store = ingest(
        _csv(tmp_path, text),
        tmp_path / "s.zarr",
        label_column="kind",
        val_fraction=0,
        progress=False,
    )
    np.testing.assert_allclose(store.read(np.arange(3)), [[1, 2.5], [3, 4], [5, 0.6]])
    assert store.labels.tolist() == [0, 1, 0]
    assert store.meta["source"]["feature_names"] == ["a", "b"]
    assert store.meta["source"]["delimiter"] == delimiter


def test_the_delimiter_is_told_from_the_first_lines_of_a_long_table(tmp_path):
    from aekit.data.tables import sniff_delimiter

    # Far longer than the sample read, which ends inside a row
    assert sniff_delimiter(_csv(tmp_path, "a;b;c\n" + '1;"x,y";3\n' * 20000)) == ";"


def test_a_given_delimiter_is_used_and_checked(tmp_path):
    from aekit.data.records import BadRecords
    from aekit.data.tables import TableSource

    # Read as ';', the header is two columns and each row one ragged field
    path = _csv(tmp_path, "a;b\n1,2\n3,4\n")
    assert TableSource(path, None, BadRecords("t.csv"), delimiter=",").features == ["a;b"]
    with pytest.raises(DataError, match=r"must be one character, such as ','.*Got '; ' instead"):
        TableSource(path, None, BadRecords("t.csv"), delimiter="; ")


@pytest.mark.parametrize(
    ("text", "on_error"),
    [("a b c\n1 2 3\n4 5 6\n", "fail"), ("a b c\n1 2 3\n", "skip"), ("x;y\nu;v\n", "skip")],
)
def test_a_table_without_a_numeric_column_is_refused(tmp_path, text, on_error):
    # Dropping every column under --on-error skip used to end in an internal error
    with pytest.raises(DataError, match=r"no feature column is numeric when read with the"):
        ingest(_csv(tmp_path, text), tmp_path / "s.zarr", on_error=on_error, progress=False)
    assert not (tmp_path / "s.zarr").exists()


def test_a_malformed_semicolon_table_is_ingested_under_skip(tmp_path):
    # A decimal comma is not a number: its row is skipped and reported, the rest kept
    text = "a;b;c\n1,5;2;3\n4;5;6\n7;8;9;10\n1;1;1\n"
    store = ingest(
        _csv(tmp_path, text),
        tmp_path / "s.zarr",
        on_error="skip",
        val_fraction=0,
        progress=False,
    )
    np.testing.assert_allclose(store.read(np.arange(store.n)), [[4, 5, 6], [1, 1, 1]])
    problems = [s["problem"] for s in store.report["skipped"]]
    assert problems == [
        "has 4 fields where the header has 3",
        "column 'a' holds '1,5', not a number",
    ]


def test_images_channels_first_are_read_and_stored_channels_last(tmp_path):
    # PyTorch's layout, (n, C, H, W): unambiguous when C is 1, 3 or 4 and W is not
    X = np.random.default_rng(0).random((6, 3, 8, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    store = ingest(tmp_path / "x.npy", tmp_path / "x.zarr", val_fraction=0.0, progress=False)
    assert store.sample_shape == (8, 10, 3)
    np.testing.assert_array_equal(store.read(np.arange(6)), X.transpose(0, 2, 3, 1))
    assert "channels first" in store.meta["source"]["layout"]


def test_the_estimator_names_both_image_layouts():
    from aekit import Autoencoder

    X = np.zeros((4, 1, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=r"channels first.*transpose\(0, 2, 3, 1\)"):
        Autoencoder(kind="conv", epochs=1).fit(X)
