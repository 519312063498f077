"""New samples from a variational model, and paths between two samples in latent space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aekit.apply.batching import require_shape
from aekit.apply.fitted import FittedModel
from aekit.apply.maps import BATCH, feature_names, progress_bar
from aekit.apply.outputs import Output, check_output
from aekit.data.store import Store
from aekit.errors import AekitError


def generate_file(
    ae: FittedModel, out: str | Path, n: int, *, seed: int = 0, progress: bool | None = None
) -> dict[str, Any]:
    """Write ``n`` samples of a VAE to ``out``, drawn block by block (bounded memory)."""
    if not ae.model_.variational:
        raise AekitError(
            "generate needs a variational run (model.kind = 'vae'); use "
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
