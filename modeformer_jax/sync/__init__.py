"""`modeformer sync`: audio-video offset detection on any video, with syncnet_python-compatible numbers.

detect (one file: prepare without the model, score with it), syncnet_metrics (the formulas), batch (many
files, decode in worker processes), correct (a copy with the audio shifted into sync), plot (PNG report).
Nothing here imports jax at module level: decode workers stay light.
"""
