"""The generator's random streams: every draw comes from a SeedSequence keyed by (seed, stream, ...), so each part
of a clip draws independently of the others, and streams indexed by absolute time give a shifted clip the same
content as the in-sync one."""

from __future__ import annotations

import numpy as np

# Streams (the second SeedSequence word).
FORWARD, BACKWARD, CLIP_AUDIO, CLIP_VIDEO, CONTROL_NOISE, FRICATION_NOISE, ROOM_NOISE = range(7)
BLOCK_BASE = 1 << 20  # makes negative time-block indices valid SeedSequence entropy


def generator(*words: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))
