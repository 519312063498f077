from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aekit.data.images import decode_image
from aekit.data.ingest import ingest
from aekit.errors import DataError


def _save(path, image, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


@pytest.fixture
def folder(tmp_path):
    """Two classes, every accepted format and colour mode, mixed sizes."""
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)

    def noise(h, w, c):
        return Image.fromarray(rng.integers(0, 255, size=(h, w, c), dtype=np.uint8).squeeze())

    _save(root / "cats" / "a.jpg", noise(60, 90, 3))
    _save(root / "cats" / "b.png", noise(40, 40, 1))  # grayscale
    _save(root / "cats" / "c.bmp", noise(33, 21, 3))
    _save(root / "cats" / "d.tiff", noise(50, 70, 3))
    _save(root / "dogs" / "e.webp", noise(64, 48, 3))
    _save(root / "dogs" / "f.png", noise(30, 30, 3).convert("P"))  # palette
    _save(root / "dogs" / "g.png", Image.new("RGBA", (20, 20), (10, 20, 30, 0)))  # transparent
    _save(root / "dogs" / "h.jpg", Image.new("CMYK", (25, 40), (0, 255, 255, 0)))
    sixteen = Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16))
    _save(root / "dogs" / "i.png", sixteen)
    return root


def test_every_format_and_mode_becomes_the_requested_shape(folder, tmp_path):
    store = ingest(
        folder,
        tmp_path / "s.zarr",
        size=(24, 32),
        channels=3,
        val_fraction=0,
        workers=1,
        progress=False,
    )
    assert store.n == 9 and store.sample_shape == (24, 32, 3) and store.dtype == np.uint8
    assert store.class_names == ["cats", "dogs"]
    np.testing.assert_array_equal(store.labels, [0, 0, 0, 0, 1, 1, 1, 1, 1])
    ids = list(store.ids(np.arange(9)))
    assert ids[0] == "cats/a.jpg" and ids[-1] == "dogs/i.png"
    x = store.read(np.arange(9))
    assert (x[ids.index("dogs/g.png")] == 255).all()  # transparency composited onto white
    assert (x[ids.index("dogs/i.png")] == 255).all()  # 16-bit white stays white
    red = x[ids.index("dogs/h.jpg")].reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60  # CMYK (0,255,255,0) is red
    assert len(store.stats["mean"]) == 3  # per-channel statistics


def test_grayscale_requested(folder, tmp_path):
    store = ingest(folder, tmp_path / "s.zarr", size=(8, 8), channels=1, workers=1, progress=False)
    assert store.sample_shape == (8, 8, 1)


def test_resize_covers_then_centre_crops():
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, 10:30] = 255  # a white band in the middle half of a wide image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    buffer.seek(0)
    out = decode_image(buffer, (10, 10), 3)  # type: ignore[arg-type]
    # Scaled to 10x20 then cropped to the central 10x10: all of it is the white band
    assert out.shape == (10, 10, 3) and out.min() > 200


def _add_bad_files(root):
    (root / "cats" / "empty.jpg").write_bytes(b"")
    (root / "cats" / "notes.png").write_text("not an image")
    good = (root / "cats" / "a.jpg").read_bytes()
    (root / "dogs" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "dogs" / "gone.png").symlink_to(root / "nowhere.png")  # unreadable


def test_bad_images_stop_the_ingest_naming_the_file(folder, tmp_path):
    _add_bad_files(folder)
    with pytest.raises(DataError, match=r"cats/empty.jpg: empty file \(0 bytes\); fix or remove"):
        ingest(folder, tmp_path / "s.zarr", size=(8, 8), workers=1, progress=False)
    assert not (tmp_path / "s.zarr").exists()
    assert not list(tmp_path.glob(".s.zarr*"))


def test_bad_images_are_skipped_and_listed_with_parallel_workers(folder, tmp_path, capsys):
    _add_bad_files(folder)
    store = ingest(
        folder, tmp_path / "s.zarr", size=(8, 8), on_error="skip", workers=2, progress=False
    )
    assert store.n == 9
    report = store.report
    assert report["skipped_count"] == 4 and report["records_read"] == 13
    skipped = {s["record"]: s["problem"] for s in report["skipped"]}
    assert set(skipped) == {
        "cats/empty.jpg",
        "cats/notes.png",
        "dogs/truncated.jpg",
        "dogs/gone.png",
    }
    assert skipped["cats/empty.jpg"] == "empty file (0 bytes)"
    assert "No such file" in skipped["dogs/gone.png"]


def test_image_folders_need_a_size(folder, tmp_path):
    with pytest.raises(DataError, match="image folders need --size HxW"):
        ingest(folder, tmp_path / "s.zarr", progress=False)
