"""The TFDS builders that write prepared clips as ArrayRecord shards (one builder per dataset layout).

Only Tensor, Scalar and Text features are used: they encode and decode without TensorFlow (TFDS's Video and
Sequence(Image) features need it). Arrays are stored as raw bytes (`encoding="bytes"`) so integers keep their
width instead of being widened to int64 by the tf.train.Example encoding; ArrayRecord then compresses each
record (its default compression; TFDS sets no option).

Features of one record (T video frames at 25 fps, S audio samples at 16 kHz, M = 1 + S // 200 mel frames):
  id               text     "<speaker>/<clip>", unique within a split
  speaker, clip    text     LRS2: show id and clip number; LRS3/folder: speaker folder and file stem
  split            text     the split the clip was prepared for
  source           text     video path relative to --src
  transcript       text     the "Text:" line of the side .txt ("" when none)
  num_frames       int32    T
  crops            uint8    [T, 96, 96, 3] RGB face crops            (--frame-storage raw)
  crops_jpeg       bytes    [T] one baseline JPEG per frame, RGB     (--frame-storage jpeg)
  audio            int16    [S] mono PCM at 16 kHz, S = T * 640
  mel              float16  [M, 80] normalised log-mel, time-major (SPEC section 1)
  boxes            float32  [T, 4] the square cropped from each frame, source pixels (x, y, side, side); may
                            reach outside the frame (edge pixels are repeated there)
  av_diff_seconds  float32  audio minus video duration of the source file, before both were cut to T frames

The builders are not registered with TFDS (a dataset's features depend on its frame storage, which only the
files know), so `tfds.data_source("lrs2", data_dir=OUT)` reads the features from the dataset's own
features.json, and so does modeformer_jax.data.records.
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterator, Mapping

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from modeformer_jax.data.records import DATASET_VERSION

FRAME_STORAGES = ("raw", "jpeg")

ExampleFn = Callable[[], Iterator[tuple[str, dict]]]


def features(frame_storage: str, crop_size: int = 96, mel_bins: int = 80) -> tfds.features.FeaturesDict:
  """The record features; `frame_storage` picks `crops` (raw uint8) or `crops_jpeg` (per-frame JPEG)."""
  if frame_storage == "raw":
    frames = {"crops": tfds.features.Tensor(shape=(None, crop_size, crop_size, 3), dtype=np.uint8,
                                            encoding="bytes", doc="Face crops, RGB uint8 [T, H, W, 3].")}
  elif frame_storage == "jpeg":
    frames = {"crops_jpeg": tfds.features.Tensor(shape=(None,), dtype=np.object_,
                                                 doc="Face crops, one RGB JPEG per frame [T].")}
  else:
    raise ValueError(f"frame_storage {frame_storage!r} is not one of {FRAME_STORAGES}")
  array = lambda shape, dtype, doc: tfds.features.Tensor(shape=shape, dtype=dtype, encoding="bytes", doc=doc)
  return tfds.features.FeaturesDict({
      "id": tfds.features.Text(doc="<speaker>/<clip>, unique within a split."),
      "speaker": tfds.features.Text(doc="LRS2 show id, LRS3 speaker id, or speaker folder."),
      "clip": tfds.features.Text(doc="Clip name (file stem)."),
      "split": tfds.features.Text(doc="Split the clip was prepared for."),
      "source": tfds.features.Text(doc="Video path relative to the source folder."),
      "transcript": tfds.features.Text(doc="Transcript from the side .txt, empty when none."),
      "num_frames": tfds.features.Scalar(dtype=np.int32, doc="T, video frames at 25 fps."),
      **frames,
      "audio": array((None,), np.int16, "Mono 16 kHz PCM [S], S = T * 640."),
      "mel": array((None, mel_bins), np.float16, "Normalised log-mel [M, 80], M = 1 + S // 200."),
      "boxes": array((None, 4), np.float32, "Cropped square per frame (x, y, side, side), source pixels [T, 4]."),
      "av_diff_seconds": tfds.features.Scalar(dtype=np.float32,
                                              doc="Audio minus video duration of the source file."),
  })


class PrepBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes the examples that `examples[split]()` yields; one TFDS split per key.

  Records keep the order the generators yield them in (no TFDS shuffle): readers are random access and
  shuffle indices, and a deterministic order lets two runs (local and Beam) be compared record by record.
  """

  VERSION = tfds.core.Version(DATASET_VERSION)
  RELEASE_NOTES = {DATASET_VERSION: "Face crops, audio, log-mel and boxes per clip (modeformer prep)."}

  def __init__(self, *, frame_storage: str, examples: Mapping[str, ExampleFn], crop_size: int = 96,
               mel_bins: int = 80, **kwargs):
    self._frame_storage = frame_storage
    self._examples = dict(examples)
    self._crop_size = crop_size
    self._mel_bins = mel_bins
    super().__init__(file_format="array_record", **kwargs)

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # TFDS's own lookup imports the `importlib_resources` backport for any builder inside a package, and TFDS
    # does not depend on it; the file path is all it needs (to look for a checksums file beside it).
    return epath.Path(inspect.getfile(cls))

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"{self.name.upper()} clips prepared by `modeformer prep`: 96x96 RGB face crops at 25 fps, "
        "16 kHz mono audio and its log-mel (see modeformer_jax/data/tfds_builder.py for the features).",
        features=features(self._frame_storage, self._crop_size, self._mel_bins),
        disable_shuffling=True,
        homepage="https://arxiv.org/abs/2303.11551",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Sources are local files listed by modeformer_jax.data.lrs_layout.
    return {split: self._generate_examples(split) for split in self._examples}

  def _generate_examples(self, split: str) -> Iterator[tuple[str, dict]]:
    yield from self._examples[split]()


class Lrs2(PrepBuilder, skip_registration=True):
  name = "lrs2"


class Lrs3(PrepBuilder, skip_registration=True):
  name = "lrs3"


class Folder(PrepBuilder, skip_registration=True):
  name = "folder"


BUILDERS: dict[str, type[PrepBuilder]] = {b.name: b for b in (Lrs2, Lrs3, Folder)}
