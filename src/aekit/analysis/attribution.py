"""Derivatives of a trained encoder with respect to its inputs."""

from __future__ import annotations

import numpy as np
import torch


def encoder_jacobians(model: torch.nn.Module, X_std: np.ndarray) -> np.ndarray:
    """Jacobian of the code with respect to standardised inputs, at every sample.

    Returns an array of shape (n_samples, latent_dim, n_features). Samples do not interact in the
    encoder, so the gradient of the batch sum of latent ``j`` gives ``dz_j/dx`` for every sample
    at once: one backward pass per latent dimension.
    """
    device = next(model.parameters()).device
    x = torch.as_tensor(X_std, dtype=torch.float32, device=device).requires_grad_(True)
    z = model.encode_normalized(x)  # type: ignore[operator]  # (B, L)
    rows = []
    for j in range(z.shape[1]):
        (grad,) = torch.autograd.grad(z[:, j].sum(), x, retain_graph=j < z.shape[1] - 1)
        rows.append(grad.detach().cpu().numpy())  # (B, F)
    return np.stack(rows, axis=1)
