"""New samples from a variational model, and paths between two samples in latent space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from aekit.apply.batching import require_shape
from aekit.apply.fitted import FittedModel
from aekit.apply.maps import BATCH, feature_names, progress_bar
from aekit.apply.outputs import Output, check_output
from aekit.data.store import Store
from aekit.errors import AekitError
from aekit.params import Int, require


def draw(ae: FittedModel, n_samples: int, random_state: int | None) -> np.ndarray:
    """``n_samples`` samples of a variational model: codes from N(0, I), decoded to raw units,
    the same for the same ``random_state`` (None: 0)."""
    check_is_fitted(ae, "model_")
    if not ae.model_.variational:
        raise ValueError("sample needs a generative model: fit with variational=True.")
    require(Int(1), "n_samples", n_samples)
    generator = torch.Generator().manual_seed(0 if random_state is None else random_state)
    z = torch.randn(n_samples, ae.model_.latent_dim, generator=generator)
    return ae.inverse_transform(z.numpy())


def interpolate(ae: FittedModel, a: Any, b: Any, steps: int) -> np.ndarray:
    """``steps`` samples decoded along the straight line between the codes of ``a`` and ``b``."""
    require(Int(2), "steps", steps)
    ends = ae.transform(np.stack([np.asarray(a), np.asarray(b)]))
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return ae.inverse_transform((1 - t) * ends[0] + t * ends[1])


def generate_file(
    ae: FittedModel, out: str | Path, n: int, *, seed: int = 0, progress: bool | None = None
) -> dict[str, Any]:
    """Write ``n`` samples of a VAE to ``out``, drawn block by block (bounded memory)."""
    if not ae.model_.variational:
        raise AekitError(
            "generate needs a variational run (model.variational = true, or kind 'vae'); use "
            "'aekit generate RUN --interpolate' to walk between samples instead."
        )
    if n < 1:
        raise AekitError(f"--n must be >= 1; got {n}.")
    output = Output(
        check_output(out),
        n,
        tuple(ae.sample_shape_),
        has_labels=False,
        names=feature_names(None, ae),
    )
    try:
        with progress_bar(n, "generate", progress) as bar:
            for block, first in enumerate(range(0, n, BATCH)):
                rows = min(BATCH, n - first)
                # Each block has its own seed: the samples depend on (seed, n) only
                output.write(ae.sample(rows, random_state=seed * 1_000_003 + block))
                bar.update(rows)
        output.commit({"source": {"kind": "generate", "seed": seed}})
    except BaseException:
        output.abort()
        raise
    return {"out": str(out), "samples": n, "seed": seed}


def interpolate_file(
    ae: FittedModel, store: Store, rows: tuple[int, int], out: str | Path, *, steps: int = 8
) -> dict[str, Any]:
    """Write the ``steps`` samples decoded along the line between the codes of two rows."""
    require_shape(store, ae.sample_shape_)
    for row in rows:
        if not 0 <= row < store.n:
            raise AekitError(
                f"--interpolate: row {row} is outside {store.path} (0..{store.n - 1})."
            )
    if steps < 2:
        raise AekitError(f"--steps must be >= 2; got {steps}.")
    a, b = store.read(np.asarray(rows))
    path = ae.interpolate(a.astype(np.float32), b.astype(np.float32), steps=steps)
    output = Output(
        check_output(out),
        steps,
        tuple(ae.sample_shape_),
        has_labels=False,
        names=feature_names(store, ae),
    )
    output.write(path)
    output.commit({"source": {"kind": "interpolate", "path": str(store.path), "rows": rows}})
    return {"out": str(out), "samples": steps, "rows": list(rows)}
