"""Datasets: their names and sources (``datasets``), the user's registry (``registry``),
preprocessing and the on-disk cache of its results.

``bench.data.register_dataset`` is the public face a user's file imports."""
from bench.data.registry import register_dataset  # noqa: F401
