"""Autoencoder families, one module each, and the registry that builds them by name."""

from __future__ import annotations

from aekit.models.dense import ACTIVATIONS, DenseAutoencoder
from aekit.models.scaling import Standardizer

KINDS = {"dense": DenseAutoencoder}

__all__ = ["ACTIVATIONS", "KINDS", "DenseAutoencoder", "Standardizer"]
