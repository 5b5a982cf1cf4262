"""Reading the datasets `modeformer prep` writes: a picklable random-access source per split.

`open_split(OUT, "lrs2", "train")` returns a RecordSource (grain's RandomAccessDataSource protocol: __len__,
__getitem__) whose records are dicts of numpy arrays and str, with `crops` decoded to uint8 [T, 96, 96, 3]
whichever frame storage (raw or JPEG) the dataset was prepared with. The JPEG codec lives here too, so the
writer (modeformer_jax.data.prep) and the reader cannot disagree on channel order or format.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import cv2
import numpy as np

from modeformer_jax.errors import UserError

# The TFDS version of the prepared datasets (part of their path); bump when features, their meaning or the files
# beside them change. 2.0.0: the training-window store (data/window_store.py) beside the records.
DATASET_VERSION = "2.0.0"
TEXT_FEATURES = ("id", "speaker", "clip", "split", "source", "transcript")


def encode_jpeg_frames(frames: np.ndarray, quality: int) -> np.ndarray:
  """uint8 [T, H, W, 3] RGB -> object [T] of baseline JPEG bytes (4:2:0, the libjpeg default)."""
  params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
  out = np.empty(len(frames), dtype=object)
  for i, frame in enumerate(frames):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), params)  # OpenCV wants BGR.
    if not ok:
      raise ValueError(f"JPEG encoding failed for frame {i} of shape {frame.shape}")
    out[i] = buf.tobytes()
  return out


def decode_jpeg_frames(jpegs: Sequence[bytes | np.ndarray]) -> np.ndarray:
  """Sequence of T JPEGs (bytes or uint8 arrays) of one size -> uint8 [T, H, W, 3] RGB."""
  out = None
  for i, jpeg in enumerate(jpegs):
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR_RGB)
    if frame is None:
      raise ValueError("undecodable JPEG frame in record")
    if out is None:
      out = np.empty((len(jpegs), *frame.shape), np.uint8)
    out[i] = frame
  return np.zeros((0, 0, 0, 3), np.uint8) if out is None else out


class JpegFrames:
  """Per-frame JPEGs that decode on slicing: a training window decodes 5 frames, not the whole clip."""

  def __init__(self, jpegs: np.ndarray):
    self.jpegs = jpegs

  def __len__(self) -> int:
    return len(self.jpegs)

  def __getitem__(self, index: slice) -> np.ndarray:
    return decode_jpeg_frames(self.jpegs[index])


def dataset_dir(data_dir: str, dataset: str) -> str:
  """Where `modeformer prep` puts a dataset: DATA_DIR/<dataset>/<version> (TFDS layout)."""
  return os.path.join(data_dir, dataset, DATASET_VERSION)


def check_prepared(path: str) -> None:
  """UserError unless `path` (a dataset_dir) holds a dataset of this version; one line that says what to do,
  also when only an older version was prepared there."""
  if os.path.isfile(os.path.join(path, "dataset_info.json")):
    return
  parent = os.path.dirname(path)
  older = sorted(v for v in (os.listdir(parent) if os.path.isdir(parent) else [])
                 if os.path.isfile(os.path.join(parent, v, "dataset_info.json")))
  if older:
    raise UserError(f"{parent}: prepared by an older version (dataset {', '.join(older)}); this version reads "
                    f"{DATASET_VERSION} (it adds the training-window store): run `modeformer prep` again")
  raise UserError(f"{path}: no prepared dataset here (run `modeformer prep` first)")


class RecordSource:
  """Random access to one split; picklable (workers reopen the shards lazily).

  record = source[i] holds: id, speaker, clip, split, source, transcript (str); num_frames (int);
  crops uint8 [T, 96, 96, 3] (JpegFrames with lazy_frames); audio int16 [S]; mel float16 [M, 80]; boxes float32 [T, 4];
  av_diff_seconds (float). See modeformer_jax/data/tfds_builder.py.
  """

  def __init__(self, data_dir: str, dataset: str, split: str, lazy_frames: bool = False):
    self.path = dataset_dir(data_dir, dataset)
    self.split = split
    self.lazy_frames = lazy_frames
    self._source = None
    builder = self._builder()
    if split not in builder.info.splits:
      raise UserError(f"{self.path}: no split '{split}' in the {dataset} dataset "
                      f"(it has: {', '.join(sorted(builder.info.splits)) or 'none'})")
    self.frame_storage = "jpeg" if "crops_jpeg" in builder.info.features else "raw"
    self._len = builder.info.splits[split].num_examples

  def _builder(self):
    import tensorflow_datasets as tfds  # Heavy; keep `import records` cheap for worker start-up.
    check_prepared(self.path)
    return tfds.builder_from_directory(self.path)

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self.load(index)

  def load(self, index: int, frames: slice | None = None) -> dict[str, Any]:
    """Record `index`; `frames` decodes only those crops (and boxes), e.g. a training window."""
    if self._source is None:
      self._source = self._builder().as_data_source(split=self.split)
    record = dict(self._source[index])
    for key in TEXT_FEATURES:
      record[key] = record[key].decode("utf-8")
    frames = frames if frames is not None else slice(None)
    if "crops_jpeg" in record and self.lazy_frames:
      record["crops"] = JpegFrames(record.pop("crops_jpeg")[frames])
    elif "crops_jpeg" in record:
      record["crops"] = decode_jpeg_frames(record.pop("crops_jpeg")[frames])
    else:
      record["crops"] = record["crops"][frames]
    record["boxes"] = record["boxes"][frames]
    return record

  def __getstate__(self) -> dict:
    return {**self.__dict__, "_source": None}

  def __repr__(self) -> str:
    return f"RecordSource({self.path!r}, split={self.split!r}, len={self._len}, frames={self.frame_storage})"


class JoinedSplits:
  """Several splits' records as one random-access sequence (picklable when its parts are)."""

  def __init__(self, parts: list[Sequence[dict]]):
    self.parts = parts
    self.path = getattr(parts[0], "path", "")
    self._ends = np.cumsum([len(p) for p in parts])

  def __len__(self) -> int:
    return int(self._ends[-1])

  def __getitem__(self, index: int) -> dict[str, Any]:
    if not 0 <= index < len(self):
      raise IndexError(index)
    part = int(np.searchsorted(self._ends, index, side="right"))
    return self.parts[part][index - (int(self._ends[part - 1]) if part else 0)]


def open_split(data_dir: str, dataset: str, split: str, lazy_frames: bool = False) -> RecordSource:
  """The records of `split` of the dataset prepared under `data_dir` (the --out of `modeformer prep`).

  lazy_frames: `crops` of JPEG datasets come as JpegFrames, decoded only where sliced (training windows).
  """
  return RecordSource(data_dir, dataset, split, lazy_frames)
