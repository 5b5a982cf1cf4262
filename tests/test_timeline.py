"""Sync over time (`modeformer sync --timeline`, issue 21): the generator's drift, steps and turns; segments,
the automatic Confidence threshold and the speaking face on embeddings made to order; constant / drift / step
from segment offsets; the whole pipeline on generated footage (the mouth-energy stand-in, then the trained tiny
model), the drift corrected by resampling and a step refused; a timeline costs no model time."""

import csv
import os
import json

import numpy as np
import pytest

from modeformer_jax import cli
from modeformer_jax.data import synth
from modeformer_jax.data.synth import timing as truth_timing, wide_shot
from modeformer_jax.media.decode import read_media
from modeformer_jax.media.encode import write_video
from modeformer_jax.sync import detect, timeline, trend
from modeformer_jax.sync.correct import write_corrected
from test_sync import MouthEnergyScorer

FPS = 25.0


# ---------------------------------------------------------------------------------------------------------
# The trend of segment offsets.


def _segments(offsets_at, seconds=60.0, hop=2.0, noise=0.2, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(hop, seconds - hop, hop)
  return t, offsets_at(t) + noise * rng.standard_normal(len(t))


@pytest.mark.unit
def test_trend_tells_constant_drift_and_step_apart():
  t, y = _segments(lambda t: np.full_like(t, 3.0))
  found = trend.fit_trend(t, y, FPS, evidence=0.5)
  assert found.kind == "constant" and abs(found.offset_frames - 3) < 0.15 and found.correctable
  assert abs(found.drift_ms_per_min) < 3 * found.drift_error_ms_per_min
  # 80 ms/min: a 30 fps camera against 29.97 fps audio; the offset moves 2 frames a minute.
  t, y = _segments(lambda t: -1 + 80 / 40 * t / 60)
  found = trend.fit_trend(t, y, FPS, evidence=0.5)
  assert found.kind == "drift" and abs(found.drift_ms_per_min - 80) < 8 and found.correctable
  assert 0 < found.drift_error_ms_per_min < 8 and abs(found.offset_ms_at(0) + 40) < 10
  assert "drift +8" in found.text() or "drift +7" in found.text()
  t, y = _segments(lambda t: np.where(t < 23.0, 4.0, -2.0))
  found = trend.fit_trend(t, y, FPS, evidence=0.5)
  assert found.kind == "step" and abs(found.step_s - 23) <= 2 and not found.correctable
  assert abs(found.before_frames - 4) < 0.3 and abs(found.after_frames + 2) < 0.3
  assert "steps from +4.0 to -2.0 frames at" in found.refusal()
  # Two steps: no single model explains them.
  t, y = _segments(lambda t: np.select([t < 20, t < 40], [4.0, -2.0], 3.0))
  found = trend.fit_trend(t, y, FPS, evidence=0.5)
  assert found.kind == "irregular" and found.refusal()


@pytest.mark.unit
def test_trend_is_robust_and_modest():
  # Two wrong segments (a confident wrong peak) do not make a drift or a step of a constant offset.
  t, y = _segments(lambda t: np.full_like(t, -3.0))
  y[[5, 17]] = [9.0, -12.0]
  found = trend.fit_trend(t, y, FPS, evidence=0.5)
  assert found.kind == "constant" and found.outliers == 2 and abs(found.offset_frames + 3) < 0.15
  # A drift too small to move the offset half a frame over the file is reported as constant.
  t, y = _segments(lambda t: 2 + 0.2 * t / 60, seconds=30.0, noise=0.05)
  assert trend.fit_trend(t, y, FPS, evidence=0.5).kind == "constant"
  assert trend.fit_trend([], [], FPS).kind == "unknown"
  assert trend.fit_trend([1.0, 3.0], [2.0, 2.2], FPS).kind == "constant"


@pytest.mark.unit
def test_a_step_is_placed_to_the_window():
  """Segments place a step between their centres; the windows place it where it is."""
  rng = np.random.default_rng(1)
  count, max_offset, change = 1000, 5, 612  # windows; the offset changes at window 612 (24.5 s)
  scores = rng.normal(0, 0.3, (count, 2 * max_offset + 1))
  scores[:change, max_offset - 2] += 1.0  # AV offset +2 before
  scores[change:, max_offset + 3] += 1.0  # -3 after
  times = (np.arange(count) + 2.5) / FPS
  t = np.arange(2.0, 40.0, 2.0)
  y = np.where(t < change / FPS, 2.0, -3.0)
  found = trend.fit_trend(t, y, FPS, evidence=0.5, window_scores=scores, window_times=times)
  assert found.kind == "step" and abs(found.step_s - times[change]) < 0.3, found.step_s


# ---------------------------------------------------------------------------------------------------------
# Segments, the automatic threshold and the speaking face, on embeddings made to order.


def _unit(x):
  return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _cosine_distances(video, audio, first, max_offset=5):
  from modeformer_jax.inference import offset_similarities
  from modeformer_jax.sync.syncnet_metrics import similarity_to_distance

  sims = offset_similarities(video, audio, max_offset, start=first)
  return sims, similarity_to_distance(sims)


def _face(video, audio, first=0, max_offset=5):
  sims, distances = _cosine_distances(video, audio, first, max_offset)
  full_sims = np.full((len(audio), 2 * max_offset + 1), np.nan, np.float32)
  full_distances = np.full(full_sims.shape, np.nan)
  full_sims[first:first + len(video)], full_distances[first:first + len(video)] = sims, distances
  return timeline.FaceScores(first=first, video=video, ok=np.ones(len(video), bool), sims=full_sims,
                             distances=full_distances)


@pytest.mark.unit
def test_segments_decide_offsets_and_the_speaking_face():
  """Two faces over 40 s: face 0 speaks (its video matches the audio 2 windows later) for 20 s, then face 1
  (matching it 1 window earlier); the last 8 s nobody's video matches. Every segment names the face that
  speaks with each face's Confidence, the silent part is undecided, and the file's rows follow the speaker."""
  rng = np.random.default_rng(2)
  count, dim = 996, 16  # 1000 frames
  audio = _unit(rng.normal(size=(count, dim)))
  talk = lambda shift: _unit(np.roll(audio, -shift, axis=0) + 1.2 * rng.normal(size=(count, dim)))
  silent = lambda: _unit(rng.normal(size=(count, dim)))
  first, second = silent(), silent()
  first[:500] = talk(2)[:500]  # video window f matches audio f + 2: the audio lags by 2 frames (AV offset -2)
  second[500:800] = talk(-1)[500:800]  # AV offset +1
  faces = [_face(first, audio), _face(second, audio)]
  distances_of = lambda video, audio, start: _cosine_distances(video, audio, start)[1]
  found = timeline.build(faces, audio, timeline.TimelineOptions(4.0, 2.0), FPS, 5, 5, distances_of)
  assert found.threshold is not None and "auto" in found.threshold_from
  by_time = {round(s.start_s): s for s in found.segments}
  assert len(found.segments) == 19 and by_time[0].end_s == 4.0 and found.segments[-1].end_s == 40.0
  for start in (0, 4, 8, 14):
    assert by_time[start].decided and by_time[start].track == 0 and by_time[start].offset == -2
  for start in (20, 24, 26):
    assert by_time[start].decided and by_time[start].track == 1 and by_time[start].offset == 1
  s = by_time[24]
  assert s.track_confidences[1] > found.threshold > s.track_confidences[0] and s.windows == 96
  for start in (34, 36):
    assert not by_time[start].decided and by_time[start].offset is None and "too low" in by_time[start].note
  assert found.trend.kind == "step" and abs(found.trend.step_s - 20.0) < 1.0
  assert (found.window_face[:450] == 0).all() and (found.window_face[550:750] == 1).all()
  text = "\n".join(found.text(2))
  assert "20 decided" not in text and "Trend: \tstep at" in text
  row = found.to_json()["segments"][12]
  assert row["track"] == 1 and len(row["track_confidences"]) == 2 and row["av_offset_ms"] == 40.0


@pytest.mark.unit
def test_faces_are_compared_at_the_offset_they_agree_on():
  """speaking_faces: in a weak segment a listener's noise can dip deeper at some wrong offset than the speaker's
  match at the true one; judged each at its own best offset (Confidence) the listener wins, judged at the offset
  the segments around agree on the speaker does. The agreed offset follows a step."""
  rng = np.random.default_rng(4)
  width, count = 11, 12  # offsets -5..5, segments every 2 s

  def mdist(dip_at=None, depth=0.0):
    values = 1.0 + 0.01 * rng.normal(size=width)
    if dip_at is not None:
      values[dip_at] -= depth
    return (96, values)

  # Face 0 speaks throughout at column 7 until 12 s, then at column 2 (a step); face 1 listens.
  columns = [7] * 6 + [2] * 6
  speaker = [mdist(c, 0.1) for c in columns]
  listener = [mdist() for _ in range(count)]
  speaker[3], listener[3] = mdist(7, 0.04), mdist(1, 0.06)  # weak speech, a deep dip of the listener's noise
  speaker[9], listener[9] = mdist(2, 0.04), mdist(9, 0.06)
  listener[5] = None  # off screen
  stats, centres = [speaker, listener], [2.0 * i + 2 for i in range(count)]
  own_best = [max((0, 1), key=lambda k: -np.inf if stats[k][i] is None else
                  np.median(stats[k][i][1]) - stats[k][i][1].min()) for i in range(count)]
  assert own_best[3] == own_best[9] == 1
  assert timeline.speaking_faces(stats, centres, agree_s=5.0) == [0] * count
  assert timeline.speaking_faces([[None, None]], [2.0, 4.0]) == [None, None]


@pytest.mark.unit
def test_segment_layout_and_options():
  assert timeline.segment_frames(100, 250, 125) == [(0, 100)]
  assert timeline.segment_frames(600, 250, 125) == [(0, 250), (125, 375), (250, 500), (350, 600)]
  assert timeline.TimelineOptions(10).hop == 5
  with pytest.raises(ValueError, match="window_s 0.2"):
    timeline.TimelineOptions(0.2).check()


def _smooth_unit(rng, count, dim=16, width=8):
  """Embeddings that change slowly along the file, as real windows do (a moving sum of `width` draws)."""
  x = np.cumsum(rng.normal(size=(count + width, dim)), axis=0)
  return _unit(x[width:] - x[:-width])


@pytest.mark.unit
def test_short_files_without_sync_evidence_are_rarely_decided():
  """100 files of 4 s whose video has nothing to do with their audio: one segment each, scored at +-15 frames.
  Their rotated audio gives under 2 stretches of 31 wrong alignments per file, so the rotations' own 99th
  percentile is about their maximum and lets about one in five through (19 here); with the Gaussian noise
  fitted to them (chance_threshold) a few in 100 are decided (3 here)."""
  rng = np.random.default_rng(0)
  count, max_offset = 96, 15
  distances_of = lambda video, audio, start: _cosine_distances(video, audio, start, max_offset)[1]
  decided = observed_only = from_noise = 0
  for _ in range(100):
    audio, video = _smooth_unit(rng, count), _smooth_unit(rng, count)
    faces = [_face(video, audio, max_offset=max_offset)]
    found = timeline.build(faces, audio, timeline.TimelineOptions(4.0), FPS, max_offset, 5, distances_of)
    (segment,) = found.segments
    decided += segment.decided
    from_noise += "Gaussian noise" in found.threshold_from
    null = timeline.null_mdists(faces, audio, [(0, count)], distances_of, max_offset, 5)
    observed_only += segment.confidence >= np.quantile([np.median(m) - m.min() for m in null], 0.99)
  assert observed_only >= 15
  assert decided <= 5 and from_noise >= 80


# ---------------------------------------------------------------------------------------------------------
# The generator: drift, steps and turns.


def _envelope_lag(audio, reference, at, expected, search=240, rate=16000):
  """Samples L such that audio[n] sounds like reference[n + L] around `at` seconds (smoothed power, 1 s)."""
  power = lambda x: np.convolve(x.astype(np.float64) ** 2, np.ones(320) / 320, mode="same")
  a, b = power(audio), power(reference)
  n0, width = int(at * rate), rate
  seg = a[n0:n0 + width] - a[n0:n0 + width].mean()
  lags = np.arange(int(expected) - search, int(expected) + search + 1)
  score = [np.dot(seg, b[n0 + lag:n0 + lag + width] - b[n0 + lag:n0 + lag + width].mean()) for lag in lags]
  return lags[int(np.argmax(score))]


@pytest.mark.unit
def test_drift_and_step_move_the_audio_as_recorded():
  """A drifting clip's audio is the in-sync audio moved by the offset at each time (within 3 ms, the drift over
  the 1 s compared); a stepped clip's jumps at the step; the video never changes."""
  style = synth.speaker_style(5, 3)
  base = synth.render_clip(31, style, 8.0, size=48)
  drift = synth.render_clip(31, style, 8.0, 2, size=48, drift_ms_per_min=300.0)
  step = synth.render_clip(31, style, 8.0, 3, size=48, step=(4.0, -4))
  np.testing.assert_array_equal(drift.frames, base.frames)
  assert drift.timing == truth_timing.AudioTiming(2, 300.0) and step.timing.step_s == 4.0
  for at in (0.5, 6.5):
    expected = drift.timing.offset_frames_at(np.array([at + 0.5]), FPS)[0] * 640
    assert abs(_envelope_lag(drift.audio, base.audio, at, expected) - expected) <= 48, at
  for at, frames in ((2.5, 3), (5.5, -4)):
    assert _envelope_lag(step.audio, base.audio, at, frames * 640) == frames * 640, at
  np.testing.assert_allclose(truth_timing.AudioTiming(2, 60.0, 30.0, -1).offset_frames_at([0, 30, 60], FPS),
                             [2, -1 + 0.75, -1 + 1.5])


@pytest.mark.unit
def test_dialogue_faces_take_turns():
  turns = truth_timing.alternating_turns(3, 4.0, 1.5)
  assert turns[0][:2] == (0.0, turns[1][0]) and turns[-1][1] == 4.0 and [t[2] for t in turns[:2]] == [0, 1]
  shot = wide_shot.render_wide_shot(3, synth.speaker_style(6, 0), synth.speaker_style(6, 1), 4.0, 1, face_px=60,
                                    turns=turns)
  who = truth_timing.speaking_face(turns, (np.arange(100) + 0.5) / FPS)
  inner = np.abs((np.arange(100) + 0.5) / FPS - np.array([[t[1]] for t in turns[:-1]])).min(axis=0) > 0.2
  # Each mouth moves in its own turns and rests in the other's; both voices are in the audio.
  for face, mouth in ((0, shot.mouth_open), (1, shot.listener_mouth_open)):
    assert np.ptp(mouth[(who == face) & inner]) > 0.3 and np.ptp(mouth[(who != face) & inner]) < 0.05, face
  assert shot.turns == turns and np.isfinite(shot.listener_boxes).all()
  power = [np.mean(shot.audio[int(a * 16000):int(b * 16000)] ** 2) for a, b, _ in turns]
  assert min(power) > 0.05 * max(power)


@pytest.mark.e2e
def test_synth_cli_records_drift_steps_and_turns(tmp_path, capsys):
  out = tmp_path / "timed"
  assert cli.main(["synth", "--out", str(out), "--layout", "lrs3", "--speakers", "1", "--clips-per-speaker", "2",
                   "--seconds", "1.2", "--workers", "1", "--drift-ms-per-min=-60,90", "--step-frames=-3",
                   "--step-at", "0.5", "--json"]) == 0
  summary = json.loads(capsys.readouterr().out)
  assert summary["drifting_clips"] == summary["stepped_clips"] == 2
  for row in synth.read_manifest(out):
    assert row["drift_ms_per_min"] in (-60.0, 90.0) and row["step_s"] == 0.5
    assert row["step_to_frames"] == row["offset_frames"] - 3 and row["turns"] is None
  wide = tmp_path / "dialogue"
  assert cli.main(["synth", "--out", str(wide), "--layout", "lrs3", "--shot", "wide", "--speakers", "1",
                   "--clips-per-speaker", "1", "--seconds", "1.2", "--workers", "1", "--turns", "0.5",
                   "--face-px", "60"]) == 0
  assert "1 dialogues" in capsys.readouterr().out
  row, = synth.read_manifest(wide)
  assert row["face_px"] == 60 and [t[2] for t in row["turns"][:2]] == [0, 1] and row["turns"][-1][1] == 1.2
  assert abs(np.median(np.array(row["face_boxes"])[:, 3]) - 60) < 2 and len(row["listener_boxes"]) == 30
  for flags in (["--turns", "2"], ["--step-at", "0.5"], ["--shot", "wide", "--face-px", "-1"],
                ["--drift-ms-per-min", "fast"]):
    assert cli.main(["synth", "--out", str(tmp_path / "bad"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modeformer synth: error: ") and err.count("\n") == 1, err


# ---------------------------------------------------------------------------------------------------------
# The whole pipeline on generated files: the mouth-energy stand-in (no training), then the CLI.

SECONDS_LONG = 24.0
DRIFT = 400.0  # ms per minute: the offset moves 10 frames a minute, 4 over the file
STEP_AT = 13.0
MAX_OFFSET = 8


class CountingScorer(MouthEnergyScorer):
  """The stand-in model, counting the windows it embeds (the model time of a run)."""

  def __init__(self):
    super().__init__()
    self.embedded = 0

  def embed_video(self, clips):
    self.embedded += len(clips)
    return super().embed_video(clips)

  def embed_audio(self, mels):
    self.embedded += len(mels)
    return super().embed_audio(mels)


@pytest.fixture(scope="module")
def timed_files(tmp_path_factory):
  """A drifting face-centred clip (AV offset -2 frames at 0 s, +400 ms/min) and a stepped one (+4 frames, -3
  from 13 s), 24 s each."""
  folder = tmp_path_factory.mktemp("timeline_clips")
  style = synth.speaker_style(5, 3)
  clips = {"drift": synth.render_clip(31, style, SECONDS_LONG, -2, size=96, drift_ms_per_min=DRIFT),
           "step": synth.render_clip(32, style, SECONDS_LONG, 4, size=96, step=(STEP_AT, -3))}
  paths = {}
  for name, clip in clips.items():
    paths[name] = str(folder / f"{name}.mp4")
    write_video(paths[name], clip.frames, FPS, clip.audio, 16000, preset="ultrafast")
  return paths


def _scored(model, path, options, face_centered=True):
  inputs = detect.model_inputs(path, model.config.preprocess, face_centered=face_centered, max_offset=MAX_OFFSET)
  return detect.score(model, inputs, MAX_OFFSET, options)


@pytest.mark.integration
def test_timeline_of_generated_files_finds_drift_and_step_at_no_model_cost(timed_files):
  model = CountingScorer()
  plain = _scored(model, timed_files["drift"], None)
  one_pass, model.embedded = model.embedded, 0
  drift = _scored(model, timed_files["drift"], timeline.TimelineOptions(4.0, 2.0))
  # Segments reuse the windows embedded for the file: a timeline costs no model time.
  assert model.embedded == one_pass == 2 * plain.windows_total and plain.timeline is None
  found = drift.timeline.trend
  assert found.kind == "drift" and abs(found.drift_ms_per_min - DRIFT) < 0.2 * DRIFT, found.text()
  assert abs(found.offset_ms_at(0) + 80) < 40 and found.drift_error_ms_per_min < 0.1 * DRIFT
  decided = [s for s in drift.timeline.segments if s.decided]
  truth = truth_timing.AudioTiming(-2, DRIFT).offset_frames_at([s.centre_s for s in decided], FPS)
  assert len(decided) >= 0.8 * len(drift.timeline.segments)
  assert np.mean(np.abs(np.array([s.offset for s in decided]) - truth) <= 1) >= 0.9
  step = _scored(model, timed_files["step"], timeline.TimelineOptions(4.0, 2.0)).timeline.trend
  assert step.kind == "step" and abs(step.step_s - STEP_AT) <= 2, step.text()
  assert abs(step.before_frames - 4) < 0.6 and abs(step.after_frames + 3) < 0.6 and not step.correctable


@pytest.mark.e2e
def test_sync_timeline_cli_corrects_a_drift_and_refuses_a_step(timed_files, tmp_path, capsys, monkeypatch):
  """`sync --timeline --json --plot --correct` end to end (the stand-in as the model: the session's 100-step
  model decides too few segments of these 24 s clips to tell a drift from a constant reliably, see
  test_the_tiny_trained_model_times_a_step): the drift is resampled out (the copy's own timeline is constant, in
  sync), the step refused with its reason; the summary carries the trends."""
  from modeformer_jax import inference

  monkeypatch.setattr(inference, "load_sync_model", lambda *args, **kwargs: MouthEnergyScorer())
  summary = tmp_path / "sync.csv"
  status = cli.main(["sync", timed_files["drift"], timed_files["step"], "--checkpoint", str(tmp_path),
                     "--face-centered", "--max-offset-frames", str(MAX_OFFSET), "--timeline", "4",
                     "--timeline-hop", "2", "--json", "--workers", "0", "--plot", str(tmp_path / "plots"),
                     "--correct", str(tmp_path / "fixed"), "--summary", str(summary)])
  out, err = capsys.readouterr()
  assert status == 1  # the step cannot be corrected
  drift, step, last = map(json.loads, out.splitlines())
  assert drift["timeline"]["trend"]["kind"] == "drift" and len(drift["timeline"]["segments"]) == 11
  assert abs(drift["timeline"]["trend"]["drift_ms_per_min"] - DRIFT) < 0.2 * DRIFT
  fixed = drift["corrected"]
  assert fixed["in_sync"] and fixed["timeline"]["trend"]["kind"] == "constant", fixed["timeline"]["trend"]
  assert abs(fixed["timeline"]["trend"]["offset_ms"]) <= 40
  assert (tmp_path / "plots" / "drift.png").stat().st_size > 20_000 and drift["plot"].endswith("drift.png")
  assert step["timeline"]["trend"]["kind"] == "step" and "refused" in step["corrected"]["error"]
  assert "the offset steps from +" in step["corrected"]["error"] and "refused" in err
  assert not (tmp_path / "fixed" / "step.mp4").exists() and last["summary"]["files"] == 2
  rows = {os.path.basename(r["path"]): r for r in csv.DictReader(open(summary))}
  assert rows["drift.mp4"]["trend_kind"] == "drift" and rows["step.mp4"]["trend_kind"] == "step"
  assert "constant" in rows["drift.mp4"]["corrected_trend"] and rows["step.mp4"]["trend_refusal"]


@pytest.fixture(scope="module")
def two_shot(tmp_path_factory):
  """Two close-ups side by side taking turns (20 s, turns of about 5 s, AV offset +2): (path, turns)."""
  turns = truth_timing.alternating_turns(3, 20.0, 5.0)
  left, right = (synth.render_clip(41 + k, synth.speaker_style(5, k), 20.0, 2, size=112,
                                   talking=truth_timing.talking_intervals(turns, k)) for k in (0, 1))
  path = str(tmp_path_factory.mktemp("two_shot") / "two_shot.mp4")
  write_video(path, np.concatenate([left.frames, right.frames], axis=2), FPS, np.clip(left.audio + right.audio, -1, 1),
              16000, preset="ultrafast")
  return path, turns


def _inner_segments(segments, turns):
  """The segments wholly inside one turn, with the face talking there."""
  inner = [s for s in segments if len(set(truth_timing.speaking_face(turns, np.linspace(s.start_s, s.end_s, 9)))) == 1]
  return inner, [int(truth_timing.speaking_face(turns, [s.centre_s])[0]) for s in inner]


@pytest.mark.e2e
def test_the_speaking_face_is_found_by_the_audio(trained_run, two_shot, capsys):
  """Both faces are tracked and scored against the audio by the session's briefly trained tiny model; segments
  inside a turn name the face that talks, the JSON carries every track's boxes and the file's numbers are the
  speakers'."""
  path, turns = two_shot
  assert cli.main(["sync", path, "--checkpoint", trained_run, "--max-offset-frames", str(MAX_OFFSET), "--timeline", "3",
                   "--timeline-hop", "1.5", "--json"]) == 0
  found = json.loads(capsys.readouterr().out)
  tracks = found["tracks"]
  assert len(tracks) == 2 and all(len(t["boxes"]) == 500 and t["coverage"] > 0.95 for t in tracks)
  # Track k is the face on the left (0) or right (1) half of the 224 px frame.
  face_of = [int(np.mean([b[0] + b[2] / 2 for b in t["boxes"] if b]) > 112) for t in tracks]
  assert sorted(face_of) == [0, 1]
  segments = [timeline.Segment(**{k: v for k, v in s.items() if k in ("start_s", "end_s", "track", "decided",
                                                                         "track_confidences")},
                               windows=0, offset=s["av_offset_frames"], offset_fine=None, confidence=None,
                               min_dist=None) for s in found["timeline"]["segments"]]
  inner, talking = _inner_segments(segments, turns)
  assert len(inner) >= 5 and np.mean([face_of[s.track] == w for s, w in zip(inner, talking)]) >= 0.8
  assert all(len(s.track_confidences) == 2 for s in segments)
  assert all(abs(s.offset - 2) <= 1 for s in segments if s.decided) and abs(found["av_offset_frames"] - 2) <= 1
  assert sum(found["speaking_segments"]) == sum(s.decided for s in segments)


@pytest.mark.integration
def test_the_tiny_trained_model_times_a_step(trained_run, timed_files):
  """The session's briefly trained tiny model (not the stand-in) places the step of the stepped file within 2 s.
  It does not tell drift rates or speakers reliably (its crops of detected faces score at chance): the issue's
  targets are for the demo-sized model, test_demo_model_meets_the_timeline_targets (slow)."""
  from modeformer_jax.inference import load_sync_model

  step = _scored(load_sync_model(trained_run), timed_files["step"], timeline.TimelineOptions(4.0, 2.0)).timeline.trend
  assert step.kind == "step" and abs(step.step_s - STEP_AT) <= 2, step.text()


# ---------------------------------------------------------------------------------------------------------
# The targets, with the demo-sized model.

TARGET_SECONDS = 40.0
TARGET_DRIFT, TARGET_STEP_AT = 300.0, 22.0


DIALOGUES = 4  # as bench/demo_wide_shots.py makes them: faces 90 px, turns of about 6 s


def timeline_targets(model, folder, options=timeline.TimelineOptions(4.0, 2.0)) -> dict:
  """Generated footage made for the timeline, scored by `model`: a drifting close-up (-3 frames + 300 ms/min),
  a stepped one (+4 frames, -3 from 22 s) and DIALOGUES wide-shot dialogues (two faces 90 px tall taking turns
  of about 6 s, AV offsets 2, -3, 5, 0), 40 s each. Returns the trends and, over the dialogues' segments inside
  a turn, how many name its speaker (all, and the decided ones)."""
  style = synth.speaker_style(5, 3)
  # Close-ups at LRS2's 160 px, as the demo's model was trained on them.
  clips = {"drift": synth.render_clip(31, style, TARGET_SECONDS, -3, drift_ms_per_min=TARGET_DRIFT),
           "step": synth.render_clip(32, style, TARGET_SECONDS, 4, step=(TARGET_STEP_AT, -3))}
  for k in range(DIALOGUES):
    clips[f"dialogue{k}"] = wide_shot.render_wide_shot(
        3 + k, synth.speaker_style(6, 2 * k), synth.speaker_style(6, 2 * k + 1), TARGET_SECONDS, (2, -3, 5, 0)[k],
        face_px=90, turns=truth_timing.alternating_turns(3 + k, TARGET_SECONDS, 6.0))
  out = {}
  right, decided = [], []
  for name, clip in clips.items():
    path = f"{folder}/{name}.mp4"
    write_video(path, clip.frames, FPS, clip.audio, 16000, preset="ultrafast")
    out[name] = result = _scored(model, path, options, face_centered=not name.startswith("dialogue"))
    if name.startswith("dialogue"):
      # A track is the face whose boxes it follows (the speaker's or the listener's, in the generator's truth).
      face_of = [int(np.nanmean(np.abs(boxes[:, 0] - clip.face_boxes[start:start + len(boxes), 0])) >
                     np.nanmean(np.abs(boxes[:, 0] - clip.listener_boxes[start:start + len(boxes), 0])))
                 for start, boxes in result.tracks]
      inner, talking = _inner_segments(result.timeline.segments, clip.turns)
      right += [s.track is not None and face_of[s.track] == w for s, w in zip(inner, talking)]
      decided += [s.decided for s in inner]
  return {"drift": out["drift"].timeline.trend, "step": out["step"].timeline.trend, "results": out,
          "inner_segments": len(right), "speaker_right": sum(right),
          "decided": sum(decided), "decided_right": sum(r and d for r, d in zip(right, decided))}


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_model_meets_the_timeline_targets(demo_run, tmp_path):
  """The issue's targets with the demo-sized model: the drift rate within 20%, the step time within 2 s, the
  speaking face in >= 90% of the dialogues' segments inside a turn (a segment across a change of speaker has
  two), decided or not. Measured (BENCHMARKS.md, "Sync over time" and "Face detectors"): the demo recipe with
  low_res 306.2 ms/min, 22.0 s, 24 of 24 segments; without it 296.6 ms/min, 22.1 s, 24 of 24."""
  from modeformer_jax.inference import load_sync_model

  found = timeline_targets(load_sync_model(demo_run), tmp_path)
  print("demo model, timeline targets:", {k: v for k, v in found.items() if k != "results"})
  drift, step = found["drift"], found["step"]
  assert drift.kind == "drift" and abs(drift.drift_ms_per_min - TARGET_DRIFT) <= 0.2 * TARGET_DRIFT, drift.text()
  assert step.kind == "step" and abs(step.step_s - TARGET_STEP_AT) <= 2, step.text()
  assert found["inner_segments"] >= 20 and found["speaker_right"] >= 0.9 * found["inner_segments"], found
  assert found["decided"] >= 0.5 * found["inner_segments"] and found["decided_right"] == found["decided"], found
