from __future__ import annotations

import os

# scikit-learn's array-API check runs only when SciPy is imported with this set; set it before
# anything imports SciPy so that parametrize_with_checks runs that check instead of skipping it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    # Two threads, as on CI: keeps timings comparable and float results repeatable
    torch.set_num_threads(2)


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three well separated classes in 6 raw features of very different scales."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 4
    y = np.repeat(np.arange(3), 60)
    X = centers[y] + rng.normal(size=(180, 6))
    X = X * np.array([1, 10, 100, 1000, 0.1, 0.01]) + np.array([0, 5, -50, 1e4, 3, 0])
    return X, y
