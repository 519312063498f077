"""Semi-supervised use: how well a few labels go with the latents, against raw features."""

from __future__ import annotations

from typing import Any

import numpy as np

from aekit.apply.batching import require_shape
from aekit.apply.fitted import FittedModel
from aekit.data.store import Store
from aekit.errors import AekitError


def _classifier(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def probe(
    ae: FittedModel, store: Store, labels_per_class: int, *, repeats: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Accuracy of a logistic regression trained on ``labels_per_class`` labelled samples per
    class of the training split, on the codes against on the raw features.

    Both classifiers are scored on the whole validation split, streamed in batches; the draw
    of the labelled samples is repeated ``repeats`` times (seeds ``seed``, ``seed + 1``, ...).
    Memory: the labelled samples plus one batch.
    """
    from aekit.apply.maps import BATCH

    require_shape(store, ae.sample_shape_)
    y = store.labels
    if y is None:
        raise AekitError(
            f"{store.path} has no labels; probe needs a labelled store "
            "(image folders by class, or --label-column)."
        )
    if labels_per_class < 1:
        raise AekitError(f"--labels must be >= 1; got {labels_per_class}.")
    if repeats < 1:
        raise AekitError(f"--repeats must be >= 1; got {repeats}.")
    train, test = store.train_index, store.val_index
    if len(test) == 0:
        raise AekitError(
            f"{store.path} has no validation split to score on; ingest it again "
            "with --val-fraction 0.2."
        )
    classes, counts = np.unique(y[train], return_counts=True)
    if counts.min() < labels_per_class:
        scarce = classes[np.argmin(counts)]
        if store.class_names is not None:
            scarce = f"'{store.class_names[scarce]}'"
        raise AekitError(
            f"--labels {labels_per_class}: class {scarce} has only "
            f"{counts.min()} training samples; ask for fewer."
        )

    scores: dict[str, list[float]] = {"latent": [], "raw": []}
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        picked = np.sort(
            np.concatenate(
                [rng.choice(train[y[train] == c], labels_per_class, replace=False) for c in classes]
            )
        )
        x = store.read(picked).astype(np.float32)
        models = {
            "latent": _classifier(seed + r).fit(ae.transform(x), y[picked]),
            "raw": _classifier(seed + r).fit(x.reshape(len(x), -1), y[picked]),
        }
        correct = {"latent": 0, "raw": 0}
        for first in range(0, len(test), BATCH):
            rows = test[first : first + BATCH]
            xb = store.read(rows).astype(np.float32)
            correct["latent"] += int(np.sum(models["latent"].predict(ae.transform(xb)) == y[rows]))
            correct["raw"] += int(np.sum(models["raw"].predict(xb.reshape(len(xb), -1)) == y[rows]))
        for key in scores:
            scores[key].append(correct[key] / len(test))
    return {
        "labels_per_class": labels_per_class,
        "classes": len(classes),
        "test_samples": len(test),
        "repeats": repeats,
        "latent_accuracy": float(np.mean(scores["latent"])),
        "latent_accuracy_std": float(np.std(scores["latent"])),
        "raw_accuracy": float(np.mean(scores["raw"])),
        "raw_accuracy_std": float(np.std(scores["raw"])),
    }
