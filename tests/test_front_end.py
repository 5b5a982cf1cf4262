"""One front end (media/crops.py): `modeformer prep` and `modeformer sync` make the same crops of the same video,
pixel-equal (raw frame storage) or within JPEG error (jpeg), for detected faces and for face-centred frames."""

import os

import numpy as np
import pytest

from modeformer_jax.data import prep, synth
from modeformer_jax.data.prep import PrepOptions
from modeformer_jax.data.records import decode_jpeg_frames, encode_jpeg_frames, open_split
from modeformer_jax.data.synth import wide_shot
from modeformer_jax.media.crops import face_crops
from modeformer_jax.media.decode import read_media
from modeformer_jax.media.encode import write_video
from modeformer_jax.media.preprocess_config import preprocess_config
from modeformer_jax.sync import detect

pytestmark = pytest.mark.integration


def _prepared(src, out, dataset, split, storage):
  summary = prep.prepare(dataset, src, out, [split], options=PrepOptions(dataset, frame_storage=storage),
                         workers=1, progress=False)
  assert summary["status"] == "written", summary
  source = open_split(out, dataset, split)
  return {r["source"]: r for r in (source[i] for i in range(len(source)))}


def test_prep_and_sync_crop_a_detected_face_alike(tmp_path):
  """A small face in a wide shot (the detector's tiles, tracking, the 1.4x framing): prep's stored crops are
  sync's crops, and cropping prep's stored squares again from the decoded video gives them once more."""
  shot = wide_shot.render_wide_shot(5, synth.speaker_style(2, 0), None, 1.6, face_px=40)
  path = tmp_path / "src" / "train" / "spk0" / "clip0.mp4"
  path.parent.mkdir(parents=True)
  write_video(str(path), shot.frames, shot.fps, shot.audio, shot.sample_rate, preset="ultrafast")
  record = _prepared(str(tmp_path / "src"), str(tmp_path / "out"), "folder", "train", "raw")["train/spk0/clip0.mp4"]

  pp = preprocess_config()
  inputs = detect.model_inputs(str(path), pp, max_offset=5)
  speaker = inputs.faces[0]
  assert inputs.valid.all() and speaker.start == 0
  assert record["crops"].shape == speaker.crops.shape == (40, 96, 96, 3)
  np.testing.assert_array_equal(record["crops"], speaker.crops)
  frames = read_media(str(path)).frames[:len(record["crops"])]
  again, squares = face_crops(frames, record["boxes"], pp, centered=True)
  np.testing.assert_array_equal(again, record["crops"])
  np.testing.assert_array_equal(squares, record["boxes"])


@pytest.mark.parametrize("storage", ["raw", "jpeg"])
def test_prep_and_sync_crop_face_centred_frames_alike(tmp_path, storage):
  """LRS2 (frames that are face crops already): prep's crops are `sync --face-centered`'s, exactly with raw
  frames and within JPEG error (quality 90) with JPEG ones."""
  row, = synth.write_dataset(tmp_path / "src", "lrs2", speakers=1, clips_per_speaker=1, seconds=1.4, seed=4,
                             workers=1, progress=False)
  records = _prepared(str(tmp_path / "src"), str(tmp_path / "out"), "lrs2", row["split"], storage)
  (source, record), = records.items()
  inputs = detect.model_inputs(os.path.join(tmp_path, "src", source), preprocess_config(), face_centered=True,
                                max_offset=5)
  expected = inputs.faces[0].crops
  if storage == "jpeg":  # the JPEG error is all that differs: sync's crops through prep's codec are prep's
    expected = decode_jpeg_frames(encode_jpeg_frames(expected, PrepOptions("lrs2").jpeg_quality))
    assert 0 < np.abs(expected.astype(int) - inputs.faces[0].crops).mean() < 3
  np.testing.assert_array_equal(record["crops"], expected)
