"""The synthetic LRS2/LRS3 stand-in: layout and file formats, decodable media, determinism, the offset sign
convention (checked on decoded mp4s), face placement, resume, and the encoder's corner cases."""

import json
import os
import re

import av
import numpy as np
import pytest

from modeformer_jax import cli
from modeformer_jax.data import synth
from modeformer_jax.media.encode import write_video

pytestmark = pytest.mark.unit


def _decode(path):
  """(frames uint8 [T, H, W, 3], audio float32 [C, S] trimmed to the stream duration, info dict)."""
  with av.open(str(path)) as container:
    info = {"streams": sorted(s.type for s in container.streams)}
    video, audio = [], []
    if container.streams.video:
      stream = container.streams.video[0]
      info.update(fps=float(stream.average_rate), width=stream.width, height=stream.height)
    if container.streams.audio:
      stream = container.streams.audio[0]
      info.update(sample_rate=stream.rate, channels=stream.channels,
                  audio_seconds=float(stream.duration * stream.time_base))
    for frame in container.decode(*container.streams):
      if isinstance(frame, av.VideoFrame):
        video.append(frame.to_ndarray(format="rgb24"))
      else:
        audio.append(frame.to_ndarray())
  frames = np.stack(video) if video else None
  samples = np.concatenate(audio, axis=1) if audio else None
  if samples is not None:  # AAC decodes whole 1024-sample frames; the container holds the true length
    samples = samples[:, :round(info["audio_seconds"] * info["sample_rate"])]
  return frames, samples, info


def _envelope(audio, samples_per_frame):
  """Log RMS per video frame, [T]."""
  n = len(audio) // samples_per_frame
  blocks = audio[:n * samples_per_frame].reshape(n, samples_per_frame)
  return np.log(np.sqrt(np.mean(blocks ** 2, axis=1)) + 1e-4)


def _best_lag(mouth_open, envelope, max_lag=10):
  """The lag maximising corr(mouth_open[i], envelope[i - lag]): the offset under SPEC section 6."""
  scores = {}
  for lag in range(-max_lag, max_lag + 1):
    i = np.arange(len(mouth_open))
    keep = (i - lag >= 0) & (i - lag < len(envelope))
    scores[lag] = np.corrcoef(mouth_open[i[keep]], envelope[i[keep] - lag])[0, 1]
  return max(scores, key=scores.get)


def _run_cli(*argv):
  return cli.main(["synth", *map(str, argv)])


@pytest.fixture(scope="module")
def lrs2(tmp_path_factory):
  out = tmp_path_factory.mktemp("lrs2")
  rows = synth.write_dataset(out, "lrs2", speakers=4, clips_per_speaker=2, seconds=2.0, seed=7,
                             offsets_frames=(-5, 4), offset_fraction=0.75, workers=2, progress=False)
  return out, rows


@pytest.fixture(scope="module")
def lrs3(tmp_path_factory):
  out = tmp_path_factory.mktemp("lrs3")
  rows = synth.write_dataset(out, "lrs3", speakers=3, clips_per_speaker=1, seconds=1.0, seed=3, workers=1,
                             progress=False)
  return out, rows


def test_render_is_deterministic_per_seed():
  style = synth.speaker_style(0, 1)
  a, b = synth.render_clip(11, style, 1.0), synth.render_clip(11, style, 1.0)
  for name in ("frames", "audio", "face_boxes", "mouth_centers", "mouth_open"):
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
  assert a.transcript == b.transcript
  assert a.frames.shape == (25, 160, 160, 3) and a.frames.dtype == np.uint8
  assert a.audio.shape == (16000,) and a.audio.dtype == np.float32 and np.abs(a.audio).max() <= 1
  c = synth.render_clip(12, style, 1.0)
  assert not np.array_equal(a.audio, c.audio) and not np.array_equal(a.frames, c.frames)
  assert synth.speaker_style(0, 1) == style != synth.speaker_style(0, 2)


def test_offset_moves_audio_by_whole_frames_without_padding():
  """offset k > 0: the audio leads, so shifted[n] = in_sync[n + 640 k]; the uncovered end is new speech."""
  style = synth.speaker_style(5, 0)
  base = synth.render_clip(21, style, 2.0)
  for k in (3, -4):
    shifted = synth.render_clip(21, style, 2.0, offset_frames=k)
    np.testing.assert_array_equal(shifted.frames, base.frames)
    s = 640 * abs(k)
    if k > 0:
      np.testing.assert_allclose(shifted.audio[:-s], base.audio[s:], atol=1e-6)
      tail = shifted.audio[-s:]
    else:
      np.testing.assert_allclose(shifted.audio[s:], base.audio[:-s], atol=1e-6)
      tail = shifted.audio[:s]
    assert len(shifted.audio) == len(base.audio)
    assert np.abs(tail).max() > 0.01  # rendered, not zero padding


def test_lrs2_layout_and_files(lrs2):
  out, rows = lrs2
  assert len(rows) == 8 and [r["path"] for r in rows] == [r["path"] for r in synth.read_manifest(out)]
  splits = {}
  for row in rows:
    assert re.fullmatch(r"\d{19}", row["speaker"]) and re.fullmatch(r"\d{5}", row["clip"])
    top = "pretrain" if row["split"] == "pretrain" else "main"
    assert row["path"] == f"mvlrs_v1/{top}/{row['speaker']}/{row['clip']}.mp4"
    splits.setdefault(row["speaker"], set()).add(row["split"])
  assert all(len(s) == 1 for s in splits.values())  # no speaker in two splits
  assert {s for (s,) in splits.values()} == {"pretrain", "train", "val", "test"}
  for split in ("pretrain", "train", "val", "test"):
    lines = (out / f"{split}.txt").read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(
        f"{r['speaker']}/{r['clip']}" for r in rows if r["split"] == split)
    assert all(line.endswith(" NF") == (split == "test") for line in lines)
  text = (out / rows[0]["path"]).with_suffix(".txt").read_text().splitlines()
  assert text[0].startswith("Text:  ") and re.fullmatch(r"Conf:  \d+", text[1]) and text[2] == ""
  assert text[3] == "WORD START END ASDSCORE"
  words = [line.split() for line in text[4:]]
  assert [w[0] for w in words] == text[0][len("Text:  "):].split()
  assert all(0 <= float(w[1]) <= float(w[2]) <= 2.0 for w in words)


def test_lrs2_mp4s_decode(lrs2):
  out, rows = lrs2
  for row in rows[:3]:
    frames, audio, info = _decode(out / row["path"])
    assert info["streams"] == ["audio", "video"]
    assert frames.shape == (row["num_frames"], 160, 160, 3) == (50, 160, 160, 3)
    assert info["fps"] == 25 and info["sample_rate"] == 16000 and info["channels"] == 1
    assert audio.shape == (1, 32000) and info["audio_seconds"] == pytest.approx(2.0)
    assert row["bytes"] == os.path.getsize(out / row["path"])


def test_offset_sign_survives_encoding(lrs2):
  """The decoded audio's envelope against the manifest's mouth opening peaks at the recorded offset (> 0:
  audio leads, so the sound of frame i is at audio frame i - offset)."""
  out, rows = lrs2
  assert {r["offset_frames"] for r in rows} == {-5, 0, 4}
  for row in rows:
    _, audio, _ = _decode(out / row["path"])
    lag = _best_lag(np.array(row["mouth_open"]), _envelope(audio[0], 640))
    assert abs(lag - row["offset_frames"]) <= 1, (row["path"], lag, row["offset_frames"])


def test_lrs2_mouth_in_lower_half_of_centred_96_crop(lrs2):
  _, rows = lrs2
  for row in rows:
    centres = np.array(row["mouth_centers"]) * 96 / 160
    assert centres[:, 1].min() > 52 and centres[:, 1].max() < 90  # rows 48..95, with room for the lips
    assert np.abs(centres[:, 0] - 48).max() < 12


def test_lrs3_layout_face_boxes_and_decode(lrs3):
  out, rows = lrs3
  assert {r["split"] for r in rows} == {"pretrain", "trainval", "test"}
  for row in rows:
    assert re.fullmatch(r"[A-Za-z0-9_-]{11}", row["speaker"])
    assert row["path"] == f"{row['split']}/{row['speaker']}/{row['clip']}.mp4"
    lines = (out / row["path"]).with_suffix(".txt").read_text().splitlines()
    assert lines[0].startswith("Text:  ") and lines[1].startswith("Conf:  ") and lines[2] == ""
    assert lines[3].split() == ["FRAME", "X", "Y", "W", "H"]
    table = np.array([line.split() for line in lines[4:4 + row["num_frames"]]], dtype=float)
    assert table.shape == (25, 5) and list(table[:, 0]) == list(range(25))
    assert table[:, 1:].min() >= 0 and table[:, 1:].max() <= 1
    np.testing.assert_allclose(table[:, 1:] * 224, row["face_boxes"], atol=0.6)
    assert lines[4 + 25] == "" and lines[5 + 25] == "WORD START END ASDSCORE"
    frames, audio, info = _decode(out / row["path"])
    assert frames.shape == (25, 224, 224, 3) and audio.shape == (1, 16000) and info["fps"] == 25
    # The face box holds the face: its centre is skin, not background.
    x, y, w, h = row["face_boxes"][0]
    assert abs(x + w / 2 - 112) < 25 and abs(y + h / 2 - 112) < 30


def test_resume_skips_finished_clips(tmp_path):
  kwargs = dict(layout="lrs2", speakers=2, clips_per_speaker=2, seconds=0.6, seed=1, workers=1,
                progress=False)
  rows = synth.write_dataset(tmp_path, **kwargs)
  mtimes = {r["path"]: (tmp_path / r["path"]).stat().st_mtime_ns for r in rows}
  # Interrupted run: one clip's files gone, the manifest ends in a torn line.
  (tmp_path / rows[1]["path"]).unlink()
  (tmp_path / rows[1]["path"]).with_name(".00002.123.partial.mp4").write_bytes(b"half a file")
  manifest = tmp_path / synth.MANIFEST
  manifest.write_text(manifest.read_text() + '{"path": "mvlrs_v1/ma')
  again = synth.write_dataset(tmp_path, **kwargs)
  assert again == synth.read_manifest(tmp_path)
  assert [r["path"] for r in again] == [r["path"] for r in rows]
  without_size = lambda row: {k: v for k, v in row.items() if k != "bytes"}
  assert without_size(again[1]) == without_size(rows[1])
  for row in rows:
    changed = (tmp_path / row["path"]).stat().st_mtime_ns != mtimes[row["path"]]
    assert changed == (row["path"] == rows[1]["path"])
  # Other settings are other clips: nothing is reused.
  longer = synth.write_dataset(tmp_path, **{**kwargs, "seconds": 0.8})
  assert all((tmp_path / r["path"]).stat().st_mtime_ns != mtimes[r["path"]] for r in longer[2:])
  assert all(r["num_frames"] == 20 for r in longer)
  assert not list(tmp_path.rglob("*.partial*"))


def test_cli_fps_sample_rate_channels(tmp_path, capsys):
  out = tmp_path / "ds"
  assert _run_cli("--out", out, "--layout", "lrs3", "--speakers", 1, "--clips-per-speaker", 1, "--seconds", 1,
                  "--fps", 30, "--sample-rate", 44100, "--channels", 2, "--workers", 1, "--json") == 0
  summary = json.loads(capsys.readouterr().out)
  assert summary["clips"] == 1 and summary["clips_per_split"] == {"trainval": 1}
  (row,) = synth.read_manifest(out)
  frames, audio, info = _decode(out / row["path"])
  assert info["fps"] == 30 and frames.shape == (30, 224, 224, 3) and row["num_frames"] == 30
  assert info["sample_rate"] == 44100 and info["channels"] == 2 and audio.shape == (2, 44100)
  assert np.corrcoef(audio)[0, 1] > 0.999  # the same signal, up to AAC's stereo coding
  lag = _best_lag(np.array(row["mouth_open"]), _envelope(audio[0], 1470))
  assert abs(lag) <= 1


def test_cli_offsets_and_errors(tmp_path, capsys):
  out = tmp_path / "ds"
  assert _run_cli("--out", out, "--speakers", 3, "--clips-per-speaker", 2, "--seconds", 0.4, "--workers", 1,
                  "--offsets-frames=-6,3", "--offset-fraction", 1, "--json") == 0
  summary = json.loads(capsys.readouterr().out)
  assert summary["shifted_clips"] == 6 and summary["speakers"] == {"train": 1, "val": 1, "test": 1}
  assert {r["offset_frames"] for r in synth.read_manifest(out)} <= {-6, 3}
  bad = [("--offsets-frames", "a,b"), ("--offset-fraction", "0.3"), ("--speakers", "0"), ("--channels", "9"),
         ("--sample-rate", "9000")]
  for flag, value in bad:
    assert _run_cli("--out", tmp_path / "bad", flag, value) == 2
    err = capsys.readouterr().err
    assert err.startswith("modeformer synth: error: ") and err.count("\n") == 1
  (tmp_path / "file").write_text("x")
  assert _run_cli("--out", tmp_path / "file") == 2
  assert "not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("speakers", range(1, 13))
def test_speaker_splits(speakers):
  lrs2, lrs3 = synth.speaker_splits("lrs2", speakers), synth.speaker_splits("lrs3", speakers)
  assert len(lrs2) == len(lrs3) == speakers
  assert "train" in lrs2 and "trainval" in lrs3
  if speakers >= 3:
    assert {"val", "test"} <= set(lrs2) and "test" in lrs3


def test_encoder_single_stream_files_and_audio_timing(tmp_path):
  clicks = np.zeros(16000, np.float32)
  clicks[8000:8016] = 0.9  # at 0.5 s
  write_video(tmp_path / "a.mp4", None, audio=clicks, sample_rate=16000)
  frames, audio, info = _decode(tmp_path / "a.mp4")
  assert frames is None and info["streams"] == ["audio"]
  assert abs(int(np.argmax(np.abs(audio[0]))) - 8008) <= 16  # AAC priming delay is compensated
  video = np.zeros((10, 32, 48, 3), np.uint8)
  video[:, :, :, 0] = np.arange(10)[:, None, None] * 20
  write_video(tmp_path / "v.mp4", video, fps=10)
  frames, audio, info = _decode(tmp_path / "v.mp4")
  assert audio is None and info["streams"] == ["video"] and frames.shape == (10, 32, 48, 3)
  assert np.abs(frames[..., 0].mean(axis=(1, 2)) - np.arange(10) * 20).max() < 4
  with pytest.raises(ValueError):
    write_video(tmp_path / "n.mp4", None, audio=None)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "v.mp4"]
