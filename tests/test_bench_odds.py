"""The odds bench's per-set rule, asked of every detector."""

from bench.odds import sets_behind


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
