from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.datasets import load_digits

from aekit.cli import main
from aekit.errors import DataError


@pytest.fixture
def digits_csv(tmp_path):
    X, y = load_digits(return_X_y=True)
    path = tmp_path / "digits.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"p{i}" for i in range(64)] + ["digit"])
        writer.writerows(np.column_stack([X, y]).astype(int).tolist())
    return path


def test_ingest_info_train_from_the_command_line(digits_csv, tmp_path, capsys):
    store = tmp_path / "digits.zarr"
    assert (
        main(
            [
                "ingest",
                str(digits_csv),
                str(store),
                "--label-column",
                "digit",
                "--val-fraction",
                "0.2",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert "1797 samples of shape (64,)" in capsys.readouterr().out

    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "samples      1797" in out and "classes      10" in out and "skipped      0" in out

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(store),
                "--out",
                str(run),
                "--latent-dim",
                "8",
                "--hidden",
                "32",
                "--epochs",
                "3",
                "--batch-size",
                "64",
                "--set",
                "log.progress=none",
            ]
        )
        == 0
    )
    # The summary ends with what to do next
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("trained 3 epochs") and out[-1] == f"next: aekit report {run}"
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "lr", "seconds", "samples_per_s"]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert (run / "model.safetensors").stat().st_size > 0 and (run / "model.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "{tmp}/missing.csv", "{tmp}/s.zarr"], "missing.csv does not exist"),
        (["ingest", "{tmp}", "{tmp}/s.zarr", "--size", "12"], "--size takes HEIGHTxWIDTH"),
        (
            ["ingest", "{tmp}/words.csv", "{tmp}/s.zarr", "--on-error", "skip"],
            "no feature column is numeric when read with the delimiter ';'",
        ),
        (
            ["ingest", "{tmp}/words.csv", "{tmp}/s.zarr", "--delimiter", "ab"],
            "'ab' is not one character",
        ),
        (["info", "{tmp}"], "is not an aekit store"),
        (["train", "{tmp}/nope.zarr", "--out", "{tmp}/r"], "is not an aekit store"),
        (
            ["train", "{store}", "--out", "{tmp}/r", "--latent-dim", "0"],
            "--latent-dim: 'model.latent_dim' should be greater than or equal to 1; got 0.",
        ),
        (["train", "{store}", "--out", "{tmp}/r", "--hidden", "3,x"], "widths are comma-separated"),
        (
            ["train", "{store}", "--out", "{tmp}/r", "--trim", "most"],
            "expected auto, early or a number",
        ),
        (
            ["train", "{store}", "--out", "{tmp}/r", "--trim", "1.5"],
            "--trim: 'model.trim' should be 'auto', 'early' or a float in the range [0, 1); "
            "got 1.5.",
        ),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys, args, message):
    store = tmp_path / "ok.zarr"
    from aekit.data.ingest import ingest

    ingest(np.ones((20, 3)), store, progress=False)
    (tmp_path / "words.csv").write_text("name;x\nfoo;bar\nbaz;qux\n")
    args = [a.format(tmp=tmp_path, store=store) for a in args]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]


def test_a_delimiter_is_told_or_given_and_tab_files_ingest(tmp_path, capsys):
    rows = [[1.5, 2.0, 0], [0.5, -1.0, 1], [2.5, 3.0, 0], [1.0, 0.0, 1]]
    (tmp_path / "t.tsv").write_text("a\tb\tc\n" + "".join(f"{x}\t{y}\t{c}\n" for x, y, c in rows))
    (tmp_path / "s.csv").write_text("a;b;c\n" + "".join(f"{x};{y};{c}\n" for x, y, c in rows))
    from aekit.data.store import open_store

    assert (
        main(["ingest", str(tmp_path / "t.tsv"), str(tmp_path / "t.zarr"), "--label-column", "c"])
        == 0
    )
    args = ["ingest", str(tmp_path / "s.csv"), str(tmp_path / "out" / "s.zarr"), "--delimiter", ";"]
    assert main([*args, "--label-column", "c"]) == 0  # its folder is created
    for name in ("t.zarr", "out/s.zarr"):
        store = open_store(tmp_path / name)
        np.testing.assert_array_equal(store.read(np.arange(4)), np.array(rows)[:, :2])
        np.testing.assert_array_equal(store.labels, [0, 1, 0, 1])


def test_ingest_makes_the_stores_folder_as_train_does(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 3), dtype=np.float32))
    # --quiet as train takes it (a script that passes it to both once met exit 2)
    dest = tmp_path / "data" / "sub" / "x.zarr"
    assert main(["ingest", str(tmp_path / "x.npy"), str(dest), "--quiet"]) == 0
    assert (tmp_path / "data" / "sub" / "x.zarr" / "zarr.json").is_file()
    assert not list((tmp_path / "data" / "sub").glob(".*"))  # no lock or partial left


def test_numeric_labels_take_class_names_given_inline_or_in_a_file(tmp_path, capsys):
    from aekit.data.ingest import ingest
    from aekit.data.store import open_store

    X, y = load_digits(n_class=3, return_X_y=True)
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "names.txt").write_text("zero\none\ntwo\n")
    for i, names in enumerate(["zero,one,two", str(tmp_path / "names.txt")]):
        store = tmp_path / f"{i}.zarr"
        args = ["ingest", str(tmp_path / "x.npy"), str(store), "--labels", str(tmp_path / "y.npy")]
        assert main([*args, "--class-names", names]) == 0
        assert open_store(store).class_names == ["zero", "one", "two"]
        assert main(["info", str(store)]) == 0
        assert "zero" in capsys.readouterr().out
    # The Python API, as scikit-learn's datasets give them: the report's legend reads names
    named = ingest(X, tmp_path / "api.zarr", labels=y, class_names=["a", "b", "c"])
    assert named.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(named.labels, y)
    text = np.array(["a", "b", "c"])[y]
    cases = [
        ({"labels": y, "class_names": ["a", "b"]}, "labels go up to 2; give one name for each"),
        ({"labels": y, "class_names": ["a", "a", "b"]}, "distinct and non-empty"),
        ({"class_names": ["a"]}, "it has none; give --labels"),
        ({"labels": text, "class_names": ["a", "b", "c"]}, "named already"),
    ]
    for i, (kwargs, message) in enumerate(cases):
        with pytest.raises(DataError, match=message):
            ingest(X, tmp_path / f"bad{i}.zarr", **kwargs)
        assert not (tmp_path / f"bad{i}.zarr").exists()


def test_labels_of_an_npy_source_come_from_a_file_and_probe_reads_them(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    np.save(tmp_path / "digits.npy", X.astype(np.float32))
    np.save(tmp_path / "labels.npy", y)
    names = np.array(["even", "odd"])[y % 2]
    (tmp_path / "names.txt").write_text("".join(f"{n}\n" for n in names))
    store = tmp_path / "d.zarr"
    assert main(["ingest", str(tmp_path / "digits.npy"), str(store), "--labels",
                 str(tmp_path / "labels.npy")]) == 0  # fmt: skip
    from aekit.data.store import open_store

    np.testing.assert_array_equal(open_store(store).labels, y)
    assert main(["ingest", str(tmp_path / "digits.npy"), str(tmp_path / "n.zarr"), "--labels",
                 str(tmp_path / "names.txt")]) == 0  # fmt: skip
    named = open_store(tmp_path / "n.zarr")
    assert named.class_names == ["even", "odd"]
    np.testing.assert_array_equal(named.labels, y % 2)
    # The README's path: a store with labels answers probe
    run = tmp_path / "run"
    assert main(["train", str(store), "--out", str(run), "--latent-dim", "8", "--quiet",
                 "--set", "train.epochs=3"]) == 0  # fmt: skip
    assert main(["probe", str(run), str(store), "--labels", "5", "--repeats", "1"]) == 0
    assert "latent codes" in capsys.readouterr().out
    # Asked for more labels than a class has, probe names the class as the store does
    assert main(["probe", str(run), str(tmp_path / "n.zarr"), "--labels", "1000"]) == 2
    err = capsys.readouterr().err
    assert "class 'even' has only" in err, err
    # One label short, or a table given a labels file: one line naming the file and the fix
    np.save(tmp_path / "short.npy", y[:-1])
    cases = [
        (["digits.npy", "a.zarr", "--labels", "short.npy"], "one per record, shape (1797,)"),
        (["digits.npy", "b.zarr", "--labels", "none.npy"], "none.npy (--labels) does not exist"),
        (["t.csv", "c.zarr", "--labels", "labels.npy"], "use --label-column"),
    ]
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    for args, message in cases:
        assert main(["ingest", *[str(tmp_path / a) if "." in a else a for a in args]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_a_float16_store_halves_the_bytes_and_refuses_what_float16_cannot_hold(tmp_path, capsys):
    import zarr

    X = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    X[123, 5] = 70_000.0  # beyond float16's +-65504
    np.save(tmp_path / "x.npy", X)
    half = tmp_path / "half.zarr"
    assert main(["ingest", str(tmp_path / "x.npy"), str(half), "--dtype", "float16"]) == 2
    err = capsys.readouterr().err
    assert "row 124: column 5 holds 70000, beyond float16's range" in err and "float32" in err
    assert not half.exists()  # nothing half-written
    args = ["ingest", str(tmp_path / "x.npy"), str(half), "--dtype", "float16", "--on-error"]
    assert main([*args, "skip", "--quiet"]) == 0
    x = zarr.open_group(str(half), mode="r")["x"]  # a dtype zarr-python opens as it is
    assert x.dtype == np.float16 and x.shape == (499, 8)
    np.testing.assert_allclose(x[:5], np.delete(X, 123, axis=0)[:5], rtol=1e-3)
    np.save(tmp_path / "u8.npy", np.zeros((10, 4, 4), dtype=np.uint8))
    u8 = ["ingest", str(tmp_path / "u8.npy"), str(tmp_path / "u8.zarr"), "--dtype", "float16"]
    assert main(u8) == 2
    assert "uint8 values, stored as they are" in capsys.readouterr().err
