"""What the apply commands need of a fitted model: the interface the estimator offers.

The apply layer works on any object with these members (``aekit.Autoencoder`` is one), so it
needs no import of the estimator, which sits above it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch

from aekit.models import AutoencoderModule


class FittedModel(Protocol):
    model_: AutoencoderModule
    sample_shape_: tuple[int, ...]
    latent_dim: int
    beta: float
    threshold_: float
    threshold_info_: dict[str, Any]
    latent_std_: np.ndarray

    def batches(self, X: Any, batch_size: int = ...) -> Iterator[torch.Tensor]: ...

    def transform(self, X: Any) -> np.ndarray: ...

    def inverse_transform(self, X: Any) -> np.ndarray: ...

    def sample(self, n_samples: int = ..., random_state: int | None = ...) -> np.ndarray: ...

    def interpolate(self, a: Any, b: Any, steps: int = ...) -> np.ndarray: ...
