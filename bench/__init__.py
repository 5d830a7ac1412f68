"""Benchmarks: run each as `python bench/<name>.py` (see the README)."""
