"""Stores on object storage, against a real S3 server (SeaweedFS) started on 127.0.0.1: ingest,
train, a SIGKILL and --resume, encode, torchrun, a killed ingest, the server stopped mid-epoch,
refused credentials, a missing bucket, an endpoint that does not answer, and the local cache."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.cli import main
from aekit.data import remote
from aekit.data.store import is_store, open_store
from aekit.data.stream import StoreBatches
from aekit.errors import AekitError
from aekit.training.checkpoint import latest_checkpoint, load_checkpoint
from tests.s3server import ACCESS, BUCKET, SECRET, FlakyProxy, S3Server

AEKIT = [sys.executable, "-m", "aekit"]
TRAIN = [
    "--epochs", "3", "--batch-size", "64", "--hidden", "128", "--latent-dim", "8",
    "--seed", "0", "--quiet", "--set", "checkpoint.every_steps=10",
]  # fmt: skip
N_ROWS = 8000


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in server.env.items():
                env.setenv(key, value)
            env.delenv("AWS_PROFILE", raising=False)
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 8)) @ rng.normal(size=(8, 64)) + 0.1 * rng.normal(
        size=(N_ROWS, 64)
    )
    path = tmp_path_factory.mktemp("src") / "features.npy"
    np.save(path, X.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def url(s3, features) -> str:
    url = f"s3://{BUCKET}/stores/features.zarr"
    assert main(["ingest", str(features), url]) == 0
    return url


@pytest.fixture(scope="module")
def whole(url, tmp_path_factory) -> Path:
    """An uninterrupted run on the S3 store."""
    out = tmp_path_factory.mktemp("whole") / "run"
    subprocess.run([*AEKIT, "train", url, "--out", str(out), *TRAIN], check=True, timeout=600)
    return out


def _wait_for_step(out: Path, step: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        folder = out / "checkpoints"
        last = latest_checkpoint(folder) if folder.is_dir() else None
        if last is not None and int(last.stem.split("-")[1]) >= step:
            return
        time.sleep(0.002)
    raise AssertionError(f"no checkpoint at step {step} (exit {proc.poll()})")


def _mid_epoch_two(url: str) -> int:
    return int(-(-len(open_store(url).train_index) // 64) * 1.3)


def test_a_store_on_s3_trains_resumes_bitwise_after_sigkill_and_encodes(
    url, whole, features, tmp_path
):
    killed = tmp_path / "killed"
    with subprocess.Popen([*AEKIT, "train", url, "--out", str(killed), *TRAIN]) as proc:
        _wait_for_step(killed, _mid_epoch_two(url), proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert load_checkpoint(latest_checkpoint(killed / "checkpoints"))["position"]["epoch"] == 1
    subprocess.run(
        [*AEKIT, "train", "--out", str(killed), "--resume", "--quiet"], check=True, timeout=600
    )
    assert (killed / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()

    # Encoding the store on S3 gives what encoding the same samples held locally gives
    codes = tmp_path / "codes.npy"
    assert main(["encode", str(whole), url, "--out", str(codes)]) == 0
    local = aekit.load(whole).transform(np.load(features))
    np.testing.assert_allclose(np.load(codes), local, rtol=1e-5, atol=1e-6)

    # The run names its store by URL; no credential is written anywhere in it
    assert f'store = "{url}"' in (whole / "config.toml").read_text()
    for path in [*whole.rglob("*"), *killed.rglob("*")]:
        if path.is_file():
            content = path.read_bytes()
            assert SECRET.encode() not in content and ACCESS.encode() not in content, path


def _last_val_loss(run: Path) -> float:
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    return float(rows[-1]["val_loss"])


@pytest.mark.slow  # about 35 s; torchrun's equivalence is in the default run (test_distributed)
def test_torchrun_trains_on_a_store_on_s3_as_one_process_does(url, whole, tmp_path):
    out = tmp_path / "two"
    result = subprocess.run(
        [*AEKIT, "train", url, "--out", str(out), "--nproc", "2", *TRAIN],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    one, two = _last_val_loss(whole), _last_val_loss(out)
    assert abs(two - one) / one < 0.01, (one, two)


def test_the_server_stopped_mid_epoch_stops_training_clearly_and_resume_finishes_it(
    s3, url, whole, tmp_path
):
    out = tmp_path / "run"
    with subprocess.Popen(
        [*AEKIT, "train", url, "--out", str(out), *TRAIN],
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        _wait_for_step(out, _mid_epoch_two(url), proc)
        s3.stop()
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            s3.start()
    assert proc.returncode == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert "did not answer" in last and s3.endpoint in last and "--resume" in last, last
    assert "retry 5 of 5" in err  # each retry is logged, with the count

    subprocess.run(
        [*AEKIT, "train", "--out", str(out), "--resume", "--quiet"], check=True, timeout=600
    )
    assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()


def test_a_killed_ingest_leaves_nothing_that_opens_and_the_url_stays_free(s3, tmp_path, capsys):
    big = tmp_path / "big.npy"
    np.save(big, np.random.default_rng(1).random((40_000, 784), dtype=np.float32))
    dest = f"s3://{BUCKET}/stores/killed.zarr"
    with subprocess.Popen([*AEKIT, "ingest", str(big), dest]) as proc:
        deadline = time.time() + 120
        while time.time() < deadline:
            keys = remote.Remote.parse(f"s3://{BUCKET}/stores").keys()
            if any(".killed.zarr.partial-" in k and "/x/c/" in k for k in keys):
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not is_store(dest)
    with pytest.raises(AekitError, match="not an aekit store"):
        open_store(dest)
    assert main(["ingest", str(big), dest]) == 0  # its lock taken over: its holder died here
    assert open_store(dest).n == 40_000
    assert f"removed 1 partial store(s) of {dest}" in capsys.readouterr().err
    assert not [k for k in remote.Remote.parse(f"s3://{BUCKET}/stores").keys() if ".killed" in k]


def test_refusals_are_one_line_naming_what_to_check(s3, url, monkeypatch, capsys):
    def error_of(*argv: str) -> str:
        assert main(list(argv)) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        return lines[-1]

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-9x7")
    line = error_of("info", url)
    assert "denied" in line and "AWS_SECRET_ACCESS_KEY" in line and "9x7" not in line
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)

    line = error_of("info", "s3://no-such-bucket/stores/features.zarr")
    assert "bucket 'no-such-bucket'" in line
    line = error_of("ingest", __file__, f"s3://{BUCKET}")
    assert "s3://BUCKET/PATH/NAME.zarr" in line
    line = error_of("ingest", __file__, url)
    assert "already exists" in line

    # An endpoint where nothing answers: retried (fast here), then named
    monkeypatch.setattr(remote, "FIRST_WAIT", 0.01)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    line = error_of("info", url)
    assert "http://127.0.0.1:9 did not answer" in line


def test_a_server_answering_500_is_waited_for_through_zarr_too(
    s3, url, features, monkeypatch, caplog
):
    # After a restart SeaweedFS answered 500 to the first read of zarr.json (seen on CI): the
    # requests that go through zarr-python (metadata, split, an ingest's writes) are retried as
    # every other request
    monkeypatch.setattr(remote, "FIRST_WAIT", 0.01)
    with FlakyProxy(s3.endpoint, "GET", "/zarr.json", failures=3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        store = open_store(url)
        assert store.n == N_ROWS and len(store.train_index) > 0
    assert proxy.failed == 3 and store.remote.retried == 3
    assert "retry 3 of 5" in caplog.text and "reading " + url + "/zarr.json" in caplog.text

    dest = f"s3://{BUCKET}/stores/flaky.zarr"
    with FlakyProxy(s3.endpoint, "PUT", "/zarr.json", failures=2) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        assert main(["ingest", str(features), dest, "--quiet"]) == 0
    assert proxy.failed == 2
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    np.testing.assert_array_equal(
        open_store(dest).read(np.arange(5)), open_store(url).read(np.arange(5))
    )


def test_the_local_cache_serves_the_second_epoch_and_stays_within_its_size(url, tmp_path):
    plain = open_store(url)
    cached = open_store(url)
    cached.use_cache(tmp_path / "cache", 1 << 30)
    index = cached.train_index

    def epoch(store, number: int, **options) -> list[np.ndarray]:
        stream = StoreBatches(store, index, 256, 0, order="block", **options)
        return [b.numpy() for b in stream.batches(number)]

    first = epoch(cached, 0)
    fetched = cached.remote.bytes_read
    second = epoch(cached, 1)
    assert fetched > 0
    assert cached.remote.bytes_read == fetched and cached.cache.hits > 0  # all from the cache
    for got, want in ((first, epoch(plain, 0)), (second, epoch(plain, 1))):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)

    # Eight blocks of 256 KiB, room for two: the cache holds two and reads the rest remotely
    small = open_store(url)
    small.use_cache(tmp_path / "small", 600 * 1024)
    assert len(epoch(small, 0, block_bytes=256 * 1024)) == len(first)
    held = sum(p.stat().st_size for p in (tmp_path / "small").rglob("*") if p.is_file())
    assert held == 2 * 256 * 1024, held


def test_the_estimator_fits_and_transforms_a_store_on_s3(url):
    ae = aekit.Autoencoder(latent_dim=4, epochs=2, batch_size=256, random_state=0).fit(url)
    codes = ae.transform(url)
    assert codes.shape == (N_ROWS, 4) and np.isfinite(codes).all()


def test_fit_names_a_url_that_holds_no_store(s3, url):
    # Once "could not convert string to float": a URL was taken for samples
    missing = f"s3://{BUCKET}/stores/nope.zarr"
    with pytest.raises(AekitError, match=f"{missing} does not exist: no store there"):
        aekit.Autoencoder().fit(missing)


def test_a_second_writer_of_a_url_is_refused_and_a_dead_ones_lock_taken_over(
    s3, features, tmp_path, capsys
):
    # Two ingests to one URL at once: once both exited 0 and one store replaced the other
    dest = f"s3://{BUCKET}/stores/locked.zarr"
    lock = remote.Remote.parse(f"s3://{BUCKET}/stores/.locked.zarr.lock")
    holding = (
        "import time\nfrom aekit.data.remote import Remote\n"
        "from aekit.data.remote_lock import remote_exclusive\n"
        f"with remote_exclusive(Remote.parse({dest!r})):\n"
        "    print('held', flush=True)\n    time.sleep(120)"
    )
    with subprocess.Popen([sys.executable, "-c", holding], stdout=subprocess.PIPE, text=True) as h:
        assert h.stdout is not None and h.stdout.readline().strip() == "held"
        assert main(["ingest", str(features), dest, "--quiet"]) == 2
        assert f"being written by another aekit process (PID {h.pid} on" in capsys.readouterr().err
        os.kill(h.pid, signal.SIGKILL)
        h.wait()
    assert _exists(lock)  # the dead holder's lock is still there
    assert main(["ingest", str(features), dest, "--quiet"]) == 0  # taken over: it died here
    assert open_store(dest).n == N_ROWS and not _exists(lock)

    # A lock held from another machine cannot be checked from here: refused, naming the object
    import obstore

    obstore.put(lock.client, lock.prefix, b'{"host": "elsewhere", "pid": 1}', mode="create")
    assert main(["ingest", str(features), f"{dest[:-5]}2.zarr", "--quiet"]) == 0  # other URLs
    assert main(["ingest", str(features), dest, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "PID 1 on elsewhere" in err and lock.url in err
    obstore.delete(lock.client, lock.prefix)


def _exists(single: remote.Remote) -> bool:
    import obstore

    try:
        obstore.head(single.client, single.prefix)
    except FileNotFoundError:
        return False
    return True


def test_the_lock_object_is_created_by_one_writer_of_many_at_once(s3):
    # The conditional write the lock relies on (If-None-Match), checked on the server the tests
    # install: some S3 servers have accepted every concurrent writer
    from concurrent.futures import ThreadPoolExecutor

    import obstore
    from obstore.exceptions import AlreadyExistsError

    single = remote.Remote.parse(f"s3://{BUCKET}/locks/.race.lock")

    def create(i: int) -> bool:
        try:
            obstore.put(single.client, single.prefix, str(i).encode(), mode="create")
        except AlreadyExistsError:
            return False
        return True

    for _ in range(3):
        with ThreadPoolExecutor(16) as pool:
            won = [i for i, ok in enumerate(pool.map(create, range(16))) if ok]
        assert len(won) == 1
        assert bytes(obstore.get(single.client, single.prefix).bytes()) == str(won[0]).encode()
        obstore.delete(single.client, single.prefix)


def test_a_killed_ingests_partial_prefix_is_removed_by_the_next_and_reported(s3, features, capsys):
    dest = f"s3://{BUCKET}/stores/swept.zarr"
    stale = remote.Remote.parse(f"s3://{BUCKET}/stores/.swept.zarr.partial-0badc0de")
    other = remote.Remote.parse(f"s3://{BUCKET}/stores/.swept2.zarr.partial-0badc0de")
    import obstore

    for left in (stale, other):
        obstore.put(left.client, left.key("x/c/0/0"), bytes(3_000_000))
    assert main(["ingest", str(features), dest, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"removed 1 partial store(s) of {dest} (3.0 MB)" in err
    assert stale.keys() == [] and other.keys() != []  # only its own destination's partials
    other.delete_all()


@pytest.mark.parametrize(
    "url",
    [
        f"s3://{BUCKET}/a/../x.zarr", f"s3://{BUCKET}/./x.zarr", f"s3://{BUCKET}/a//x.zarr",
        f"s3://{BUCKET}/a/x\n.zarr",
    ],
    ids=["dotdot", "dot", "double slash", "newline"],
)  # fmt: skip
def test_a_url_with_an_odd_path_part_is_refused_naming_it(s3, features, url, capsys):
    # Once exit 1, "Could not parse path"
    assert main(["ingest", str(features), url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and repr(url)[1:-1] in err


def test_an_endpoint_that_never_answers_fails_within_the_set_time(features, tmp_path):
    # It accepts connections and says nothing: once 5 tries of 60 s each
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        env = {
            **os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.getsockname()[1]}",
            "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_REGION": "us-east-1",
            "AEKIT_S3_TIMEOUT": "1",
        }  # fmt: skip
        result = subprocess.run(
            [*AEKIT, "ingest", str(features), "s3://b/s/x.zarr"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "did not answer" in result.stderr and "AEKIT_S3_TIMEOUT" in result.stderr


def test_a_series_store_on_s3_trains_on_windows_as_the_same_store_on_disk(s3, tmp_path):
    """Windows are cut from a series store on S3 (in block order, which object storage takes
    by default, each block read with the steps after it) as from the same store on disk in
    block order: the same model, bit for bit, and the same score for every step."""
    steps = np.arange(6_000)
    series = np.stack([np.sin(steps / 9), np.cos(steps / 5)], axis=1).astype(np.float32)
    source = tmp_path / "machine.npy"
    np.save(source, series + np.float32(0.05) * np.sin(steps[:, None] * 1.7).astype(np.float32))
    url, local = f"s3://{BUCKET}/stores/machine.zarr", tmp_path / "machine.zarr"
    runs = []
    for store in (url, str(local)):
        assert main(["ingest", str(source), store, "--series"]) == 0
        out = tmp_path / ("s3" if store == url else "disk")
        train = [*AEKIT, "train", store, "--out", str(out), "--window-length", "32", *TRAIN]
        done = subprocess.run(
            [*train, "--shuffle", "block"], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        runs.append(out)
    assert (runs[0] / "model.safetensors").read_bytes() == (
        runs[1] / "model.safetensors"
    ).read_bytes()
    scores = [aekit.load(run).anomaly_score(open_store(local)) for run in runs]
    np.testing.assert_array_equal(*scores)
    assert len(scores[0]) == len(series)
