"""Your own network for series: a GRU that reads each window step by step.

    python examples/series_network.py     # finds a planted fault in a noisy two-channel signal

With ``window_length`` set, aekit cuts the series into windows of (steps, channels) and calls
``build(sample_shape, latent_dim, **network_kwargs)`` with ``sample_shape = (steps,
channels)``. ``features`` takes standardised windows and ends in a flat vector (here the GRU's
last state); ``decoder`` takes codes and returns standardised windows (here a GRU run over the
code repeated at every step). aekit adds the scaling, the code layer and the output, trains on
windows, and scores every time step by the mean error of the windows that cover it. From the
command line::

    aekit ingest signal.npy signal.zarr --series
    aekit train signal.zarr --out runs/gru --network series_network:build --window-length 48
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class LastState(nn.Module):
    """A GRU over the window's steps; its final hidden state is the window's features."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(channels, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[1][-1]  # (B, hidden)


class Unroll(nn.Module):
    """The code given at every step to a GRU, each step's state mapped to the channels."""

    def __init__(self, latent_dim: int, steps: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.steps = steps
        self.gru = nn.GRU(latent_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        repeated = z[:, None, :].expand(-1, self.steps, -1)
        return self.out(self.gru(repeated)[0])  # (B, steps, channels)


def build(
    sample_shape: Sequence[int], latent_dim: int, *, hidden: int = 32
) -> tuple[nn.Module, nn.Module]:
    steps, channels = sample_shape
    return LastState(channels, hidden), Unroll(latent_dim, steps, channels, hidden)


def signal(steps: int, seed: int) -> np.ndarray:
    """Two channels of a noisy cycle of 48 steps."""
    t = np.arange(steps)
    noise = 0.05 * np.random.default_rng(seed).normal(size=(steps, 2))
    return np.stack([np.sin(2 * np.pi * t / 48), np.cos(2 * np.pi * t / 48)], 1) + noise


def main(epochs: int = 8) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    from aekit import Autoencoder

    train, test = signal(4000, 0), signal(2000, 1)
    fault = np.zeros(len(test), dtype=bool)
    fault[1000:1040] = True
    test[fault, 0] = 0.0  # a sensor stuck at zero for 40 steps
    ae = Autoencoder(
        network=build, window_length="auto", latent_dim=4, epochs=epochs, random_state=0
    ).fit(train.astype(np.float32))
    scores = ae.anomaly_score(test.astype(np.float32))
    result = {"window_length": ae.window_length_, "roc_auc": roc_auc_score(fault, scores)}
    print(
        f"window of {result['window_length']} steps; ROC-AUC of the fault: {result['roc_auc']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
