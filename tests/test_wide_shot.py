"""Generated wide shots (data/synth/wide_shot.py, `modeformer synth --shot wide`): a small moving face, a silent second
face, a microphone in front of the jaw, a busy background. Faces are found and tracked on >= 95% of the frames,
and the demo-sized model finds offsets injected into them (slow)."""

import json
import os

import numpy as np
import pytest

from modeformer_jax import cli
from modeformer_jax.data import synth
from modeformer_jax.data.synth import wide_shot
from modeformer_jax.media import faces
from modeformer_jax.media.decode import probe, read_media
from modeformer_jax.media.encode import write_video
from modeformer_jax.media.preprocess_config import preprocess_config
from modeformer_jax.sync import detect

FACE_PX = (24, 30, 38, 48)


def _write(path, shot):
  write_video(path, shot.frames, shot.fps, shot.audio, shot.sample_rate, preset="ultrafast")
  return str(path)


@pytest.mark.unit
def test_wide_shot_is_the_clip_in_a_scene():
  speaker, listener = synth.speaker_style(6, 0), synth.speaker_style(6, 1)
  shot = wide_shot.render_wide_shot(3, speaker, listener, 1.0, offset_frames=2, face_px=30)
  clip = synth.render_clip(3, speaker, 1.0, 2, 160)
  assert shot.frames.shape == (25, wide_shot.HEIGHT, wide_shot.WIDTH, 3)
  np.testing.assert_array_equal(shot.audio, clip.audio)  # the generator's audio, offset included
  np.testing.assert_allclose(np.median(shot.face_boxes[:, 3]), 30, atol=1)
  assert (shot.face_boxes[:, :2] >= 0).all()
  assert (shot.face_boxes[:, 0] + shot.face_boxes[:, 2] <= wide_shot.WIDTH).all()
  moved = np.ptp(shot.face_boxes[:, 0])
  assert moved > 2, moved  # the head moves
  # The listener moves about as the speaker does; the speaker's mouth opens and closes.
  assert np.ptp(shot.listener_boxes[:, 0]) > 2 and np.ptp(shot.mouth_open) > 0.3


@pytest.mark.integration
def test_both_faces_tracked_on_wide_shots(tmp_path):
  """Faces 24-48 px tall in 454x256, after H.264: the speaker and the listener are each one track valid on
  >= 95% of the frames, where they are; sync's model_inputs reports coverage >= 95% and the face's height."""
  pp = preprocess_config()
  for k, face_px in enumerate(FACE_PX):
    shot = wide_shot.render_wide_shot(40 + k, synth.speaker_style(8, k), synth.speaker_style(8, 10 + k), 2.0,
                                      face_px=face_px)
    path = _write(tmp_path / f"wide{face_px}.mp4", shot)
    frames = read_media(path).frames
    track = faces.detect_faces(frames, pp)
    for truth in (shot.face_boxes, shot.listener_boxes):
      centre = truth[:, :2] + truth[:, 2:] / 2
      on_face = [np.mean(t.valid & (np.abs(t.boxes[:, :2] + t.boxes[:, 2:] / 2 - centre).max(axis=1)
                                    < 0.3 * truth[:, 3])) for t in track.tracks]
      assert max(on_face) >= 0.95, (face_px, on_face)
    prepared = detect.model_inputs(path, pp, max_offset=5)
    assert prepared.valid.mean() >= 0.95, (face_px, prepared.valid.mean())
    heights = [np.median(shot.face_boxes[:, 3]), np.median(shot.listener_boxes[:, 3])]
    assert min(abs(prepared.face_px - h) / h for h in heights) < 0.2, (heights, prepared.face_px)


# Offsets -6..7 frames in turn, 10 clips of 4 s per face height (the first 10 of bench/demo_wide_shots.py's 20).
WIDE_OFFSETS = (-6, -3, 0, 2, 4, 7)
# Face height (px; None: the generator's own, drawn from 24..48 px, with a silent second face) -> offsets of
# the 10 that the demo's recipe must find within +-1 frame: one under the fewest that its runs found on these
# clips (BENCHMARKS.md, "Face detectors": at 90, 40, 32, 24 px and drawn 10, 10, 10, 8-10, 9-10 of 10 in two
# runs on 2026-12-02; before the 16 px square joined low_res 10, 9, 9-10, 8-9, 9), as runs spread.
WIDE_HITS = {90: 9, 40: 8, 32: 8, 24: 7, None: 8}


@pytest.mark.integration
@pytest.mark.slow
def test_demo_model_finds_offsets_on_wide_shots(demo_run, tmp_path):
  """Issue 18's target with the demo-sized model (face-centred close-ups, half of them seen through small faces:
  data.augment.low_res): on wide shots of unseen speakers the face is detected, cropped as the model's config
  frames it (configs/tiny.py), and the offset found within +-1 frame, at each face height of WIDE_HITS."""
  from modeformer_jax.inference import load_sync_model

  model = load_sync_model(demo_run)
  found = {}
  for px in WIDE_HITS:
    hits = []
    for k in range(10):
      seed, offset = 300 + 10 * k + int(px or 1), WIDE_OFFSETS[k % len(WIDE_OFFSETS)]
      # A second face only in the generator's own shots: who speaks is tests/test_timeline.py's (dialogues).
      listener = None if px else synth.speaker_style(97, seed)
      shot = wide_shot.render_wide_shot(seed, synth.speaker_style(98, seed), listener, 4.0, offset, face_px=px)
      path = _write(tmp_path / f"wide{px}_{k}.mp4", shot)
      result = detect.score(model, detect.model_inputs(path, model.config.preprocess), 15)
      assert result.face_coverage >= 0.95
      hits.append(abs(result.offset - offset) <= 1)
    found[px] = sum(hits)
    print(f"demo model on wide shots, {px or 'drawn'} px faces: {sum(hits)} of 10 offsets within +-1 frame")
  assert all(found[px] >= need for px, need in WIDE_HITS.items()), found


@pytest.mark.e2e
def test_synth_cli_writes_wide_shots(tmp_path, capsys):
  out = tmp_path / "wide"
  assert cli.main(["synth", "--out", str(out), "--layout", "lrs3", "--shot", "wide", "--speakers", "2",
                   "--clips-per-speaker", "1", "--seconds", "1", "--workers", "1", "--json"]) == 0
  summary = json.loads(capsys.readouterr().out)
  rows = synth.read_manifest(out)
  assert summary["clips"] == len(rows) == 2 and all(r["shot"] == "wide" for r in rows)
  for row in rows:
    info = probe(out / row["path"])
    video = next(s for s in info["streams"] if s["type"] == "video")
    assert (video["width"], video["height"]) == (wide_shot.WIDTH, wide_shot.HEIGHT)
    heights = np.array(row["face_boxes"])[:, 3]
    assert 22 <= np.median(heights) <= 50
    # The LRS3 .txt face table is relative to the wide frame.
    table = faces.read_lrs3_boxes(out / row["path"].replace(".mp4", ".txt"), row["num_frames"], wide_shot.WIDTH,
                                  wide_shot.HEIGHT)
    np.testing.assert_allclose(table, row["face_boxes"], atol=0.6)
  # A rerun resumes: nothing is rendered again.
  written = os.path.getmtime(out / rows[0]["path"])
  assert cli.main(["synth", "--out", str(out), "--layout", "lrs3", "--shot", "wide", "--speakers", "2",
                   "--clips-per-speaker", "1", "--seconds", "1", "--workers", "1"]) == 0
  assert os.path.getmtime(out / rows[0]["path"]) == written


@pytest.mark.e2e
def test_sync_cli_reports_a_small_face(trained_run, tmp_path, capsys):
  """`modeformer sync` on a wide shot: the face is found (BlazeFace), its height reported and flagged as small;
  with --face-detector haar the cascade finds no face that small and says so in one line."""
  shot = wide_shot.render_wide_shot(7, synth.speaker_style(9, 1), None, 2.0, face_px=32)
  path = _write(tmp_path / "wide.mp4", shot)
  assert cli.main(["sync", path, "--checkpoint", trained_run, "--max-offset-frames", "5", "--json"]) == 0
  result = json.loads(capsys.readouterr().out)
  assert result["face_coverage"] >= 0.95 and result["small_face"]
  assert abs(result["face_px"] - 32) < 6, result["face_px"]
  assert cli.main(["sync", path, "--checkpoint", trained_run, "--max-offset-frames", "5"]) == 0
  out = capsys.readouterr().out
  assert "px tall" in out and "crop is mostly upsampled" in out
  assert cli.main(["sync", path, "--checkpoint", trained_run, "--max-offset-frames", "5",
                   "--face-detector", "haar"]) == 1
  errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
  assert len(errors) == 1 and f"{path}: no face found in 454x256 frames" in errors[0], errors


@pytest.mark.integration
def test_prep_reports_a_small_face(tmp_path):
  """`modeformer prep` on a folder of wide shots (boxes from the detector): each clip's face height in the
  report, a warning for faces under preprocess.small_face_px, and the summary line."""
  from modeformer_jax.data import prep

  src = tmp_path / "src"
  (src / "test" / "speaker").mkdir(parents=True)
  shot = wide_shot.render_wide_shot(5, synth.speaker_style(9, 3), None, 1.2, face_px=30)
  _write(src / "test" / "speaker" / "00001.mp4", shot)
  summary = prep.prepare("folder", str(src), str(tmp_path / "out"), ["test"], workers=1, progress=False)
  assert summary["ok"] == 1 and abs(summary["face_px"]["median"] - 30) < 6 and summary["face_px"]["small"] == 1
  assert summary["warnings"] == {"small face": 1}
  assert "face height: median" in prep.format_summary(summary)
