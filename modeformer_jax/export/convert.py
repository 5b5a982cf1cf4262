"""Moved to modeformer_jax/weights/state_dict.py; importable from here while callers move."""
from modeformer_jax.weights.state_dict import from_torch, to_torch  # noqa: F401
