"""The odds bench's per-set rule, asked of every detector, and its one protocol for all sets."""

import numpy as np

from bench.odds import TRAIN_CAP, sets_behind, split


def _rows(table: dict[str, dict[str, list[float]]]) -> list[dict]:
    return [
        {"set": name, "protocol": "unsupervised", "detector": d, "roc_auc": auc}
        for name, by_detector in table.items()
        for d, aucs in by_detector.items()
        for auc in aucs
    ]


def test_each_detector_is_held_to_the_best_of_the_others_by_its_mean_over_seeds():
    rows = _rows(
        {
            # aekit's seeds average 0.80: 0.06 below IForest's 0.86, behind
            "a": {"aekit": [0.7, 0.9], "IForest": [0.86], "ECOD": [0.5]},
            # IForest 0.04 below aekit: within the margin; ECOD far behind both
            "b": {"aekit": [0.9], "IForest": [0.86], "ECOD": [0.6]},
        }
    )
    behind = sets_behind(rows, ["a", "b"], ["aekit", "IForest", "ECOD"], "unsupervised")
    assert behind == {"aekit": ["a"], "IForest": [], "ECOD": ["a", "b"]}
    # Far behind (more than 0.1): ECOD on both (0.36 and 0.30 below the best other); aekit's 0.06
    # on a is within it
    far = sets_behind(rows, ["a", "b"], ["aekit", "IForest", "ECOD"], "unsupervised", margin=0.1)
    assert far == {"aekit": [], "IForest": [], "ECOD": ["a", "b"]}


def test_the_split_is_stratified_and_caps_the_training_part_and_dev_splits_it_again():
    X = np.arange(40_000, dtype=float)[:, None]
    y = (np.arange(40_000) % 50 == 0).astype(int)  # 2 % anomalies
    X_train, X_test, y_train, y_test = split(X, y, seed=0)
    assert len(X_train) == TRAIN_CAP and len(X_test) == 16_000  # the test part whole
    assert y_test.mean() == 0.02 and abs(y_train.mean() - 0.02) < 0.005
    assert not set(X_train[:, 0]) & set(X_test[:, 0])
    d_train, d_test, _, dy_test = split(X, y, seed=0, dev=True)
    # dev: the capped training part split again; the test part never seen
    assert len(d_train) + len(d_test) == TRAIN_CAP and set(d_test[:, 0]) <= set(X_train[:, 0])
    assert dy_test.mean() == 0.02
