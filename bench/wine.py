"""Wine walkthrough over seeds: autoencoder vs PCA(3) on the same splits.

Run: python -m bench wine [--seeds 5]
"""

from __future__ import annotations

import argparse

from aekit.runs.demo import wine_over_seeds


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench wine")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    result = wine_over_seeds(range(args.seeds))
    print(
        f"{'seed':>4} {'AE ARI':>8} {'PCA ARI':>8} {'AE MSE':>8} {'PCA MSE':>8} "
        f"{'ratio':>7} {'fit s':>6}"
    )
    for r in result["rows"]:
        print(
            f"{r['seed']:>4} {r['ae_kmeans_ari']:>8.3f} {r['pca_kmeans_ari']:>8.3f} "
            f"{r['ae_heldout_mse']:>8.4f} {r['pca_heldout_mse']:>8.4f} "
            f"{r['mse_ratio']:>7.3f} {r['fit_seconds']:>6.2f}"
        )
    m = result["median"]
    print(
        f"median KMeans ARI: autoencoder {m['ae_kmeans_ari']:.3f}, PCA {m['pca_kmeans_ari']:.3f}; "
        f"median held-out MSE ratio autoencoder/PCA: {m['mse_ratio']:.3f}; "
        f"median fit time {m['fit_seconds']:.2f} s"
    )
    return result
