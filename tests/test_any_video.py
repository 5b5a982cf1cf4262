"""Any video a user has: frame rates, variable frame rate, rotated phone video, several audio streams, a face that
leaves and comes back, and files that cannot be used (no video, no audio, too short). Each gives the right
offset or one line naming the file and the reason; none crashes `modeformer sync`."""

from fractions import Fraction

import av
import numpy as np
import pytest

from modeformer_jax import cli
from modeformer_jax.data import synth
from modeformer_jax.media.decode import read_media
from modeformer_jax.media.encode import add_audio_stream, encode_audio, write_video
from modeformer_jax.sync import detect
from test_sync import MouthEnergyScorer

SPEAKER = synth.speaker_style(5, 0)  # the face and voice of test_sync's "lead5" clip


def _clip(fps: float, offset: int, seconds: float = 3.0, seed: int = 11, size: int = 160):
  return synth.render_clip(seed, SPEAKER, seconds, offset, size=size, fps=fps)


def _write(path, frames, times, audio, sample_rate=16000, rotation=0, audio_streams=(("main", True),), rate=25):
  """An mp4 with frames shown at `times` (seconds, multiples of 1 / rate), a display rotation, and audio
  streams: ("main", default?) carries `audio`, ("noise", default?) a different signal."""
  with av.open(str(path), "w") as container:
    video = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
    video.height, video.width = frames.shape[1:3]
    video.pix_fmt = "yuv420p"
    if rotation:
      video.set_display_rotation(rotation)
    streams = []
    for kind, default in audio_streams:
      signal = audio if kind == "main" else np.random.default_rng(0).uniform(-0.3, 0.3, len(audio))
      stream = add_audio_stream(container, signal, sample_rate, None)
      stream.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
      streams.append((stream, signal))
    for image, t in zip(frames, times):
      frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
      frame.pts, frame.time_base = round(t * rate), Fraction(1, rate)
      container.mux(video.encode(frame))
    container.mux(video.encode(None))
    for stream, signal in streams:
      encode_audio(container, stream, signal, sample_rate)
  return str(path)


@pytest.mark.integration
@pytest.mark.parametrize("fps", [24, 30000 / 1001, 30, 50, 60])
def test_common_frame_rates(tmp_path, fps):
  """The same speech at 24..60 fps, its audio 200 ms early: found as +5 frames at the model's 25 fps."""
  offset = round(0.2 * fps)
  clip = _clip(fps, offset)
  path = str(tmp_path / "clip.mp4")
  write_video(path, clip.frames, fps, clip.audio, 16000, preset="ultrafast")
  result = detect.detect(MouthEnergyScorer(), path, face_centered=True)
  assert abs(result.offset - 5) <= 1, (fps, result.offset)
  assert result.info["source_fps"] == pytest.approx(fps, abs=0.01)


@pytest.mark.integration
def test_variable_frame_rate(tmp_path):
  """Frames at irregular times (a 50 fps render with 40% of its frames dropped at random, as phones and
  screen recorders write): each output frame shows the source frame on screen at its time, offset found."""
  clip = _clip(50, 10)  # 200 ms early
  keep = np.sort(np.random.default_rng(1).choice(len(clip.frames), int(0.6 * len(clip.frames)), replace=False))
  keep[0] = 0
  path = _write(tmp_path / "vfr.mp4", clip.frames[keep], keep / 50, clip.audio, rate=1000)
  media = read_media(path)
  # 3 s at 25 fps, whatever the source's timing (the last frame lasts as long as the gap before it)
  assert media.num_frames in (74, 75)
  shown = np.searchsorted(keep / 50, np.arange(media.num_frames) / 25 + 1e-6, side="right") - 1
  error = np.abs(media.frames.astype(np.float32) - clip.frames[keep][shown]).mean()
  assert error < 4, error  # compression only
  assert abs(detect.detect(MouthEnergyScorer(), path, face_centered=True).offset - 5) <= 1


@pytest.mark.integration
def test_rotated_phone_video(tmp_path):
  """Stored sideways with a display matrix saying 'turn 90 degrees': decoded upright, offset found."""
  clip = _clip(25, -4)
  sideways = np.rot90(clip.frames, k=-1, axes=(1, 2))
  path = _write(tmp_path / "phone.mp4", sideways, np.arange(len(sideways)) / 25, clip.audio, rotation=90)
  media = read_media(path)
  assert media.rotation == 90 and media.frames.shape[1:3] == clip.frames.shape[1:3]
  assert np.abs(media.frames.astype(np.float32) - clip.frames).mean() < 4
  result = detect.detect(MouthEnergyScorer(), path, face_centered=True)
  assert abs(result.offset + 4) <= 1 and "turned 90 deg upright" in result.text()


@pytest.mark.integration
def test_several_audio_streams(tmp_path):
  """Two audio streams, the speech in the one marked default (the second): that one is used."""
  clip = _clip(25, 5)
  path = _write(tmp_path / "dub.mp4", clip.frames, np.arange(len(clip.frames)) / 25, clip.audio,
                audio_streams=(("noise", False), ("main", True)))
  media = read_media(path)
  assert media.audio_streams == 2
  np.testing.assert_allclose(media.audio[:16000], clip.audio[:16000], atol=0.05)
  result = detect.detect(MouthEnergyScorer(), path, face_centered=True)
  assert abs(result.offset - 5) <= 1 and "default of 2 audio streams" in result.text()


@pytest.mark.integration
def test_face_leaves_and_comes_back(tmp_path):
  """A second and a half without the face (the speaker steps out), then the face again, elsewhere: the
  frames without it are left out, the rest scores the offset; coverage says how much was used."""
  clip = _clip(25, 5, seconds=4.0, size=256)
  frames = clip.frames.copy()
  empty = frames[0, :40, :40].mean(axis=(0, 1)).astype(np.uint8)  # the background's colour
  frames[40:78] = empty
  frames[78:] = np.roll(frames[78:], 40, axis=2)  # back, 40 px further right
  path = str(tmp_path / "away.mp4")
  write_video(path, frames, 25.0, clip.audio, 16000, preset="ultrafast")
  result = detect.detect(MouthEnergyScorer(), path)
  assert 0.5 < result.face_coverage < 0.7, result.face_coverage
  assert abs(result.offset - 5) <= 1
  assert result.windows_scored < result.windows_total - 30


@pytest.mark.e2e
def test_unusable_files_give_one_line_each(tmp_path, capsys, trained_run):
  """Audio only, video only, too short, one frame, not a video: each is one line naming the file and
  why, the good file still scores, and the exit status is 1."""
  clip = _clip(25, 0, seconds=2.0)
  files = {
      "good.mp4": lambda p: write_video(p, clip.frames, 25.0, clip.audio, 16000, preset="ultrafast"),
      "audio_only.m4a": lambda p: write_video(p, None, 25.0, clip.audio, 16000),
      "video_only.mp4": lambda p: write_video(p, clip.frames, 25.0, None, preset="ultrafast"),
      "short.mp4": lambda p: write_video(p, clip.frames[:20], 25.0, clip.audio[:12800], 16000, preset="ultrafast"),
      "one_frame.mp4": lambda p: write_video(p, clip.frames[:1], 25.0, clip.audio[:640], 16000),
      "text.mp4": lambda p: p.write_text("not a video\n"),
  }
  for name, make in files.items():
    make(tmp_path / name)
  reasons = {"audio_only.m4a": "no video stream", "video_only.mp4": "no audio stream", "short.mp4": "too short",
             "one_frame.mp4": "too short", "text.mp4": "not a media file"}
  status = cli.main(["sync", *(str(tmp_path / n) for n in files), "--checkpoint", trained_run, "--face-centered",
                     "--workers", "0"])
  out, err = capsys.readouterr()
  assert status == 1
  for name, reason in reasons.items():
    lines = [line for line in (out + err).splitlines() if f"{name}: " in line and reason in line]
    assert lines, (name, out, err)
  assert "Traceback" not in out + err
  assert f"{tmp_path / 'good.mp4'}" in out and "1 scored" in out
