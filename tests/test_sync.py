"""`modeformer sync`: syncnet_python's formulas, the sign convention on generated clips with known offsets,
bad inputs in batch mode, correction (video packets untouched), summary and plot files."""

import csv
import json
import os
import subprocess
import sys

import av
import ml_collections
import numpy as np
import pytest
import scipy.signal

from modeformer_jax import cli, cpu_cores
from modeformer_jax.data import synth
from modeformer_jax.data.windows import WindowSpec
from modeformer_jax.inference import offset_similarities
from modeformer_jax.media import filters
from modeformer_jax.media.encode import write_video
from modeformer_jax.media.preprocess_config import preprocess_config
from modeformer_jax.offsets import describe_offset
from modeformer_jax.sync import batch, detect, syncnet_metrics, timeline, tracks
from modeformer_jax.sync.correct import write_corrected

pytestmark = pytest.mark.integration


SECONDS = 3.0
# name: (clip seed, speaker index, AV offset in the file's own frames, fps, audio rate, channels, frame size).
# Speaker 2 of speaker_style(5, .) is a face OpenCV's cascade finds at 256 px (many drawn ones are not).
CLIPS = {
    "lead5": (11, 0, 5, 25, 16000, 1, 160),
    "lag4": (12, 1, -4, 25, 16000, 1, 160),
    "sync": (13, 3, 0, 25, 16000, 1, 160),
    "lead2": (14, 5, 2, 25, 16000, 1, 160),
    "lag7": (15, 7, -7, 25, 16000, 1, 160),
    "fps30_lead6": (16, 2, 6, 30, 44100, 2, 160),  # 6 frames at 30 fps = 200 ms = 5 frames at 25 fps
    "face256_lag3": (17, 2, -3, 25, 16000, 1, 256),
}


def _expected(name: str) -> int:
  _, _, offset, fps, *_ = CLIPS[name]
  return round(offset * 25 / fps)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
  folder = tmp_path_factory.mktemp("sync_clips")
  paths = {}
  for name, (seed, speaker, offset, fps, rate, channels, size) in CLIPS.items():
    clip = synth.render_clip(seed, synth.speaker_style(5, speaker), SECONDS, offset, size=size, fps=fps,
                             sample_rate=rate)
    audio = np.repeat(clip.audio[:, None], channels, axis=1) if channels > 1 else clip.audio
    paths[name] = str(folder / f"{name}.mp4")
    write_video(paths[name], clip.frames, fps, audio, rate, preset="ultrafast")
  return paths


class MouthEnergyScorer:
  """Stands in for SyncModel without training: the video embedding of a window is how open the mouth is on
  its 5 frames (pixels in the middle of the mouth half darker than 0.6 x that frame's median, so lighting
  changes cancel), the audio embedding the loudness below ~1.5 kHz (mel bins 5..39) over the same 5 frames;
  both centred and unit-norm, so their cosine is a correlation. On the generator's clips opening and loudness
  move together, so it finds most offsets: a check of everything around the model (decode, rates, crops,
  window alignment, sign) that does not depend on how well a model trained."""
  scoring = "cosine"  # as SyncModel: unit embeddings compared by dot product, no syncnet_python padding
  syncnet_compat = False

  def __init__(self):
    self.config = ml_collections.ConfigDict({"preprocess": preprocess_config()})
    self.spec = WindowSpec.from_config(self.config.preprocess)

  @staticmethod
  def _unit(x):
    x = x - x.mean(axis=1, keepdims=True)
    return (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)).astype(np.float32)

  def embed_video(self, clips):  # [N, 5, 48, 96, 3] -> [N, 5]
    grey = clips[:, :, :, 24:72].astype(np.float32).mean(-1)
    return self._unit((grey < 0.6 * np.median(grey, axis=(2, 3), keepdims=True)).mean(axis=(2, 3)))

  def embed_audio(self, mels):  # [N, 80, 16] -> [N, 5]: 3.2 mel frames per video frame
    edges = np.arange(6) * 16 // 5
    return self._unit(np.stack([mels[:, 5:40, a:b].mean(axis=(1, 2)) for a, b in zip(edges[:-1], edges[1:])], 1))


def _sync(capsys, *args):
  status = cli.main(["sync", *map(str, args)])
  out, err = capsys.readouterr()
  return status, out, err


# ---------------------------------------------------------------------------------------------------------
# syncnet_python's numbers.


def _syncnet_python(video, audio, vshift):
  """SyncNetInstance.evaluate of syncnet_python, transcribed from torch to numpy (calc_pdist zero-pads)."""
  win = 2 * vshift + 1
  padded = np.pad(audio, ((vshift, vshift), (0, 0)))
  dists = np.stack([np.linalg.norm(video[i][None] - padded[i:i + win], axis=1) for i in range(len(video))])
  mdist = dists.mean(0)
  minidx = int(np.argmin(mdist))
  conf = np.median(mdist) - mdist[minidx]
  fconf = np.median(mdist) - dists[:, minidx]
  return dists, vshift - minidx, mdist[minidx], conf, scipy.signal.medfilt(fconf, kernel_size=9)


def test_syncnet_formulas_on_a_hand_made_matrix():
  # 3 windows, S = 1: shifts (audio moved by -1, 0, +1). Column means 0.6, 0.9, 1.2: the best shift moves
  # the audio by -1 frame, i.e. the sound of frame i is at audio frame i - 1: the audio leads, offset +1.
  d = np.array([[0.5, 1.0, 1.1], [0.6, 0.8, 1.3], [0.7, 0.9, 1.2]])
  s = syncnet_metrics.syncnet_scores(d)
  assert s.offset == 1
  assert s.min_dist == pytest.approx(0.6)
  assert s.confidence == pytest.approx(0.9 - 0.6)
  np.testing.assert_allclose(s.mdist, [0.6, 0.9, 1.2])
  np.testing.assert_allclose(s.framewise_conf, [0.4, 0.3, 0.2])
  # medfilt over 9 zero-pads: 3 values among 6 zeros have median 0.
  np.testing.assert_allclose(s.framewise_conf_filtered, [0.0, 0.0, 0.0])
  np.testing.assert_allclose(syncnet_metrics.similarity_to_distance([1.0, 0.0, -1.0, np.nan]),
                             [0.0, np.sqrt(2), 2.0, np.nan])


def test_syncnet_scores_equal_syncnet_python():
  rng = np.random.default_rng(0)
  video = rng.normal(size=(40, 16))
  video /= np.linalg.norm(video, axis=1, keepdims=True)
  # Audio matching the video 3 windows later plus noise: the sound of frame i at audio frame i + 3.
  audio = np.roll(video, 3, axis=0) + 0.5 * rng.normal(size=video.shape)
  audio /= np.linalg.norm(audio, axis=1, keepdims=True)
  dists, offset, min_dist, conf, fconfm = _syncnet_python(video, audio, vshift=10)
  # Our layout is calc_pdist's wherever the candidate exists (syncnet's zero padding gives distance 1 there).
  ours = syncnet_metrics.similarity_to_distance(offset_similarities(video, audio, 10))
  inside = ~np.isnan(ours)
  np.testing.assert_allclose(ours[inside], dists[inside], atol=1e-6)
  np.testing.assert_allclose(dists[~inside], 1.0, atol=1e-6)
  ref = syncnet_metrics.syncnet_scores(dists)  # without missing values: exactly syncnet_python
  assert (ref.offset, offset) == (-3, -3)  # audio lags by 3 frames
  assert ref.min_dist == pytest.approx(min_dist) and ref.confidence == pytest.approx(conf)
  np.testing.assert_allclose(ref.framewise_conf_filtered, fconfm, atol=1e-12)
  s = syncnet_metrics.syncnet_scores(ours)  # ours: missing candidates left out of the means instead
  assert s.offset == -3 and s.confidence > 0.2


def test_missing_values_are_left_out():
  rng = np.random.default_rng(1)
  d = rng.uniform(0.5, 1.5, size=(30, 7))
  holes = d.copy()
  holes[[4, 5, 6]] = np.nan  # windows without a face
  s = syncnet_metrics.syncnet_scores(holes)
  np.testing.assert_allclose(s.mdist, np.delete(d, [4, 5, 6], axis=0).mean(axis=0))
  assert np.isnan(s.framewise_conf_filtered[[4, 5, 6]]).all()
  kept = np.delete(np.arange(30), [4, 5, 6])
  assert np.isfinite(s.framewise_conf_filtered[kept]).all()
  x = rng.normal(size=25)
  np.testing.assert_allclose(filters.median_filter(x, 9), scipy.signal.medfilt(x, 9))


def _past_the_ends(distances: np.ndarray) -> np.ndarray:
  """The matrix with NaN where audio window f + j - S falls outside the file, as inference leaves it."""
  count, width = distances.shape
  audio = np.arange(count)[:, None] + np.arange(width)[None] - width // 2
  return np.where((audio < 0) | (audio >= count), np.nan, distances)


@pytest.mark.parametrize("worse", ["video", "audio"])
def test_edge_shifts_are_compared_on_the_windows_they_have(worse):
  # 60 windows, S = 5; the true shift (audio 2 frames later, column 7) is 0.05 closer than the others for every
  # window, and the first and last 6 video windows (or audio windows) are 2.0 farther at every shift, say
  # silence around the speech. Shift -5 lacks the first 5 windows' pairs, +5 the last 5: on the pairs each
  # shift has, a plain mean makes an edge look best for leaving bad windows out; compared within windows, the
  # true shift wins.
  count, s = 60, 5
  d = np.ones((count, 2 * s + 1))
  d[:, s + 2] -= 0.05
  index = np.arange(count)[:, None] + (0 if worse == "video" else np.arange(2 * s + 1)[None] - s)
  d += np.where((index < 6) | (index >= count - 6), 2.0, 0.0)
  holes = _past_the_ends(d)
  plain = np.nanmean(holes, axis=0)
  assert np.argmin(plain) in (0, 2 * s)  # the bias this guards against
  scores = syncnet_metrics.syncnet_scores(holes)
  assert scores.offset == -2 and scores.confidence > 0.04
  # With every pair there (syncnet's padding), the plain column means, as syncnet_python's mdist.
  np.testing.assert_allclose(syncnet_metrics.shift_means(d), d.mean(axis=0))
  np.testing.assert_allclose(syncnet_metrics.syncnet_scores(d).mdist, d.mean(axis=0))
  # A timeline's segments (here the whole file as one) compare shifts the same way.
  (windows, mdist), = timeline._segment_stats(holes, [(0, count)])
  assert windows == count and np.argmin(mdist) == s + 2


def test_offset_histogram_counts_per_window_best_offsets():
  # S = 2; columns are audio shifts -2..2, i.e. AV offsets 2..-2.
  sims = np.array([[0.1, 0.9, 0.2, 0.0, 0.0],  # shift -1: AV offset +1
                   [0.1, 0.8, 0.2, 0.0, 0.0],  # +1
                   [0.0, 0.1, 0.2, 0.3, 0.9],  # shift +2: AV offset -2
                   [np.nan, np.nan, 0.5, 0.1, 0.0],  # missing candidates lose: 0
                   [np.nan] * 5])  # dropped window
  h = syncnet_metrics.offset_histogram(sims)
  np.testing.assert_array_equal(h.offsets, [-2, -1, 0, 1, 2])
  np.testing.assert_array_equal(h.counts, [1, 0, 1, 2, 0])
  assert h.mode == 1
  tie = syncnet_metrics.offset_histogram(np.array([[0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]]))
  assert tie.mode == 1  # -2 and +1 tie: the one nearer 0 wins


# ---------------------------------------------------------------------------------------------------------
# The pipeline on generated clips with known offsets.


def test_offsets_and_sign_on_generated_clips(clips):
  names = list(CLIPS)
  results = list(batch.detect_many(MouthEnergyScorer(), [clips[n] for n in names if n != "face256_lag3"],
                                   face_centered=True, workers=2))
  results.append(detect.detect(MouthEnergyScorer(), clips["face256_lag3"]))  # the face detector's path
  found = {n: r.offset for n, r in zip(names, results)}
  assert sum(abs(found[n] - _expected(n)) <= 1 for n in names) >= len(names) - 1, found
  assert all(np.sign(found[n]) == np.sign(_expected(n)) for n in names), found
  lead, lag = results[0], results[1]
  # The generator's offset +5: the sound of video frame i is at audio frame i - 5, heard 200 ms early.
  assert lead.offset in (4, 5, 6) and lead.offset_ms == 40 * lead.offset
  assert f"AV offset: \t{lead.offset} (audio leads video by {40 * lead.offset} ms)" in lead.text()
  assert f"AV offset: \t{lag.offset} (audio lags video by {-40 * lag.offset} ms)" in lag.text()
  assert abs(lead.mode - lead.offset) <= 1 and abs(lead.offsets[lead.similarity.argmax()] - lead.offset) <= 1
  assert lead.windows_scored == lead.windows_total == 75 - 4
  assert results[5].info["source_fps"] == 30 and results[5].info["source_channels"] == 2
  detected = results[-1]
  assert detected.face_mode == "detected" and detected.face_coverage > 0.9 and detected.num_tracks == 1


def test_prepare_in_chunks(clips):
  """A video decoded in chunks (bounded memory): the same crops without detection; with detection, faces
  tracked per chunk cover the video, crops differ a little only near chunk ends, and the offset holds."""
  pp = preprocess_config()
  path = clips["face256_lag3"]  # 75 frames of 256x256
  chunk_mb = 20 * 256 * 256 * 3 / 2 ** 20  # 20 frames
  whole, chunked = (detect.model_inputs(path, pp, face_centered=True, chunk_mb=mb) for mb in (1024, chunk_mb))
  np.testing.assert_array_equal(chunked.faces[0].crops, whole.faces[0].crops)
  np.testing.assert_array_equal(chunked.features, whole.features)
  whole, chunked = (detect.model_inputs(path, pp, chunk_mb=mb) for mb in (1024, chunk_mb))
  # The chunks' tracks are joined into one face over the whole video.
  assert len(chunked.faces) == len(whole.faces) == 1 and chunked.faces[0].crops.shape == whole.faces[0].crops.shape
  assert chunked.valid.mean() > 0.9 and chunked.info == whole.info and chunked.num_tracks == 1
  difference = np.abs(chunked.faces[0].crops.astype(np.int16) - whole.faces[0].crops).mean(axis=(1, 2, 3))
  assert difference.mean() < 1.5 and np.all(difference[:15] == 0), difference.round(1)  # first chunk's start
  model = MouthEnergyScorer()
  assert detect.score(model, whole, 15).offset == _expected("face256_lag3")
  assert abs(detect.score(model, chunked, 15).offset - _expected("face256_lag3")) <= 1


def test_a_chunk_without_a_face_is_left_out(tmp_path):
  """Faces are tracked per chunk: a chunk where nobody is on screen is masked, the chunks around it count."""
  clip = synth.render_clip(17, synth.speaker_style(5, 2), 4.0, -3, size=256)
  frames = clip.frames.copy()
  frames[:40] = 128  # the first 1.6 s: no face (a cutaway)
  path = str(tmp_path / "cutaway.mp4")
  write_video(path, frames, 25.0, clip.audio, 16000, preset="ultrafast")
  inputs = detect.model_inputs(path, preprocess_config(), chunk_mb=20 * 256 * 256 * 3 / 2 ** 20)
  assert not inputs.valid[:40].any() and inputs.valid[40:].mean() > 0.9
  result = detect.score(MouthEnergyScorer(), inputs, 15)
  assert result.windows_scored < result.windows_total - 35 and abs(result.offset + 3) <= 1


def _packets(path):
  with av.open(path) as container:
    return [bytes(p) for p in container.demux(container.streams.video[0]) if p.dts is not None]


def test_correction_moves_audio_into_sync(clips, tmp_path):
  fixed = str(tmp_path / "fixed.mp4")
  info = write_corrected(clips["lag4"], fixed, -4)
  assert info["shift_ms"] == -160 and info["video_packets"] == 75
  assert _packets(fixed) == _packets(clips["lag4"])
  assert detect.detect(MouthEnergyScorer(), fixed, face_centered=True).offset in (-1, 0, 1)
  fixed30 = str(tmp_path / "fixed30.mkv")
  write_corrected(clips["fps30_lead6"], fixed30, 5)  # the offset as detected, in 25 fps frames
  assert _packets(fixed30) == _packets(clips["fps30_lead6"])
  assert detect.detect(MouthEnergyScorer(), fixed30, face_centered=True).offset in (-1, 0, 1)


def test_cli_batch_with_json_summary_plots_and_correction(trained_run, clips, tmp_path, capsys):
  names = ("lead5", "lag4")
  status, out, err = _sync(capsys, *(clips[n] for n in names), "--checkpoint", trained_run, "--face-centered",
                           "--json", "--workers", "1", "--summary", tmp_path / "summary.csv", "--plot",
                           tmp_path / "plots", "--correct", tmp_path / "fixed")
  assert status == 0, err
  rows = [json.loads(line) for line in out.splitlines()]
  assert [r["path"] for r in rows[:2]] == [clips[n] for n in names]
  for row, name in zip(rows, names):
    assert row["offsets_frames"] == list(range(-15, 16))
    assert len(row["similarity"]) == len(row["histogram"]) == len(row["mdist"]) == 31
    assert len(row["framewise_conf"]) == row["windows_scored"] == 71 and row["face_coverage"] == 1.0
    offset = row["av_offset_frames"]
    assert row["av_offset_ms"] == 40 * offset
    assert row["sign"] == ("in sync" if offset == 0 else
                           f"audio {'leads' if offset > 0 else 'lags'} video by {40 * abs(offset)} ms")
    assert row["min_dist"] == pytest.approx(min(row["mdist"]), abs=1e-3)
    assert row["confidence"] == pytest.approx(np.median(row["mdist"]) - min(row["mdist"]), abs=1e-3)
    with open(row["plot"], "rb") as f:
      assert row["plot"] == str(tmp_path / "plots" / f"{name}.png") and f.read(8) == b"\x89PNG\r\n\x1a\n"
    # The corrected copy: shifted by the detected offset, video packets untouched, re-checked.
    copy = row["corrected"]
    assert copy["path"] == str(tmp_path / "fixed" / f"{name}.mp4") and isinstance(copy["av_offset_frames"], int)
    assert _packets(copy["path"]) == _packets(clips[name])
  summary = rows[2]["summary"]
  assert summary["scored"] == 2 and summary["failed"] == 0
  assert summary["lse_d"] == pytest.approx(np.mean([r["min_dist"] for r in rows[:2]]), abs=1e-3)
  table = list(csv.DictReader((tmp_path / "summary.csv").open()))
  assert [r["path"] for r in table] == [clips[n] for n in names] + ["MEAN"]
  assert float(table[2]["confidence"]) == pytest.approx(summary["lse_c"])
  assert [int(r["corrected_av_offset_frames"]) for r in table[:2]] == [r["corrected"]["av_offset_frames"]
                                                                       for r in rows[:2]]


def test_an_interrupted_batch_resumes(trained_run, clips, tmp_path, capsys, monkeypatch):
  """sync --summary journals every finished file: after an interruption the rerun scores only the files not
  scored yet, corrects every file it must, and writes the whole summary; other settings are refused."""
  paths = [clips[n] for n in ("lead5", "lag4", "sync")]
  summary = tmp_path / "summary.jsonl"
  journal = tmp_path / "summary.jsonl.partial"
  args = [*paths, "--checkpoint", trained_run, "--face-centered", "--workers", "0", "--summary", summary,
          "--correct", tmp_path / "fixed"]
  score_files, asked = batch.detect_many, []

  def interrupted_after(count):
    def detect_many(model, files, **kwargs):
      asked.append(list(files))
      for i, result in enumerate(score_files(model, files, **kwargs)):
        if i == count:
          raise KeyboardInterrupt  # Ctrl-C or a preemption while the next file is scored
        yield result
    return detect_many

  monkeypatch.setattr(batch, "detect_many", interrupted_after(2))
  assert _sync(capsys, *args)[0] == 130
  assert not summary.exists()
  before = [json.loads(line) for line in journal.read_text().splitlines()]
  assert [row["path"] for row in before[1:]] == paths[:2] and before[0]["settings"]["max_offset_frames"] == 15

  # Other settings: refused with the journal named, and the journal kept.
  status, _, err = _sync(capsys, *args, "--max-offset-frames", "12")
  assert status == 2 and f"{journal}: an interrupted run with other settings (max_offset_frames 15 -> 12)" in err
  with journal.open("a") as f:
    f.write(json.dumps({**before[1], "path": str(tmp_path / "removed.mp4")}) + "\n")  # no longer an input
    f.write('{"path": "' + paths[2][:10])  # the line being written when the run was killed

  asked.clear()
  monkeypatch.setattr(batch, "detect_many", interrupted_after(99))
  status, out, err = _sync(capsys, *args)
  assert status == 0 and f"resuming {journal}: 2 of 3 files were scored before" in err
  assert asked[0] == paths[2:]  # scored: the third file only; re-checked: all three corrected copies
  assert sorted(asked[1]) == sorted(str(tmp_path / "fixed" / os.path.basename(p)) for p in paths)
  assert "3 scored: LSE-D" in out and not journal.exists()
  rows = [json.loads(line) for line in summary.read_text().splitlines()]
  assert [row["path"] for row in rows[:3]] == paths and rows[3]["summary"]["scored"] == 3
  for row, old in zip(rows, before[1:]):
    assert {k: v for k, v in row.items() if not k.startswith("corrected")} == {
        k: v for k, v in old.items() if not k.startswith("corrected")}
  assert all(isinstance(row["corrected_av_offset_frames"], int) for row in rows[:3])


def _write_plain(path, frames=None, audio=None, fps=25):
  write_video(path, frames, fps, audio, 16000, preset="ultrafast")
  return str(path)


def test_bad_inputs_fail_alone_in_a_batch(trained_run, clips, tmp_path, capsys):
  rng = np.random.default_rng(0)
  noise = (0.1 * rng.standard_normal(32000)).astype(np.float32)
  grey = np.full((50, 96, 96, 3), 120, np.uint8)
  bad = {
      "missing": (str(tmp_path / "missing.mp4"), "file not found"),
      "text": (str(tmp_path / "notes.mp4"), "not a media file"),
      "video only": (_write_plain(tmp_path / "silent.mp4", frames=grey), "no audio stream"),
      "audio only": (_write_plain(tmp_path / "voice.m4a", audio=noise), "no video stream"),
      "short": (_write_plain(tmp_path / "short.mp4", frames=grey[:30], audio=noise[:19200]),
                "too short: 30 frames"),
      "no face": (_write_plain(tmp_path / "noface.mp4", frames=grey, audio=noise), "no face found"),
  }
  (tmp_path / "notes.mp4").write_text("not a video\n")
  paths = [clips["face256_lag3"]] + [path for path, _ in bad.values()]
  status, out, err = _sync(capsys, *paths, "--checkpoint", trained_run, "--workers", "2")
  assert status == 1
  errors = [line for line in err.splitlines() if line.startswith("modeformer sync: error:")]
  assert len(errors) == len(bad)
  for (path, reason), line in zip(bad.values(), errors):
    assert line.startswith(f"modeformer sync: error: {path}: ") and reason in line, line
  assert "need at least 35 (5 + 2 x 15)" in errors[4]
  assert "--face-centered" in errors[5]
  # The good file finished, through the face detector, reported as syncnet_python prints it.
  report = out.split("\n\n")[0].splitlines()
  assert report[0] == f"== {clips['face256_lag3']}"
  assert [line.split(":")[0] for line in report[1:4]] == ["AV offset", "Min dist", "Confidence"]
  offset = int(report[1].split()[2])  # parseable like syncnet_python's "AV offset: \t3 "
  assert report[1].endswith(f"({describe_offset(offset, 25)})")
  assert any(line.startswith("Faces: \t") and "% of frames (1 track)" in line for line in report)
  assert "6 failed:" in out and "1 scored: LSE-D" in out

  # Bad arguments: status 2 before any file is read.
  assert _sync(capsys, clips["sync"], "--checkpoint", tmp_path / "nowhere")[0] == 2
  status, _, err = _sync(capsys, clips["sync"], "--checkpoint", trained_run, "--summary", tmp_path / "s.txt")
  assert status == 2 and "must end in .csv or .jsonl" in err
  assert _sync(capsys, clips["sync"], "--checkpoint", trained_run, "--which", "newest")[0] == 2
  assert _sync(capsys, clips["sync"], clips["lag4"], "--checkpoint", trained_run, "--correct", clips["lead5"])[0] == 2


def test_a_dying_worker_costs_only_its_file():
  # os.system as the work: cheap to import in a worker (a test module's function would pull in jax there),
  # and "kill -9 $PPID" dies the way a segfaulting decoder or the out-of-memory killer ends a worker.
  paths = ["true", "true", "kill -9 $PPID", "true", "true"]
  results = list(batch._in_workers(os.system, paths, workers=2))
  assert results[:2] == [0, 0] and results[3:] == [0, 0]
  assert results[2].path == paths[2] and "worker process reading it died" in results[2].reason


def test_workers_keep_to_their_share_of_the_threads():
  # Each worker's budget ($NPROC) is its share of this process's cores, or what the caller gives.
  share = cpu_cores.share_threads(2)
  assert share == max(1, len(cpu_cores.usable_cores()) // 2)
  assert list(batch._in_workers(os.system, [f'test "$NPROC" = {share}'] * 3, workers=2)) == [0, 0, 0]
  assert list(batch._in_workers(os.system, ['test "$NPROC" = 5'] * 2, workers=2, threads=5)) == [0, 0]


def test_the_thread_budget_sizes_xla_cpu_pool():
  # Why $NPROC is the budget's variable: XLA's CPU client sizes its thread pool by it, so a worker's jax
  # keeps to its share without pinning. Should a jax release drop that, this fails (16 cores' pool vs 1).
  program = ("import os, jax, jax.numpy as jnp; jax.jit(lambda a: a @ a)(jnp.ones((64, 64))).block_until_ready();"
             "print(len(os.listdir('/proc/self/task')))")
  threads = {n: int(subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True,
                                   env={**os.environ, "NPROC": str(n), "JAX_PLATFORMS": "cpu"}).stdout)
             for n in (1, 16)}
  assert threads[16] - threads[1] >= 12, threads


def test_the_moving_mouth_ranks_first(tmp_path):
  # Two faces OpenCV finds; only the right one moves its mouth. The left one is larger, so the detector's
  # own ranking (largest x longest) would put it first.
  from test_media import _draw_face

  frames = np.full((30, 240, 320, 3), 90, np.uint8)
  for i in range(30):
    _draw_face(frames[i], 90, 120, 52, mouth_open=0.2)
    _draw_face(frames[i], 235, 120, 42, mouth_open=(0.1, 0.9, 0.5)[i % 3])
  track = detect.faces.detect_faces(frames, preprocess_config())
  assert track.num_tracks == 2 and track.boxes[0, 0] < 160
  stitcher = tracks.Stitcher(preprocess_config())
  stitcher.add(frames, track)
  ranked = stitcher.faces(30)
  assert len(ranked) == 2 and ranked[0].boxes[0, 0] > 160 and ranked[0].crops.shape == (30, 96, 96, 3)


def test_trained_model_finds_offsets(trained_run, tmp_path):
  """The conftest's briefly trained tiny model, on clips of speakers it never saw, framed as it was trained
  (data.synthetic_face_scale): detected offsets within +-1 frame and the sign right on most clips."""
  from modeformer_jax.inference import load_sync_model
  model = load_sync_model(trained_run)
  scale = model.config.data.synthetic_face_scale
  truth = {-6: 11, -3: 12, 0: 13, 4: 14, 7: 15}  # offset -> seed; speaker styles of an unseen seed
  found = {}
  for offset, seed in truth.items():
    clip = synth.render_clip(seed, synth.speaker_style(99, seed), 4.0, offset, size=96, face_scale=scale)
    path = str(tmp_path / f"clip{offset}.mp4")
    write_video(path, clip.frames, 25.0, clip.audio, 16000, preset="ultrafast")
    found[offset] = detect.detect(model, path, face_centered=True).offset
  print("trained model, true -> detected offsets:", found)
  assert sum(abs(found[o] - o) <= 1 for o in truth) >= 4, found  # within +-1 of -6, -3, 4, 7: the sign too
