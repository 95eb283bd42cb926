"""Reproduction library for Warmup Generations and token-sequence co-supervision."""

__version__ = "0.1.0"
