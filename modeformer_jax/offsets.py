"""The AV offset and its sign, one convention for the whole package (SPEC section 6).

AV offset > 0 means the audio LEADS the video: the sound of video frame i is at audio frame i - offset (it is
heard before it is seen); < 0, the audio lags. 1 frame = 40 ms at 25 fps. Scores are laid out by d, the shift
of the audio window against the video window (video window f against audio window f + d), so a best d is the
AV offset -d. The generator (data/synth, offset_frames), the protocol's histograms (evaluation/), `modeformer
sync` and its corrected copies (sync/) all report offsets this way.
"""

from __future__ import annotations


def describe_offset(offset: int, fps: float) -> str:
  """The sign in words: 'audio leads video by 120 ms', 'audio lags video by 40 ms' or 'in sync'."""
  if offset == 0:
    return "in sync"
  return f"audio {'leads' if offset > 0 else 'lags'} video by {abs(offset) * 1000 / fps:.0f} ms"
