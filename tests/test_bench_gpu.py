"""bench gpu's paths, run small on the CPU: the stream and the in-memory ceiling it is set
against both go through the training loop, so a change to the loop's batch sources shows here
and not first on a lent GPU."""

from __future__ import annotations

from argparse import Namespace

import numpy as np
import torch

from aekit.data.ingest import ingest
from aekit.data.store import open_store
from bench import gpu


def test_stream_and_in_memory_ceiling_train_through_the_loop(tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)
    ingest(X, tmp_path / "x.zarr", val_fraction=0.0, progress=False)
    store = open_store(tmp_path / "x.zarr")
    args = Namespace(epochs=1, no_compile=True)
    result = gpu.compare(store, "dense", 64, torch.device("cpu"), args)
    for source in ("stream", "on_gpu", "on_gpu_fp32"):
        assert result[source]["samples_per_s"] > 0
    assert result["stream_vs_on_gpu"] > 0 and "on_gpu_compiled" not in result
