"""Moved to modeformer_jax/weights/export_folder.py; importable from here while callers move."""
from modeformer_jax.weights.export_folder import CONFIG, WEIGHTS, load_exported, read_export_config  # noqa: F401
