"""The autoencoder family on scikit-learn's digits, each kind against PCA in the same run.

30 % stratified test split, default settings, digits as 8x8x1 images in raw pixel units (0-16):
- reconstruction MSE of dense and conv at latent sizes 2, 8 and 16, as a ratio to PCA's, and of
  dense on the same pixels as a (n, 64) table, standardised per column and with a shared scale;
- denoising: PSNR gain on test digits with Gaussian noise of 0.3 x the pixel range, against
  projecting the noisy digits onto PCA of the same size;
- vae samples: a logistic regression trained on real digits classifies them; their mean
  top-class probability against samples from a Gaussian fitted in PCA space of the same size.
Run: python -m bench digits
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from aekit import Autoencoder

PIXEL_RANGE = 16.0


def _split(seed: int):
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


def _images(X: np.ndarray) -> np.ndarray:
    return X.reshape(-1, 8, 8, 1)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.reshape(len(a), -1) - b.reshape(len(b), -1)) ** 2))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(PIXEL_RANGE**2 / _mse(a, b))


def reconstruction(seed: int = 0, sizes=(2, 8, 16)) -> list[dict]:
    Xtr, Xte, _, _ = _split(seed)
    rows = []
    for size in sizes:
        pca = PCA(size, random_state=seed).fit(Xtr)
        row = {"latent_dim": size, "pca_mse": _mse(pca.inverse_transform(pca.transform(Xte)), Xte)}
        for kind in ("dense", "conv"):
            started = time.perf_counter()
            ae = Autoencoder(latent_dim=size, kind=kind, random_state=seed).fit(_images(Xtr))
            row[f"{kind}_mse"] = _mse(ae.inverse_transform(ae.transform(_images(Xte))), Xte)
            row[f"{kind}_ratio"] = row[f"{kind}_mse"] / row["pca_mse"]
            row[f"{kind}_seconds"] = time.perf_counter() - started
        # The same pixels as a (n, 64) table, as most users hold them: dense, each column
        # standardised on its own (the default) and with one shared scale, as the images are
        for scale in ("feature", "shared"):
            ae = Autoencoder(latent_dim=size, scale=scale, random_state=seed).fit(Xtr)
            mse = _mse(ae.inverse_transform(ae.transform(Xte)), Xte)
            row[f"table_{scale}_ratio"] = mse / row["pca_mse"]
        rows.append(row)
    return rows


def denoising(seed: int = 0, size: int = 16, level: float = 0.3) -> dict:
    Xtr, Xte, _, _ = _split(seed)
    noisy = Xte + np.random.default_rng(seed).normal(0, level * PIXEL_RANGE, Xte.shape)
    noisy = noisy.astype(np.float32)
    ae = Autoencoder(latent_dim=size, noise=f"gaussian:{level}", random_state=seed)
    ae.fit(_images(Xtr))
    denoised = ae.inverse_transform(ae.transform(_images(noisy)))
    pca = PCA(size, random_state=seed).fit(Xtr)
    projected = pca.inverse_transform(pca.transform(noisy))
    base = _psnr(noisy, Xte)
    return {
        "latent_dim": size,
        "noise": level,
        "psnr_noisy": base,
        "psnr_gain_autoencoder": _psnr(denoised, Xte) - base,
        "psnr_gain_pca": _psnr(projected, Xte) - base,
        "examples": (Xte[:8], noisy[:8], denoised[:8].reshape(8, -1), projected[:8]),
    }


def generation(seed: int = 0, size: int = 8, n: int = 1000) -> dict:
    Xtr, Xte, ytr, _ = _split(seed)
    judge = LogisticRegression(max_iter=5000).fit(Xtr / PIXEL_RANGE, ytr)
    vae = Autoencoder(latent_dim=size, kind="vae", random_state=seed).fit(_images(Xtr))
    samples = vae.sample(n, random_state=seed).reshape(n, -1)
    pca = PCA(size, random_state=seed).fit(Xtr)
    codes = pca.transform(Xtr)
    rng = np.random.default_rng(seed)
    gaussian = pca.inverse_transform(
        rng.multivariate_normal(codes.mean(0), np.cov(codes, rowvar=False), size=n)
    )

    def confidence(images: np.ndarray) -> float:
        clipped = np.clip(images, 0, PIXEL_RANGE) / PIXEL_RANGE
        return float(judge.predict_proba(clipped).max(axis=1).mean())

    # Interpolation between two test digits of different classes, through the codes
    a, b = vae.transform(_images(Xte[:1])), vae.transform(_images(Xte[1:2]))
    steps = np.linspace(0, 1, 8, dtype=np.float32)[:, None]
    path = vae.inverse_transform((1 - steps) * a + steps * b).reshape(8, -1)
    return {
        "latent_dim": size,
        "vae_confidence": confidence(samples),
        "pca_gaussian_confidence": confidence(gaussian),
        "real_test_confidence": confidence(Xte),
        "samples": samples[:64],
        "interpolation": path,
    }


def save_grid(rows: list[np.ndarray], titles: list[str], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(len(rows[0]) * 0.8, len(rows) * 0.9), layout="constrained")
    axes = fig.subplots(len(rows), len(rows[0]), squeeze=False)
    for r, (images, title) in enumerate(zip(rows, titles, strict=True)):
        for c, image in enumerate(images):
            axes[r][c].imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=PIXEL_RANGE)
            axes[r][c].axis("off")
        axes[r][0].set_title(title, fontsize=8, loc="left")
    fig.savefig(path, dpi=100)
    return path


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = reconstruction(args.seed)
    print("reconstruction MSE on held-out digits (pixel units), ratio to PCA of the same size:")
    for r in rows:
        print(
            f"  latent {r['latent_dim']:>2}: PCA {r['pca_mse']:.3f}, dense {r['dense_ratio']:.3f}"
            f" ({r['dense_seconds']:.0f} s), conv {r['conv_ratio']:.3f}"
            f" ({r['conv_seconds']:.0f} s);"
            f" as a table, dense {r['table_feature_ratio']:.3f} per column,"
            f" {r['table_shared_ratio']:.3f} with --scale shared"
        )
    noise = denoising(args.seed)
    print(
        f"denoising (Gaussian noise 0.3 x range, PSNR of noisy {noise['psnr_noisy']:.2f} dB): "
        f"gain autoencoder {noise['psnr_gain_autoencoder']:+.2f} dB vs PCA({noise['latent_dim']})"
        f" projection {noise['psnr_gain_pca']:+.2f} dB"
    )
    gen = generation(args.seed)
    print(
        f"vae samples, mean top-class probability of a classifier trained on real digits: "
        f"{gen['vae_confidence']:.3f} vs Gaussian in PCA({gen['latent_dim']}) space "
        f"{gen['pca_gaussian_confidence']:.3f} (real test digits {gen['real_test_confidence']:.3f})"
    )
    clean, noisy, denoised, projected = noise.pop("examples")
    save_grid(
        [clean, noisy, denoised, projected],
        ["clean", "noisy", "autoencoder", "PCA projection"],
        out / "digits_denoising.png",
    )
    samples = gen.pop("samples")
    save_grid(
        [samples[i * 8 : (i + 1) * 8] for i in range(6)] + [gen.pop("interpolation")],
        [f"vae samples {i + 1}" for i in range(6)] + ["interpolation between two test digits"],
        out / "digits_vae.png",
    )
    print(f"grids: {out / 'digits_denoising.png'}, {out / 'digits_vae.png'}")
    return {"reconstruction": rows, "denoising": noise, "generation": gen}
