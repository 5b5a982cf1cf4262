"""modeformer-jax: ModEFormer audio-video synchronisation in JAX (Flax NNX)."""

__version__ = "0.1.0"
