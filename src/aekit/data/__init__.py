"""Data: sources -> ingest -> store -> batches (import the submodules you need)."""
