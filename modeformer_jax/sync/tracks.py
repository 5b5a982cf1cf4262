"""Every face of a file over its whole length, from the face tracks found chunk by chunk.

`detect.model_inputs` decodes a file in chunks and media.faces tracks faces within each chunk. Here the tracks of
consecutive chunks are joined into faces over the whole file (a face continues the one whose last box it
overlaps, as the tracker links detections), each cropped only where it is on screen. The model then scores
every face against the audio, so the face that speaks can be told from the ones that listen segment by
segment (sync.timeline). How much each mouth moves (video only) ranks the faces, so that the likely speakers
are kept when there are more faces than the model should score.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from modeformer_jax.media import faces
from modeformer_jax.media.crops import faces_crops
from modeformer_jax.media.preprocess_config import with_face_defaults

# A chunk's track is kept as a face when it is on screen at least this share as often as the chunk's most-seen
# track (a detection flickering on a poster is not a face to score).
_MIN_SHARE = 0.5


@dataclasses.dataclass
class FaceCrops:
  """One face over the part of the file where it was tracked: frames start .. start + n - 1 (at the model's
  frame rate)."""
  start: int
  crops: np.ndarray  # uint8 [n, crop, crop, 3]
  valid: np.ndarray  # bool [n] the face was seen here (or in a short, interpolated gap)
  boxes: np.ndarray  # float32 [n, 4] (x, y, w, h) in source pixels, NaN where not valid
  mouth_motion: np.ndarray  # float32 [n] mouth-half change from the frame before beyond the upper half's; NaN: unknown

  @property
  def stop(self) -> int:
    return self.start + len(self.crops)


def whole_frame(crops: np.ndarray, box: np.ndarray) -> FaceCrops:
  """The only 'face' of a file scored on the whole frame (face-centred video): crops [T, c, c, 3]."""
  count = len(crops)
  return FaceCrops(start=0, crops=crops, valid=np.ones(count, bool),
                   boxes=np.tile(np.asarray(box, np.float32), (count, 1)),
                   mouth_motion=np.full(count, np.nan, np.float32))




def mouth_motion(crops: np.ndarray, valid: np.ndarray, pp: ml_collections.ConfigDict) -> np.ndarray:
  """How much the mouth half changes from the previous frame beyond what the upper half changes: float32 [T]
  (NaN on the first frame and where either frame lacks the face). Head motion, lighting and compression noise
  move both halves; speech moves the mouth (and so does a silent listener's chewing or grimacing: this ranks
  faces, the audio decides who speaks)."""
  out = np.full(len(crops), np.nan, np.float32)
  pairs = np.flatnonzero(valid[1:] & valid[:-1]) + 1
  half = pp.mouth_row_start or crops.shape[1] // 2  # whole-face models (SyncNet) start at row 0
  for i in pairs:
    change = np.abs(crops[i].astype(np.int16) - crops[i - 1])
    out[i] = change[half:].mean() - change[:half].mean()
  return out


class Stitcher:
  """Collects the faces of consecutive chunks (`add`) and returns the faces of the whole file (`faces`)."""

  def __init__(self, pp: ml_collections.ConfigDict):
    self.pp = with_face_defaults(pp)
    self._pieces: list[list[FaceCrops]] = []  # per face, its chunks' parts in order
    self._frames = 0
    self.max_tracks = 0  # the most tracks found in one chunk

  def add(self, frames: np.ndarray, track: faces.FaceTrack) -> None:
    """The next chunk: frames uint8 [n, H, W, 3] (or a media.frames.FrameChunk) and media.faces.detect_faces'
    result on them."""
    self.max_tracks = max(self.max_tracks, track.num_tracks)
    candidates = [t for t in track.tracks if t.valid.any()]
    most = max((t.coverage for t in candidates), default=0.0)
    candidates = [t for t in candidates if t.coverage >= _MIN_SHARE * most]
    ends = [self._last_box(pieces) for pieces in self._pieces]
    firsts = [t.boxes[np.argmax(t.valid)] for t in candidates]
    matches = self._match(ends, firsts)
    cropped = faces_crops(frames, [t.boxes for t in candidates], self.pp)  # one pass over the frames for all faces
    for k, (t, (crops, _)) in enumerate(zip(candidates, cropped)):
      part = FaceCrops(start=self._frames, crops=crops, valid=t.valid.copy(),
                       boxes=np.where(t.valid[:, None], t.boxes, np.nan).astype(np.float32),
                       mouth_motion=mouth_motion(crops, t.valid, self.pp))
      if k in matches:
        self._pieces[matches[k]].append(part)
      else:
        self._pieces.append([part])
    self._frames += len(frames)

  @staticmethod
  def _last_box(pieces: list[FaceCrops]) -> np.ndarray | None:
    last = pieces[-1]
    seen = np.flatnonzero(last.valid)
    return last.boxes[seen[-1]] if len(seen) else None

  def _match(self, ends: list[np.ndarray | None], firsts: list[np.ndarray]) -> dict[int, int]:
    """Candidate index -> face index: greedy by overlap of the boxes scaled as the tracker scales them."""
    known = [i for i, box in enumerate(ends) if box is not None]
    if not known or not firsts:
      return {}
    scale = self.pp.track_box_scale
    iou = faces.scaled_iou(np.stack([ends[i] for i in known]), np.stack(firsts), scale)  # [faces, candidates]
    matches, used = {}, set()
    for fi, ci in zip(*np.unravel_index(np.argsort(-iou, axis=None), iou.shape)):
      if iou[fi, ci] < self.pp.track_iou:
        break
      if ci not in matches and fi not in used:
        matches[int(ci)] = known[fi]
        used.add(fi)
    return matches

  def faces(self, num_frames: int) -> list[FaceCrops]:
    """The faces over frames 0 .. num_frames - 1, the one whose mouth moves most first (the video-only guess
    at the speaker; ties keep the detector's order: largest and longest first). Empties the stitcher."""
    out = []
    for pieces in self._pieces:
      start = pieces[0].start
      stop = min(pieces[-1].stop, num_frames)
      if stop <= start:
        continue
      count = stop - start
      joined = FaceCrops(start=start, crops=np.zeros((count, *pieces[0].crops.shape[1:]), np.uint8),
                         valid=np.zeros(count, bool), boxes=np.full((count, 4), np.nan, np.float32),
                         mouth_motion=np.full(count, np.nan, np.float32))
      while pieces:  # each part released once copied: a face is held once plus one chunk
        part = pieces.pop(0)
        lo, hi = part.start - start, min(part.stop, stop) - start
        if hi <= lo:
          continue
        for name in ("crops", "valid", "boxes", "mouth_motion"):
          getattr(joined, name)[lo:hi] = getattr(part, name)[:hi - lo]
      out.append(joined)
    self._pieces = []
    motion = [float(np.nanmean(f.mouth_motion)) if np.isfinite(f.mouth_motion).any() else -np.inf for f in out]
    order = sorted(range(len(out)), key=lambda i: -motion[i])
    return [out[i] for i in order]
