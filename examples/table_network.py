"""Your own network for tables: LayerNorm and dropout, which the built-in dense family has not.

    python examples/table_network.py      # fits it on scikit-learn's breast cancer table

aekit calls ``build(sample_shape, latent_dim, **network_kwargs)`` and wraps the two modules it
returns with what every aekit model has: the input scaling (fitted on the training data), the
code layer (its width found from ``features``), the variational heads if asked, and the output.
So ``features`` takes standardised rows and ends in a flat vector, and ``decoder`` takes codes
and returns standardised rows. From the command line the same network is::

    aekit train table.zarr --out runs/mine --network table_network:build \\
        --set 'model.network_kwargs={widths = [64, 32], dropout = 0.1}'
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from torch import nn


def build(
    sample_shape: Sequence[int],
    latent_dim: int,
    *,
    widths: Sequence[int] = (64, 32),
    dropout: float = 0.1,
) -> tuple[nn.Module, nn.Module]:
    """(features, decoder): Linear, LayerNorm, GELU and dropout blocks down through ``widths``,
    and back up from the code to the row."""

    def block(a: int, b: int) -> list[nn.Module]:
        return [nn.Linear(a, b), nn.LayerNorm(b), nn.GELU(), nn.Dropout(dropout)]

    n = int(np.prod(sample_shape))
    down, up = [n, *widths], [latent_dim, *reversed(widths)]
    features = nn.Sequential(nn.Flatten(), *[m for a, b in pairwise(down) for m in block(a, b)])
    decoder = nn.Sequential(
        *[m for a, b in pairwise(up) for m in block(a, b)], nn.Linear(up[-1], n)
    )
    return features, decoder


def main() -> dict[str, float]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from aekit import Autoencoder

    X = load_breast_cancer().data.astype(np.float32)
    train, test = train_test_split(X, test_size=0.3, random_state=0)
    ae = Autoencoder(network=build, latent_dim=4, random_state=0).fit(train)
    scaler = StandardScaler().fit(train)

    def error(reconstruction: np.ndarray) -> float:  # mean squared error, standardised units
        return float(np.mean((scaler.transform(reconstruction) - scaler.transform(test)) ** 2))

    pca = PCA(4).fit(scaler.transform(train))
    baseline = scaler.inverse_transform(
        pca.inverse_transform(pca.transform(scaler.transform(test)))
    )
    result = {"autoencoder": error(ae.reconstruct(test)), "pca": error(baseline)}
    print(f"held-out reconstruction error: {result['autoencoder']:.3f} (PCA: {result['pca']:.3f})")
    return result


if __name__ == "__main__":
    main()
