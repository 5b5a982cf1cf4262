"""`modeformer sync`: audio-video offset detection on any video, with syncnet_python-compatible numbers.

detect (one file: model_inputs without the model, score with it), tracks (faces joined over the file),
timeline (offsets and the speaking face per segment), trend (constant / drift / step), syncnet_metrics (the
formulas), batch (many files, decode in worker processes), correct (a copy with the audio shifted into sync or
resampled), plot (PNG report).
Nothing here imports jax at module level: decode workers stay light.
"""
