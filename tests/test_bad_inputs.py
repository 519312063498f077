"""Bad inputs to every command: each is a user's or the data's mistake, so each must end in exit
code 2 (or 3) with one line on stderr that names the problem, no traceback, and nothing at the
destination or beside it."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from aekit import ingest
from aekit.apply.compress import MAGIC
from aekit.cli import main


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A folder holding a labelled table store, a run trained on it, and broken copies."""
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = np.repeat(np.arange(3), 40)
    ingest(X, root / "good.zarr", labels=y, val_fraction=0.2, progress=False)
    ingest(X[:, :4], root / "narrow.zarr", val_fraction=0.2, progress=False)
    code = main([
        "train", str(root / "good.zarr"), "--out", str(root / "run"), "--epochs", "2",
        "--set", "log.progress=none",
    ])  # fmt: skip
    assert code == 0
    _broken_copies(root)
    return root


def _broken_copies(root: Path) -> None:
    (root / "random.csv").write_bytes(np.random.default_rng(1).bytes(3000))
    (root / "corrupt.parquet").write_bytes(b"PAR1" + bytes(100))
    (root / "empty.csv").write_bytes(b"")
    (root / "words.csv").write_text("a,b\n1,x\n2,y\n")
    (root / "twice.csv").write_text("a,a,b\n1,2,3\n4,5,6\n")  # was pyarrow's KeyError
    rows = "".join(f"{i},{i + 1},{i * 2}\n" for i in range(30))
    (root / "table.csv").write_text("a,b,c\n" + rows)
    (root / "file.txt").write_text("not a folder")
    (root / "data.xyz").write_text("1,2\n")
    np.save(root / "huge64.npy", np.array([[1.0, 2.0], [3.0, 1e39]]))
    np.save(root / "nan.npy", np.array([[1.0, np.nan], [3.0, 4.0]], dtype=np.float32))
    np.save(root / "vector.npy", np.zeros((3, 2, 2, 2, 2), dtype=np.float32))
    np.save(root / "twochannel.npy", np.zeros((3, 2, 5, 5), dtype=np.float32))
    (root / "images").mkdir()
    np.save(root / "zerowidth.npy", np.zeros((5, 0), dtype=np.float32))
    np.save(root / "three.npy", np.zeros((3, 2), dtype=np.float32))
    (root / "nanlabels.txt").write_text("a\nnan\nb\n")
    np.save(root / "nanlabels.npy", np.array([0.0, np.nan, 1.0]))
    (root / "stores").mkdir()  # a folder of other things, no run in it
    shutil.copytree(root / "good.zarr", root / "stores" / "kept.zarr")
    (root / "bad.yaml").write_text("train: [1, 2\n  x: :\n")
    (root / "bad.toml").write_text("[train\nepochs = 2\n")
    (root / "unknown.toml").write_text("[train]\nepoks = 2\n")
    (root / "wide.toml").write_text("[model]\nlatent_dim = 100000000\n")
    (root / "huge.toml").write_text("[model]\nhidden = [3000000000]\n")
    (root / "conf.ini").write_text("[train]\n")
    shutil.copytree(root / "good.zarr", root / "garbage.zarr")
    (root / "garbage.zarr" / "zarr.json").write_text("{not json")
    shutil.copytree(root / "good.zarr", root / "edited.zarr")
    _edit_json(root / "edited.zarr" / "zarr.json", lambda d: d["attributes"]["aekit"].update(n=400))
    shutil.copytree(root / "good.zarr", root / "unfinished.zarr")
    _edit_json(
        root / "unfinished.zarr" / "zarr.json",
        lambda d: d["attributes"]["aekit"].update(complete=False),
    )
    for name in ("json", "weights"):
        shutil.copytree(root / "run", root / f"broken-{name}")
    (root / "broken-json" / "model.json").write_text('{"kind": 5}')
    (root / "broken-weights" / "model.safetensors").write_bytes(bytes(64))
    _edited_stores(root)
    _edited_runs(root)
    _links(root)


def _edited_stores(root: Path) -> None:
    """Stores whose fields were edited after ingest: each must be refused naming the field."""
    meta = lambda d: d["attributes"]["aekit"]  # noqa: E731
    edits = {
        "dtype": lambda d: meta(d).update(dtype="float64"),
        "chunkrows": lambda d: meta(d).update(chunk_rows=64),
        "nanstats": lambda d: meta(d)["stats"]["std"].__setitem__(0, float("nan")),
        "shortstats": lambda d: meta(d)["stats"]["mean"].pop(),
    }
    for name, edit in edits.items():
        shutil.copytree(root / "good.zarr", root / f"{name}.zarr")
        _edit_json(root / f"{name}.zarr" / "zarr.json", edit)
    shutil.copytree(root / "good.zarr", root / "noids.zarr")
    shutil.rmtree(root / "noids.zarr" / "ids")
    shutil.copytree(root / "good.zarr", root / "truncated.zarr")
    chunk = root / "truncated.zarr" / "x" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:1000])
    shutil.copytree(root / "good.zarr", root / "shorty.zarr")
    _edit_json(root / "shorty.zarr" / "y" / "zarr.json", lambda d: d.update(shape=[100]))
    for name, value in (("splitthree", 3), ("alltest", 1)):
        shutil.copytree(root / "good.zarr", root / f"{name}.zarr")
        split = zarr.open_array(root / f"{name}.zarr" / "split", mode="r+")
        split[: 120 if value == 1 else 5] = value
    X = np.random.default_rng(2).normal(size=(60, 6)).astype(np.float32)
    ingest(X, root / "named.zarr", labels=np.repeat(["a", "b", "c"], 20), progress=False)
    labels = zarr.open_array(root / "named.zarr" / "y", mode="r+")
    labels[:3] = 7  # a code beyond the three class names
    ingest(np.zeros((20, 1, 1), dtype=np.uint8), root / "dot.zarr", progress=False)


def _edited_runs(root: Path) -> None:
    """Run folders and .aek files whose fields were edited: each refused naming the field."""
    for name, edit in (
        ("nanthreshold", lambda d: d["threshold"].update(value=float("nan"))),
        ("zerostd", lambda d: d["latent_std"].__setitem__(0, 0.0)),
    ):
        shutil.copytree(root / "run", root / name)
        _edit_json(root / name / "model.json", edit)
    shutil.copytree(root / "run", root / "moved")  # its config now names a store of 4 features
    config = root / "moved" / "config.toml"
    config.write_text(
        config.read_text().replace(str(root / "good.zarr"), str(root / "narrow.zarr"))
    )
    shutil.copytree(root / "run", root / "pickled")
    last = sorted((root / "pickled" / "checkpoints").glob("*.pt"))[-1]
    torch.save({"model": _Planted()}, last)  # unpickled, it would leave a file 'planted'
    assert (
        main(
            [
                "compress",
                str(root / "run"),
                str(root / "good.zarr"),
                "--out",
                str(root / "made.aek"),
            ]
        )
        == 0
    )
    for field, value in (
        ("n", 500), ("latent_dim", 3), ("block_rows", 7), ("sample_shape", [4]),
        ("dtype", "object"), ("step", 0.0), ("latent_std", [0.0]),
    ):  # fmt: skip
        _rewrite_header(root / "made.aek", root / f"{field}.aek", field, value)
    (root / "zero.toml").write_text("[train]\nepochs = 0\n")


class _Planted:
    def __reduce__(self):
        return (open, ("planted", "w"))


def _rewrite_header(src: Path, dst: Path, field: str, value) -> None:
    """``src`` with one header field changed and the header's checksum made fresh."""
    data = src.read_bytes()
    start = len(MAGIC) + 4
    size = struct.unpack("<I", data[len(MAGIC) : start])[0]
    header = json.loads(data[start : start + size])
    header[field] = value
    head = json.dumps(header, sort_keys=True).encode()
    rest = data[start + size + 4 :]
    dst.write_bytes(
        MAGIC + struct.pack("<I", len(head)) + head + struct.pack("<I", zlib.crc32(head)) + rest
    )


def _links(root: Path) -> None:
    """Destinations that are symbolic links leading nowhere or round in a loop."""
    (root / "loop.zarr").symlink_to("loop.zarr")
    (root / "nowhere.npy").symlink_to(root / "gone" / "e.npy")


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# (command line, the destination that must not appear); paths are relative to the folder
CASES = [
    # ingest: unreadable, foreign or out-of-range data
    ("ingest random.csv o.zarr", "o.zarr"),
    ("ingest corrupt.parquet o.zarr", "o.zarr"),
    ("ingest empty.csv o.zarr", "o.zarr"),
    ("ingest words.csv o.zarr", "o.zarr"),
    ("ingest missing.csv o.zarr", "o.zarr"),
    ("ingest data.xyz o.zarr", "o.zarr"),
    ("ingest huge64.npy o.zarr", "o.zarr"),
    ("ingest nan.npy o.zarr", "o.zarr"),
    ("ingest vector.npy o.zarr", "o.zarr"),
    ("ingest twochannel.npy o.zarr", "o.zarr"),
    ("ingest images o.zarr --size 32x32", "o.zarr"),
    ("ingest images o.zarr", "o.zarr"),
    ("ingest images o.zarr --size 100000x100000", "o.zarr"),
    ("ingest table.csv o.zarr --size 32x32", "o.zarr"),
    ("ingest table.csv o.zarr --val-fraction 1.5", "o.zarr"),
    ("ingest table.csv o.zarr --label-column nope", "o.zarr"),
    ("ingest table.csv o.zarr --delimiter ab", "o.zarr"),
    ("ingest table.csv file.txt", None),
    ("ingest table.csv o.zarr --channels 2", "o.zarr"),
    ("ingest zerowidth.npy o.zarr", "o.zarr"),
    ("ingest twice.csv o.zarr", "o.zarr"),  # (n, 0): was a ZeroDivisionError
    ("ingest three.npy o.zarr --labels nanlabels.txt", "o.zarr"),  # was a class named 'nan'
    ("ingest three.npy o.zarr --labels nanlabels.npy", "o.zarr"),
    # validate: files that are not configs, keys and values that cannot work
    ("validate bad.yaml", None),
    ("validate bad.toml", None),
    ("validate unknown.toml", None),
    ("validate wide.toml", None),
    ("validate huge.toml", None),
    ("validate conf.ini", None),
    ("validate missing.toml", None),
    # train: bad stores, bad destinations, bad settings
    ("train good.zarr --out file.txt --epochs 1", None),
    ("train garbage.zarr --out r --epochs 1", "r"),
    ("train edited.zarr --out r --epochs 1", "r"),
    ("train unfinished.zarr --out r --epochs 1", "r"),
    ("train missing.zarr --out r --epochs 1", "r"),
    ("train good.zarr --out r --latent-dim 0", "r"),
    ("train good.zarr --out r --latent-dim 100000000", "r"),
    ("train good.zarr --out r --hidden 3000000000", "r"),
    ("train good.zarr --out r --hidden 200000,200000", "r"),
    ("train good.zarr --out r --epochs soon", "r"),
    ("train good.zarr --out r --set model.kind=foo", "r"),
    ("train good.zarr --out r --config bad.yaml", "r"),
    ("train --out r --resume", "r"),  # no run to resume, no store to start it (with one: starts)
    ("train good.zarr --out stores --epochs 1", None),  # holds stores, no run: refused untouched
    # encode, score: bad runs, bad sources, bad destinations
    ("encode run good.zarr --out e.csv", "e.csv"),
    ("encode run good.zarr --out nofolder/e.npy", "nofolder"),
    ("encode missing-run good.zarr --out e.npy", "e.npy"),
    ("encode broken-json good.zarr --out e.npy", "e.npy"),
    ("encode broken-weights good.zarr --out e.npy", "e.npy"),
    ("encode run narrow.zarr --out e.npy", "e.npy"),
    ("encode run random.csv --out e.npy", "e.npy"),
    ("encode run table.csv --out nofolder/e.npy", "nofolder"),
    ("encode run garbage.zarr --out e.npy", "e.npy"),
    ("score run good.zarr --out s.parquet --fpr 2", "s.parquet"),
    ("score run narrow.zarr --out s.parquet", "s.parquet"),
    ("score run good.zarr --out s.parquet --on-error sometimes", "s.parquet"),
    # generate, compress: wrong kind of run, bad numbers
    ("generate run --n 5 --out g.npy", "g.npy"),
    ("generate run --interpolate narrow.zarr 0 1 --out g.npy", "g.npy"),
    ("generate run --interpolate good.zarr 0 100000 --out g.npy", "g.npy"),
    ("compress run good.zarr --out c.aek --step inf", "c.aek"),
    ("compress run good.zarr --out c.aek --step -1", "c.aek"),
    ("compress run good.zarr --out c.npz", "c.npz"),
    # probe, report, export, info
    ("probe run narrow.zarr --labels 5", None),
    ("probe run good.zarr --labels 0", None),
    ("probe run good.zarr --labels 1 --repeats 0", None),  # was 'nan +- nan', exit 0
    ("report run --store narrow.zarr", "run/report.html"),
    ("report broken-json", "broken-json/report.html"),
    ("export run --out m.onnx --format tflite", "m.onnx"),
    ("info garbage.zarr", None),
    ("info edited.zarr", None),
    ("info table.csv", None),
    # stores whose fields were edited: refused naming the field, before any training
    ("train dtype.zarr --out r --epochs 1", "r"),
    ("train chunkrows.zarr --out r --epochs 1", "r"),
    ("train nanstats.zarr --out r --epochs 1", "r"),  # was blamed on the learning rate
    ("train shortstats.zarr --out r --epochs 1", "r"),
    ("train noids.zarr --out r --epochs 1", "r"),
    ("train truncated.zarr --out r --epochs 1", "r"),
    ("train shorty.zarr --out r --epochs 1", "r"),  # y shorter than x
    ("train splitthree.zarr --out r --epochs 1", "r"),  # samples silently dropped
    ("train alltest.zarr --out r --epochs 1", "r"),  # no training row
    ("score run named.zarr --out s.parquet", "s.parquet"),  # label codes beyond the names
    ("train dot.zarr --out r --kind conv", "r"),  # 1x1 images: was "use at most 1" with 1
    # run files and .aek headers whose fields were edited
    ("score nanthreshold good.zarr --out s.parquet", "s.parquet"),  # flagged nothing, exit 0
    ("compress zerostd good.zarr --out c2.aek", "c2.aek"),  # was blamed on --step
    ("train --out moved --resume", None),  # config.toml names a store of another shape
    ("train --out pickled --resume", None),
    ("decompress run n.aek --out d.npy", "d.npy"),
    ("decompress run latent_dim.aek --out d.npy", "d.npy"),
    ("decompress run block_rows.aek --out d.npy", "d.npy"),
    ("decompress run sample_shape.aek --out d.npy", "d.npy"),  # silently re-cut the data
    ("decompress run dtype.aek --out d.npy", "d.npy"),
    ("decompress run step.aek --out d.npy", "d.npy"),
    ("decompress run latent_std.aek --out d.npy", "d.npy"),
    # a value from --config is the file's, not a flag's
    ("train good.zarr --out r --config zero.toml", "r"),
    # destinations that are links leading nowhere or round in a loop
    ("ingest table.csv loop.zarr", None),
    ("encode run good.zarr --out nowhere.npy", None),
    ("train good.zarr --out loop.zarr --epochs 1", None),
    # object storage keys that name another object on each server
    ("ingest table.csv s3://bucket/a/../x.zarr", None),
    ("ingest table.csv s3://bucket/./x.zarr", None),
    ("ingest table.csv s3://bucket/a//x.zarr", None),
]

# What the one line must say, where the case is about the message
SAYS = {
    "train dtype.zarr --out r --epochs 1": "dtype",
    "train chunkrows.zarr --out r --epochs 1": "chunk_rows",
    "train nanstats.zarr --out r --epochs 1": "stats.std",
    "train shortstats.zarr --out r --epochs 1": "stats.mean",
    "train noids.zarr --out r --epochs 1": "'ids' array is missing",
    "train truncated.zarr --out r --epochs 1": "truncated",
    "train shorty.zarr --out r --epochs 1": "y holds 100",
    "train splitthree.zarr --out r --epochs 1": "split holds 3",
    "train alltest.zarr --out r --epochs 1": "no training row",
    "score run named.zarr --out s.parquet": "label codes",
    "train dot.zarr --out r --kind conv": "kind='dense'",
    "score nanthreshold good.zarr --out s.parquet": "threshold.value",
    "compress zerostd good.zarr --out c2.aek": "latent_std",
    "train --out moved --resume": "data.store",
    "train --out pickled --resume": "delete it to use the one before",
    "decompress run n.aek --out d.npy": "header's n",
    "decompress run latent_dim.aek --out d.npy": "latent_dim",
    "decompress run block_rows.aek --out d.npy": "block_rows",
    "decompress run sample_shape.aek --out d.npy": "sample_shape",
    "decompress run dtype.aek --out d.npy": "dtype",
    "decompress run step.aek --out d.npy": "step",
    "decompress run latent_std.aek --out d.npy": "latent_std",
    "train good.zarr --out r --config zero.toml": "zero.toml: 'train.epochs'",
    "ingest table.csv loop.zarr": "loop.zarr already exists",
    "ingest table.csv s3://bucket/a/../x.zarr": "s3://bucket/a/../x.zarr",
}


@pytest.mark.parametrize(("command", "destination"), CASES, ids=[c for c, _ in CASES])
def test_a_bad_input_exits_2_with_one_line_and_leaves_nothing(
    command, destination, place, capsys, monkeypatch
):
    monkeypatch.chdir(place)
    before = set(place.rglob("*"))
    try:
        code = main(command.split())
    except SystemExit as exit_:  # argparse's own exit on a bad flag
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in (2, 3), err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert SAYS.get(command, "") in lines[0]
    assert "weights_only" not in err  # torch's advice to load unsafely is no fix of aekit's
    if destination:
        assert not (place / destination).exists()
    # nothing new anywhere: no partials beside the destination, no stray folders
    assert set(place.rglob("*")) == before


def test_there_are_at_least_forty_bad_inputs_over_every_command():
    commands = {command.split()[0] for command, _ in CASES}
    assert len(CASES) >= 97  # 67 before the second hostile-input round, and its 30
    assert commands >= {
        "ingest", "validate", "train", "encode", "score", "generate", "compress", "probe",
        "report", "export", "info",
    }  # fmt: skip


def test_a_reader_that_goes_away_ends_the_output_quietly(place):
    # ``aekit info STORE | head -1``: the reader leaves while the command still writes
    with subprocess.Popen(
        [sys.executable, "-m", "aekit", "info", str(place / "good.zarr")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader:
        assert reader.stdout is not None and reader.stderr is not None
        reader.stdout.close()  # gone before the command writes its first line
        err = reader.stderr.read().decode()
    assert reader.returncode in (0, 141)
    assert "Traceback" not in err and "internal error" not in err


def _capped(limit_bytes: int):
    """A child process whose files may not grow past ``limit_bytes`` (writes then fail with
    EFBIG, as on a file system that caps file sizes; Python ignores the SIGXFSZ that comes
    with it)."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return cap


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["encode", "run", "big.zarr", "--out", "out/r.npy"], "out/r.npy"),
        (["train", "big.zarr", "--out", "out/run", "--epochs", "1", "--hidden", "256"], ".pt"),
    ],
    ids=["npy output", "checkpoint"],
)
def test_a_file_the_disk_refuses_ends_in_exit_2_naming_it_and_nothing_left(argv, named, place):
    # 20,000 x 6 float32 values: 480 kB of output, and a checkpoint of about 90 kB
    X = np.random.default_rng(0).normal(size=(20_000, 6)).astype(np.float32)
    if not (place / "big.zarr").exists():
        ingest(X, place / "big.zarr", progress=False)
    out = place / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "aekit", *argv],
        cwd=place, capture_output=True, text=True, preexec_fn=_capped(60_000),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and named in lines[0], result.stderr
    assert "ulimit -f" in lines[0] and "60,000 bytes" in lines[0]  # the limit, not the disk
    assert not [p for p in out.rglob("*") if ".partial-" in p.name or p.suffix == ".npy"]


def test_a_model_past_the_address_space_limit_is_refused_naming_ulimit(place):
    # Under 'ulimit -v' the allocation failed inside torch (exit 1): the memory check read the
    # machine's available memory only, not the limits set on the process
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "aekit", "train", "good.zarr", "--out", "capped", "--epochs", "1",
         "--hidden", "12000,12000"],
        cwd=place, capture_output=True, text=True, preexec_fn=limit,
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "ulimit -v" in lines[0] and "--hidden" in lines[0]
    assert not (place / "capped").exists()
