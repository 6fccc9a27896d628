"""Benchmarks; ``python -m bench`` runs them and appends to ``bench/RESULTS.md``."""
