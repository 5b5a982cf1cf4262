"""Moved to modeformer_jax/data/synth/in_memory.py; importable from here while callers move."""
from modeformer_jax.data.synth.in_memory import synthetic_records  # noqa: F401
