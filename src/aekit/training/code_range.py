"""The range of a trained model's codes, which its anomaly score holds codes within.

Why a range, and not the codes as they are: see
:meth:`~aekit.models.base.AutoencoderModule.bound_code`. The 2nd to 98th percentile of each
code dimension was chosen on the ODDS dev protocol (``bench odds --dev``), against the 1st-99th,
the 0.5th-99.5th and the median plus or minus 3 robust deviations: it gained most in both
protocols (README, "Clamping the code"). The percentiles come from the training split, not the
validation one: on small tables a tenth of the rows makes them a guess.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import torch

from aekit.models import AutoencoderModule
from aekit.training.loop import BatchSource

PERCENTILES = (2.0, 98.0)
# Enough codes for the percentiles to hold to about a tenth of a percent of the samples
# (binomial error sqrt(0.02 * 0.98 / n)), few enough that a store of any size costs at most
# one encoder pass over them: 100,000 x 64 floats is 25 MB
MAX_SAMPLES = 100_000


def set_code_range(model: AutoencoderModule, source: BatchSource, device: torch.device) -> None:
    """Set ``model``'s ``code_low`` and ``code_high`` to :data:`PERCENTILES` of the codes of
    ``source`` (the training split, its first epoch's shuffled order), from at most
    :data:`MAX_SAMPLES` of its samples. A source without samples leaves the range unbounded."""
    codes: list[np.ndarray] = []
    seen = 0
    batches = source.batches(0)
    try:
        with torch.no_grad():
            for batch in batches:
                codes.append(model.encode(batch.to(device)).float().cpu().numpy())
                seen += len(batch)
                if seen >= MAX_SAMPLES:
                    break
    finally:
        if isinstance(batches, Generator):  # a store's stream stops its readers now
            batches.close()
    if not codes:
        return
    low, high = np.percentile(np.concatenate(codes)[:MAX_SAMPLES], PERCENTILES, axis=0)
    model.code_low.copy_(torch.from_numpy(low))
    model.code_high.copy_(torch.from_numpy(high))
