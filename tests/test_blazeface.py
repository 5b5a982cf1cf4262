"""BlazeFace in JAX: equal to MediaPipe's .tflite run by LiteRT, MediaPipe's post-processing, tiles for small faces."""

import os

import numpy as np
import pytest

from modeformer_jax.data import synth
from modeformer_jax.errors import UserError
from modeformer_jax.media import blazeface, face_search, faces
from modeformer_jax.media.preprocess_config import preprocess_config, with_face_defaults


def _faces(size: int, count: int = 4) -> np.ndarray:
  """Generated faces of several speakers at LRS3 framing: uint8 [count, size, size, 3]."""
  return np.concatenate([synth.render_clip(s, synth.speaker_style(4, s), 0.04, size=size, face_scale=0.8).frames
                         for s in range(count)])


@pytest.mark.unit
@pytest.mark.parametrize("name", ["short", "full"])
def test_network_equals_the_tflite_model(name):
  """Our graph run in JAX against what LiteRT computed from MediaPipe's .tflite on a generated face (recorded
  by tools/convert_blazeface.py --reference): scores and decoded boxes of 96 anchors agree to 1e-4."""
  detector = blazeface.BlazeFace(name)
  with np.load(os.path.join(os.path.dirname(__file__), "data", "blazeface_reference.npz")) as f:
    reference = {k.split("/")[1]: f[k] for k in f.files if k.startswith(blazeface.MODELS[name] + "/")}
  boxes, scores = detector.predict(reference["image"][None])
  anchors = reference["anchors"]
  points = reference["regressors"].reshape(-1, 8, 2) / detector.input_size
  points[:, 0] += detector.anchors[anchors]
  points[:, 2:] += detector.anchors[anchors][:, None]
  expected_scores = 1 / (1 + np.exp(-np.clip(reference["classificators"], -100, 100)))
  np.testing.assert_allclose(scores[0, anchors], expected_scores, atol=1e-4)
  np.testing.assert_allclose(boxes[0, anchors], points.reshape(-1, 16), atol=1e-4)
  assert expected_scores.max() > 0.7  # the face was found, so the boxes compared are real detections
  # The same image among others in a batch gives the same numbers.
  _, batch_scores = detector.predict(np.stack([_faces(detector.input_size, 2)[1], reference["image"]]))
  np.testing.assert_allclose(batch_scores[1], scores[0], atol=1e-6)


@pytest.mark.integration
def test_a_face_is_found_alike_in_a_smaller_window():
  """The full-range network on a 128-px window that a face fills 0.3 of (face_search's windows around known
  faces) finds it as on a 192-px window (MediaPipe's input) that it fills 0.2 of, the face being as many pixels
  tall in both: the same box within 3% of its height, the same score within 0.05. Sizes must be multiples of 32."""
  from modeformer_jax.data.synth.wide_shot import render_wide_shot

  detector = blazeface.model("full")
  shot = render_wide_shot(5, synth.speaker_style(3, 1), None, 0.4, face_px=40)
  for i in range(0, len(shot.frames), 3):
    x, y, w, h = shot.face_boxes[i]
    found = []
    for share, size in ((0.2, 192), (0.3, 128)):
      side = h / share
      window = face_search.Window(x + w / 2 - side / 2, y + h / 2 - side / 2, side, size)
      boxes, scores = detector.predict(face_search._window_image(shot.frames[i], window)[None])
      best = np.argmax(scores[0])
      found.append((boxes[0, best, :4] * side + [window.x0, window.y0, 0, 0], scores[0, best]))
    (box192, score192), (box128, score128) = found
    assert score192 > 0.5 and abs(score128 - score192) < 0.05, (i, score192, score128)
    np.testing.assert_allclose(box128, box192, atol=0.03 * box192[3])
  with pytest.raises(ValueError, match="multiple of 32"):
    detector.predict(np.zeros((1, 100, 100, 3), np.uint8))


@pytest.mark.unit
def test_anchors_follow_mediapipe():
  short, full = blazeface.BlazeFace("short").anchors, blazeface.BlazeFace("full").anchors
  assert short.shape == (896, 2) and full.shape == (2304, 2)
  # short: 16x16 cells x 2 anchors, then 8x8 cells x 6 (three stride-16 layers of 2)
  np.testing.assert_allclose(short[:2], [[1 / 32, 1 / 32]] * 2)
  np.testing.assert_allclose(short[512:518], [[1 / 16, 1 / 16]] * 6)
  np.testing.assert_allclose(full[[0, 1, 48, -1]], [[1 / 96, 1 / 96], [3 / 96, 1 / 96], [1 / 96, 3 / 96],
                                                     [95 / 96, 95 / 96]])


@pytest.mark.unit
def test_weighted_nms_averages_overlapping_boxes():
  boxes = np.zeros((4, 16), np.float32)
  boxes[:, :4] = [[10, 10, 4, 4], [11, 10, 4, 4], [30, 30, 4, 4], [10.5, 10, 4, 4]]
  kept, scores = blazeface.weighted_nms(boxes, np.array([0.9, 0.6, 0.8, 0.5]), 0.3)
  assert kept.shape == (2, 16) and scores.tolist() == pytest.approx([0.9, 0.8])
  # The first is the score-weighted mean of the three overlapping boxes, with the best score.
  assert kept[0, 0] == pytest.approx((10 * 0.9 + 11 * 0.6 + 10.5 * 0.5) / 2.0)
  assert kept[1, :4].tolist() == [30, 30, 4, 4]


@pytest.mark.integration
def test_windows_find_every_face_size():
  """Any face from the smallest on, anywhere in the frame, lies wholly inside a window whose model sees it
  at least at its smallest reliable size and at most at the tile overlap's limit, or the whole-frame window."""
  fraction, overlap, smallest = blazeface.MIN_FACE_FRACTION["full"], 0.25, 16.0
  for height, width in ((256, 454), (1080, 1920), (160, 160)):
    wins = face_search.windows(height, width, smallest, fraction, overlap, 192)
    assert wins[-1].side == max(height, width)  # the whole frame, last
    rng = np.random.default_rng(0)
    for _ in range(300):
      face = rng.uniform(smallest, min(height, width) / 2)
      x, y = rng.uniform(0, width - face), rng.uniform(0, height - face)
      ok = [x0 - 1e-6 <= x and x + face <= x0 + side + 1e-6 and y0 - 1e-6 <= y and y + face <= y0 + side + 1e-6
            and face >= fraction * side and (face <= overlap * side or side == max(height, width))
            for x0, y0, side, _ in wins]
      assert any(ok), (height, width, face, x, y)
  assert len(face_search.windows(256, 454, smallest, fraction, overlap, 192)) == 7


@pytest.mark.integration
def test_small_face_in_a_wide_frame_is_found():
  """A 24-px face in a 454x256 frame (one pass at 192 px would see it 10 px tall): found where it is, framed
  as the Haar cascade frames faces (centre within 0.2 face heights, height within 25%); the silent second
  face too. Tracking fills the odd frame missed (tests/test_wide_shot.py: coverage)."""
  from modeformer_jax.data.synth.wide_shot import render_wide_shot

  shot = render_wide_shot(1, synth.speaker_style(3, 1), synth.speaker_style(3, 2), 0.4, face_px=24)
  found = face_search.detect_frames(shot.frames, preprocess_config())
  hits = 0
  for frame_boxes, speaker, listener in zip(found, shot.face_boxes, shot.listener_boxes):
    assert len(frame_boxes) <= 2
    hits += _hit(frame_boxes, speaker) + _hit(frame_boxes, listener)
  assert hits >= 0.75 * 2 * len(found), hits


@pytest.mark.integration
def test_clutter_beside_a_small_face_is_dropped():
  """The windows zoomed around a 24 px face (a generated wide shot, a microphone in front of the jaw) show 6-8 px
  "faces" no tile looks for: boxes under 0.75 of min_face_px are dropped, and the face is still found on every
  detection frame."""
  from modeformer_jax.data.synth.wide_shot import render_wide_shot

  cfg = preprocess_config()
  shot = render_wide_shot(424, synth.speaker_style(98, 424), None, 4.0, 4, face_px=24)
  found = face_search.detect_frames(shot.frames[50:85], cfg, list(range(0, 35, 5)))
  assert all((boxes[:, 3] >= 0.75 * cfg.min_face_px).all() for boxes in found), found
  assert all(_hit(boxes, truth) for boxes, truth in zip(found, shot.face_boxes[50:85:5])), found


@pytest.mark.integration
def test_a_small_face_the_zoomed_windows_miss_gets_the_full_scan(tmp_path):
  """A 24 px face (a wide shot through H.264) that the tiles find and the windows zoomed in on it miss on two
  detection frames between scans: those frames get the full scan, and sync's face track covers every frame (it
  lost frames 1-14 before)."""
  from modeformer_jax.data.synth.wide_shot import render_wide_shot
  from modeformer_jax.media.encode import write_video
  from modeformer_jax.sync import detect

  shot = render_wide_shot(404, synth.speaker_style(98, 404), None, 4.0, 0, face_px=24)
  path = str(tmp_path / "wide.mp4")
  write_video(path, shot.frames, shot.fps, shot.audio, shot.sample_rate, preset="ultrafast")
  inputs = detect.model_inputs(path, preprocess_config())
  assert inputs.valid.all(), np.flatnonzero(~inputs.valid)


@pytest.mark.integration
def test_frames_between_scans_are_searched_around_the_faces(monkeypatch):
  """With the full scan on every 10th detection frame (the default) and a window per face on the frames between,
  the moving speaker and the listener of a wide shot are found on every detection frame where scanning all of
  them finds them, with under half the network's windows."""
  from modeformer_jax.data.synth.wide_shot import render_wide_shot

  shot = render_wide_shot(2, synth.speaker_style(3, 1), synth.speaker_style(3, 2), 3.2, face_px=30)
  indices = list(range(0, len(shot.frames), 5))
  detector, windows_run = blazeface.model("full"), []
  predict = detector.predict
  monkeypatch.setattr(detector, "predict", lambda images: windows_run.append(len(images)) or predict(images))
  found = {}
  default = preprocess_config().blazeface_scan_every
  for scan_every in (1, default):
    cfg = preprocess_config()
    cfg.blazeface_scan_every = scan_every
    windows_run.clear()
    boxes = face_search.detect_frames(shot.frames, cfg, indices)
    found[scan_every] = [[_hit(b, truth[i]) for i, b in zip(indices, boxes)]
                         for truth in (shot.face_boxes, shot.listener_boxes)]
    found[scan_every, "windows"] = sum(windows_run)
  assert np.mean(found[1]) > 0.9, found[1]
  assert np.all(np.array(found[default]) >= np.array(found[1])), found
  assert found[default, "windows"] < 0.5 * found[1, "windows"], found


def _hit(boxes: np.ndarray, truth: np.ndarray) -> bool:
  """Whether one of boxes [K, 4] (x, y, w, h) is on the face truth [4]: centre within 0.2 face heights, height
  within 25%."""
  centre = boxes[:, :2] + boxes[:, 2:] / 2
  error = np.abs(centre - (truth[:2] + truth[2:] / 2)).max(axis=1) / truth[3]
  return bool(np.any((error < 0.2) & (np.abs(boxes[:, 3] / truth[3] - 1) < 0.25)))


def _predict_in_worker() -> tuple[str, str]:
  blazeface.model("short").predict(np.zeros((8, 128, 128, 3), np.uint8))
  import jax

  return jax.config.jax_compilation_cache_dir, jax.default_backend()


@pytest.mark.integration
def test_workers_keep_the_detector_compiled_on_disk(tmp_path, monkeypatch):
  """A worker process (sync's and prep's pools) runs BlazeFace on its CPU and leaves the compiled network in the
  persistent cache, so that the next worker loads it instead of compiling it again."""
  import concurrent.futures
  import multiprocessing

  for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "JAX_PLATFORMS"):
    monkeypatch.delenv(name, raising=False)  # as a user's shell has them (conftest sets them for the tests)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  context = multiprocessing.get_context("spawn")  # a fresh process with this environment
  with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
    cache_dir, backend = pool.submit(_predict_in_worker).result()
  assert (cache_dir, backend) == (str(tmp_path / "modeformer" / "xla"), "cpu")
  assert any(name.startswith("jit__forward") for name in os.listdir(cache_dir)), os.listdir(cache_dir)


@pytest.mark.unit
def test_detector_choice_and_old_configs():
  frames = _faces(160, 2)
  cfg = preprocess_config()
  assert cfg.face_detector == "blazeface" and cfg.blazeface_model == "auto"
  for model in ("auto", "full", "short"):
    cfg.blazeface_model = model
    assert all(len(b) == 1 for b in faces.run_detector(frames, cfg).values()), model
  cfg.blazeface_model = "medium"
  with pytest.raises(UserError, match="blazeface_model"):
    faces.detect_faces(frames, cfg)
  cfg = preprocess_config()
  cfg.face_detector = "s3fd"
  with pytest.raises(UserError, match="face_detector"):
    faces.detect_faces(frames, cfg)
  # A config saved before BlazeFace named its cascade in face_detector and has no BlazeFace fields.
  old = preprocess_config()
  for field in [k for k in old if k.startswith("blazeface") or k in ("haar_cascade", "min_face_px")]:
    del old[field]
  old.face_detector = "haarcascade_frontalface_alt.xml"
  upgraded = with_face_defaults(old)
  assert (upgraded.face_detector, upgraded.haar_cascade) == ("haar", "haarcascade_frontalface_alt.xml")
  assert upgraded.blazeface_model == "auto" and "blazeface_model" not in old
