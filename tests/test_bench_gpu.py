"""bench gpu's paths, run small on the CPU: the stream and the in-memory ceiling it is set
against both go through the training loop, so a change to the loop's batch sources shows here
and not first on a lent GPU."""

from __future__ import annotations

from argparse import Namespace

import numpy as np
import torch

from aekit.data.ingest import ingest
from bench import gpu


def test_streams_and_in_memory_ceiling_train_through_the_loop(tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)
    store = ingest(X, tmp_path / "x.zarr", val_fraction=0.0, progress=False)
    half = ingest(X, tmp_path / "h.zarr", val_fraction=0.0, progress=False, dtype="float16")
    args = Namespace(epochs=1, no_compile=True)
    result = gpu.compare(store, "dense", 64, torch.device("cpu"), args, half=half)
    for source in ("on_gpu", "on_gpu_fp32"):
        assert result[source]["samples_per_s"] > 0
    assert "on_gpu_compiled" not in result
    streams = ["block", "global", "cached", "float16_block", "float16_global"]
    assert [k for k, v in result.items() if isinstance(v, dict) and "vs_on_gpu" in v] == streams
    for name in streams:
        assert result[name]["vs_on_gpu"] > 0 and result[name]["gb_per_s"] > 0
    assert "stays on cpu" in result["cached"]["order_choice"]
    assert "block shuffle" in result["float16_block"]["order_choice"]
