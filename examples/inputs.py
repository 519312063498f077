"""Small stand-ins for the files the README's commands read, made from scikit-learn's data.

    python examples/inputs.py [FOLDER]     # default: the current folder

writes, in a few seconds and about 10 MB:

- ``photos/<digit>/*.png``: 600 of scikit-learn's 8x8 digits as 32x32 RGB images, one
  subfolder per class; ``noisy_photos/*.png``: 40 more with noise added;
- ``digits.npy`` (1,797 x 8 x 8, uint8) and ``digits-labels.npy``;
- ``table.csv``: breast cancer (569 rows, 30 named features, ``label`` malignant or benign),
  with one broken row; ``new.csv`` (40 rows, no label) and ``today.csv`` (60 rows, with it);
- ``big.npy``: 20,000 x 32 float32, a few factors plus noise;
- ``rec.h5`` (dataset ``signals/x``: 1,000 noisy sine waves of 64 steps) and
  ``rec-labels.npy``, their frequency class.

Every file is the same for the same seed, and none is overwritten: run it in a fresh folder.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=".", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder: Path = args.folder
    taken = [n for n in _NAMES if (folder / n).exists()]
    if taken:
        print(
            f"inputs.py: {folder / taken[0]} already exists; use an empty folder", file=sys.stderr
        )
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    _images(folder, rng)
    _table(folder)
    _arrays(folder, rng)
    print(f"wrote {', '.join(_NAMES)} in {folder}")
    return 0


_NAMES = [
    "photos", "noisy_photos", "digits.npy", "digits-labels.npy", "table.csv", "new.csv",
    "today.csv", "big.npy", "rec.h5", "rec-labels.npy",
]  # fmt: skip


def _images(folder: Path, rng: np.random.Generator) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images * (255 / 16)).astype(np.uint8)
    np.save(folder / "digits.npy", digits.images.astype(np.uint8))
    np.save(folder / "digits-labels.npy", digits.target.astype(np.int64))
    for i in range(640):
        big = np.kron(pixels[i], np.ones((4, 4), np.uint8))  # 8x8 -> 32x32, blocky on purpose
        if i < 600:
            path = folder / "photos" / str(digits.target[i]) / f"{i:04d}.png"
        else:
            noise = rng.normal(0, 40, big.shape)
            big = np.clip(big + noise, 0, 255).astype(np.uint8)
            path = folder / "noisy_photos" / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(big).convert("RGB").save(path)


def _table(folder: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    header = [*data.feature_names, "label"]
    rows = [
        [*map(repr, map(float, x)), data.target_names[t]]
        for x, t in zip(data.data, data.target, strict=True)
    ]
    rows[100][3] = "n/a"  # one broken record, for --on-error skip
    for name, part, label in [
        ("table.csv", rows, True),
        ("new.csv", rows[200:240], False),
        ("today.csv", rows[300:360], True),
    ]:
        with open(folder / name, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header if label else header[:-1])
            writer.writerows(row if label else row[:-1] for row in part)


def _arrays(folder: Path, rng: np.random.Generator) -> None:
    import h5py

    factors = rng.normal(size=(20_000, 4)) @ rng.normal(size=(4, 32))
    np.save(folder / "big.npy", (factors + 0.1 * rng.normal(size=factors.shape)).astype(np.float32))
    classes = rng.integers(0, 3, 1_000)
    steps = np.arange(64) / 64
    phase = rng.uniform(0, 2 * np.pi, (1_000, 1))
    waves = np.sin(2 * np.pi * (2 + 2 * classes[:, None]) * steps + phase)
    with h5py.File(folder / "rec.h5", "w") as file:
        file["signals/x"] = (waves + 0.1 * rng.normal(size=waves.shape)).astype(np.float32)
    np.save(folder / "rec-labels.npy", classes)


if __name__ == "__main__":
    sys.exit(main())
