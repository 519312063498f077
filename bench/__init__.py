"""aekit's benchmarks: each prints its figure as a ratio against a baseline run beside it."""
