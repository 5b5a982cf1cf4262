"""The training-window store `modeformer prep` writes beside each split's records: what a training example reads,
laid out so that one example costs 5 small frames and a few rows of mel whatever the clip's length (a record
of the TFDS shards is a whole clip: 450 KB for 4 s, read and decompressed whole for one 5-frame window).

DATA_DIR/<dataset>/<version>/windows/<split>/ (records.DATASET_VERSION 2.0.0 on):
  meta.json   storage ("jpeg" or "raw"), crop_size, row_start (the first crop row stored), rows, mel_bins,
              frames, mel_frames
  clips.npy   int64 [R, 4]: first frame, frames, first mel row, mel rows of record i (the TFDS split's order)
  frames.bin  per frame the crop's rows row_start .. crop_size - 1: a baseline JPEG (records' codec), or raw
              uint8 [rows, crop_size, 3]
  offsets.npy int64 [frames + 1] byte offsets of the frames in frames.bin
  mel.bin     float16 [mel_frames, mel_bins] every record's normalised log-mel, time-major

The rows are the model's (preprocess.mouth_row_start on: ModEFormer's lower half) and MARGIN rows above them
for the crop jitter of training (data/augment.py). Files are read through memory maps, so grain's worker
processes share the page cache and a window is a few slices.
"""

from __future__ import annotations

import json
import mmap
import os

import numpy as np

from modeformer_jax.data.records import decode_jpeg_frames, encode_jpeg_frames
from modeformer_jax.data.windows import WindowSpec
from modeformer_jax.media.crops import mouth_rows
from modeformer_jax.media.logmel import mel_window_start

# Rows stored above the model's first row: crop jitter of up to this many pixels reads from the store.
MARGIN = 8
STORE_DIR = "windows"


def stored_rows(pp) -> tuple[int, int]:
  """(first crop row stored, margin rows above the model's) for the preprocess config pp."""
  margin = min(MARGIN, pp.mouth_row_start)
  return pp.mouth_row_start - margin, margin


def window_frames(crops: np.ndarray, pp, storage: str, quality: int) -> np.ndarray:
  """A clip's crops uint8 [T, S, S, 3] -> what the store keeps of them: object [T] of JPEGs or uint8 [T, rows,
  S, 3] (prep's per-clip stage makes them from the crops before they are JPEG-coded, so no second generation)."""
  row_start, margin = stored_rows(pp)
  rows = np.ascontiguousarray(mouth_rows(crops, pp.mouth_row_start, margin))
  return encode_jpeg_frames(rows, quality) if storage == "jpeg" else rows


class StoreWriter:
  """Appends clips (in the records' order) to a split's store in `folder`; close() writes the index."""

  def __init__(self, folder: str, storage: str, pp):
    os.makedirs(folder, exist_ok=True)
    self.folder, self.storage = folder, storage
    self.row_start = stored_rows(pp)[0]
    self.crop_size, self.mel_bins = pp.crop_size, pp.n_mels
    self._frames = open(os.path.join(folder, "frames.bin"), "wb")
    self._mel = open(os.path.join(folder, "mel.bin"), "wb")
    self._offsets, self._clips = [0], []
    self._mel_rows = 0

  def add(self, frames: np.ndarray, mel: np.ndarray) -> None:
    """frames: window_frames' output for one clip; mel float16 [M, mel_bins]."""
    self._clips.append((len(self._offsets) - 1, len(frames), self._mel_rows, len(mel)))
    for frame in frames:
      data = frame if self.storage == "jpeg" else np.ascontiguousarray(frame).tobytes()
      self._frames.write(data)
      self._offsets.append(self._offsets[-1] + len(data))
    self._mel.write(np.ascontiguousarray(mel, np.float16).tobytes())
    self._mel_rows += len(mel)

  def close(self) -> None:
    self._frames.close()
    self._mel.close()
    np.save(os.path.join(self.folder, "offsets.npy"), np.asarray(self._offsets, np.int64))
    np.save(os.path.join(self.folder, "clips.npy"), np.asarray(self._clips, np.int64).reshape(-1, 4))
    meta = {"storage": self.storage, "crop_size": self.crop_size, "row_start": self.row_start,
            "rows": self.crop_size - self.row_start, "mel_bins": self.mel_bins, "frames": len(self._offsets) - 1,
            "mel_frames": self._mel_rows}
    with open(os.path.join(self.folder, "meta.json"), "w", encoding="utf-8") as f:
      json.dump(meta, f, indent=1)


def store_dir(dataset_path: str, split: str) -> str:
  return os.path.join(dataset_path, STORE_DIR, split)


def read_meta(dataset_path: str, split: str) -> dict | None:
  try:
    with open(os.path.join(store_dir(dataset_path, split), "meta.json"), encoding="utf-8") as f:
      return json.load(f)
  except OSError:
    return None


def serves(meta: dict, pp, margin: int) -> bool:
  """Whether a store (its meta) holds what a config reads: its crops' rows mouth_row_start - margin on, and the
  log-mel (not SyncNet's MFCCs, which come from the raw audio of whole records)."""
  return (pp.get("audio_features", "logmel") == "logmel" and meta["crop_size"] == pp.crop_size
          and meta["mel_bins"] == pp.n_mels and meta["row_start"] <= pp.mouth_row_start - margin)


class StoreWindows:
  """A split's windows read from its store (data.windows.WindowReader); picklable (files reopen lazily)."""

  def __init__(self, dataset_path: str, split: str, spec: WindowSpec, margin: int):
    self.folder = store_dir(dataset_path, split)
    self.meta = read_meta(dataset_path, split)
    self.spec, self.margin = spec, margin
    # The stored rows the model reads: the margin rows, then the mouth.
    self.first_row = spec.mouth_row_start - margin - self.meta["row_start"]
    self.clips = np.load(os.path.join(self.folder, "clips.npy"))
    self._files = None

  def __len__(self) -> int:
    return len(self.clips)

  def __getstate__(self) -> dict:
    return {**self.__dict__, "_files": None}

  def files(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames.bin as uint8, byte offsets, mel [M, F]) as memory maps."""
    if self._files is None:
      frames = np.frombuffer(_mapped(os.path.join(self.folder, "frames.bin")), np.uint8)
      offsets = np.load(os.path.join(self.folder, "offsets.npy"))
      mel = np.frombuffer(_mapped(os.path.join(self.folder, "mel.bin")), np.float16).reshape(-1, self.meta["mel_bins"])
      self._files = frames, offsets, mel
    return self._files

  def open(self, records: np.ndarray) -> "_OpenStore":
    return _OpenStore(self, self.clips[records])


def _mapped(path: str) -> mmap.mmap:
  """The file read-only in memory (plain arrays over it slice faster than np.memmap's subclass)."""
  with open(path, "rb") as f:
    return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class _OpenStore:

  def __init__(self, store: StoreWindows, clips: np.ndarray):
    self.store, self.clips = store, clips
    self.num_frames, self.num_mel = clips[:, 1], clips[:, 3]

  def video(self, rows: np.ndarray, starts: np.ndarray, spec: WindowSpec) -> np.ndarray:
    store = self.store
    data, offsets, _ = store.files()
    index = (self.clips[rows, 0] + starts)[:, None] + np.arange(spec.video_frames)  # [m, 5] frames of the split
    meta = store.meta
    if meta["storage"] == "jpeg":
      frames = decode_jpeg_frames([data[offsets[i]:offsets[i + 1]] for i in index.ravel()])
    else:
      frames = data[:meta["frames"] * meta["rows"] * meta["crop_size"] * 3].reshape(
          meta["frames"], meta["rows"], meta["crop_size"], 3)[index.ravel()]
    frames = frames[:, store.first_row:] if store.first_row else frames
    return frames.reshape(*index.shape, *frames.shape[1:])

  def audio(self, rows: np.ndarray, frames: np.ndarray, spec: WindowSpec) -> np.ndarray:
    start = self.clips[rows, 2][:, None] + mel_window_start(frames, spec)  # [m, K] rows of the split's mel
    return self.store.files()[2][start[..., None] + np.arange(spec.mel_frames)]  # [m, K, T, F] float16
