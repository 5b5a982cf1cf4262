"""Export a trained model for PyTorch and ONNX Runtime, and load an export back into JAX.

torch_model: the network in plain PyTorch (no JAX needed); convert: JAX trees <-> PyTorch-named tensors;
load: an export folder -> (config, params, batch_stats) for modeformer_jax.inference. This package's
__init__ imports nothing, so `modeformer_jax.export.torch_model` imports without JAX.
"""
