"""Image folders: decode and resize once, in parallel processes.

Resize policy: the image is scaled, keeping its aspect ratio, until it covers the requested
height x width, then centre-cropped to exactly that size (bicubic resampling; JPEGs are decoded
at a reduced scale first when they are much larger than the target). Grayscale, palette, RGBA,
CMYK and 16-bit images are converted to the requested channels: transparency is composited onto
white, 16-bit values are scaled to 8 bits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.records import BadRecords, Block
from aekit.errors import DataError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


# Images decoded into one block before it is written
BLOCK_IMAGES = 256


def decode_image(path: str, size: tuple[int, int], channels: int) -> np.ndarray:
    """Decode one file to a uint8 array of shape (height, width, channels), or raise."""
    from PIL import Image, ImageOps

    height, width = size
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB" if channels == 3 else "L", (width, height))
        img.load()
        converted = _to_mode(img, "RGB" if channels == 3 else "L")
        fitted = ImageOps.fit(converted, (width, height), method=Image.Resampling.BICUBIC)
        return np.asarray(fitted, dtype=np.uint8).reshape(height, width, channels)


def _to_mode(img: Any, mode: str) -> Any:
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(
            (arr / (257.0 if arr.max() > 255 else 1.0)).clip(0, 255).astype(np.uint8)
        )
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert(mode)


def _decode_job(job: tuple[int, str, tuple[int, int], int]) -> tuple[int, Any, str | None]:
    index, path, size, channels = job
    try:
        return index, decode_image(path, size, channels), None
    except Exception as exc:  # any decoder failure is the record's problem, reported by name
        reason = "empty file (0 bytes)" if _is_empty(path) else f"{type(exc).__name__}: {exc}"
        return index, None, reason


def _is_empty(path: str) -> bool:
    try:
        return Path(path).stat().st_size == 0
    except OSError:
        return False


class ImageFolderSource:
    """A folder of images, one subfolder per class (or images directly inside, unlabelled)."""

    def __init__(
        self,
        root: Path,
        size: tuple[int, int],
        channels: int,
        workers: int,
        bad: BadRecords,
        block_size: int = BLOCK_IMAGES,
    ) -> None:
        self.root = root
        self.size = size
        self.channels = channels
        self.workers = workers
        self.bad = bad
        self.block_size = block_size
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if subdirs:
            self.class_names: list[str] | None = [p.name for p in subdirs]
            files = [(f, c) for c, d in enumerate(subdirs) for f in _image_files(d)]
        else:
            self.class_names = None
            files = [(f, -1) for f in _image_files(root)]
        if not files:
            raise DataError(
                f"{root}: no image files ({', '.join(sorted(EXTENSIONS))}) found; point at a "
                "folder of images or of class subfolders."
            )
        self.files = files
        self.n_records = len(files)
        self.sample_shape = (size[0], size[1], channels)
        self.dtype = np.dtype(np.uint8)
        self.has_labels = self.class_names is not None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "images",
            "path": str(self.root),
            "resize": "cover then centre-crop, bicubic",
            "size": list(self.size),
            "channels": self.channels,
        }

    def blocks(self) -> Iterator[Block]:
        jobs = ((i, str(f), self.size, self.channels) for i, (f, _) in enumerate(self.files))
        results = _map_ordered(_decode_job, jobs, self.workers)
        pending: list[tuple[int, np.ndarray]] = []
        for index, image, reason in results:
            if image is None:
                self.bad.bad(self._rel(index), reason or "unreadable")
                continue
            pending.append((index, image))
            if len(pending) == self.block_size:
                yield self._block(pending)
                pending = []
        if pending:
            yield self._block(pending)

    def _rel(self, index: int) -> str:
        return str(self.files[index][0].relative_to(self.root))

    def _block(self, items: list[tuple[int, np.ndarray]]) -> Block:
        record = np.array([i for i, _ in items], dtype=np.int64)
        return Block(
            x=np.stack([im for _, im in items]),
            y=np.array([self.files[i][1] for i in record], dtype=np.int64)
            if self.has_labels
            else None,
            ids=np.array([self._rel(int(i)) for i in record]),
            record=record,
        )


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _map_ordered(fn: Any, jobs: Iterator[Any], workers: int) -> Iterator[Any]:
    """``map`` over processes, lazily and in order; in this process when ``workers`` is 1."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    import multiprocessing

    # spawn: the parent may hold threads (torch, zarr), which fork would copy in a broken state
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(fn, jobs, chunksize=16)
