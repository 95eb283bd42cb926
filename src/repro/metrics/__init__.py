"""Metrics on a 0-100 scale; each result is {"value", "signature", ...} or {"skipped": reason}.

Kept import-free: `python -m repro.metrics.comet` runs in the COMET venv, which lacks our deps.
"""
