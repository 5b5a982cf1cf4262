"""Export a trained model for PyTorch and ONNX Runtime (`modeformer export`), and import syncnet_python's weights
(`modeformer import-syncnet`).

write: the export folder (weights, config.json, README, the PyTorch module, ONNX); parity: the check against
JAX every export passes; onnx_export: the encoders as ONNX graphs; torch_model: the network in plain PyTorch
(no JAX needed); syncnet_weights: syncnet_python's published weights -> a model folder. Reading an export
back is modeformer_jax.weights's. This package's __init__ imports nothing, so
`modeformer_jax.export.torch_model` imports without JAX.
"""
