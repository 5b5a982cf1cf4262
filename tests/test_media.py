"""Media layer: decoding and timestamp resampling, log-mel, LRS3 boxes, face detection / tracking, crops."""

import os
import threading
import time
from fractions import Fraction

import av
import cv2
import librosa
import numpy as np
import pytest
import scipy.signal

from modeformer_jax.errors import UserError
from modeformer_jax.media import decode, faces, frames, logmel
from modeformer_jax.media.crops import crop_squares, face_crops, faces_crops, mouth_rows
from modeformer_jax.media.preprocess_config import preprocess_config, syncnet_preprocess_config

pytestmark = pytest.mark.unit

_TICKS = 90000  # video time base of the test files: exact for 25, 29.97, 30 and 50 fps and for ms jitter
_BITS = 8  # frames show their index as 8 black/white vertical stripes, which survive H.264 intact


@pytest.fixture(scope="module")
def cfg():
  return preprocess_config()


def _index_frame(i: int, height: int = 48, width: int = 64) -> np.ndarray:
  bits = (i >> np.arange(_BITS)) & 1
  row = np.repeat(bits * 255, width // _BITS).astype(np.uint8)
  return np.broadcast_to(row[None, :, None], (height, width, 3)).copy()


def _read_index(frame: np.ndarray) -> int:
  width = frame.shape[1]
  centres = frame[frame.shape[0] // 2, width // _BITS // 2::width // _BITS].mean(axis=-1)
  return int(((centres > 128) << np.arange(_BITS)).sum())


def _write(path, times=None, audio=None, sample_rate=16000, audio_start=0, fps=25):
  """Writes H.264 frames showing their index at `times` (seconds) and/or AAC audio [S, C].

  `fps` is the nominal rate; the muxer gives the last frame a duration of 1 / fps.
  """
  with av.open(str(path), "w") as container:
    video = stream = None
    if times is not None:
      video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                   options={"crf": "10", "preset": "ultrafast"})
      video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
      video.codec_context.time_base = Fraction(1, _TICKS)
    if audio is not None:
      layout = {1: "mono", 2: "stereo"}[audio.shape[1]]
      stream = container.add_stream("aac", rate=sample_rate, layout=layout)
    if video is not None:
      for i, t in enumerate(times):
        frame = av.VideoFrame.from_ndarray(_index_frame(i), format="rgb24")
        frame.pts, frame.time_base = round(t * _TICKS), Fraction(1, _TICKS)
        container.mux(video.encode(frame))
      container.mux(video.encode(None))
    if stream is not None:
      if not stream.codec_context.is_open:
        stream.codec_context.open()
      planar = np.ascontiguousarray(audio.T, np.float32)
      step = stream.codec_context.frame_size
      for start in range(0, planar.shape[1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start:start + step]), format="fltp",
                                           layout=layout)
        frame.sample_rate, frame.pts = sample_rate, audio_start + start
        container.mux(stream.encode(frame))
      container.mux(stream.encode(None))
  return str(path)


def _stereo_sine(seconds, sample_rate, freq=440.0, left=0.6, right=0.2):
  t = np.arange(round(seconds * sample_rate)) / sample_rate
  s = np.sin(2 * np.pi * freq * t)
  return np.stack([left * s, right * s], axis=1)


def _expected_sources(times, count, fps=25.0):
  """Nearest-previous source frame for each output time i / fps."""
  return np.maximum(np.searchsorted(times, np.arange(count) / fps + 1e-9, side="right") - 1, 0)


# ---------------------------------------------------------------------------------------------------------
# Decoding.


@pytest.mark.parametrize("fps, sample_rate", [(25, 44100), (30000 / 1001, 48000), (30, 44100), (50, 48000)])
def test_decode_resamples_constant_rates(tmp_path, fps, sample_rate):
  num = round(2.0 * fps)
  times = np.arange(num) / fps
  duration = num / fps
  path = _write(tmp_path / "clip.mp4", times, _stereo_sine(duration, sample_rate), sample_rate, fps=fps)
  m = decode.read_media(path)
  assert m.frames.dtype == np.uint8 and m.frames.shape[1:] == (48, 64, 3)
  assert abs(len(m.frames) - round(duration * 25)) <= 1
  shown = [_read_index(f) for f in m.frames]
  np.testing.assert_array_equal(shown, _expected_sources(times, len(m.frames)))
  assert m.source_fps == pytest.approx(fps, rel=0.01)  # the container's average, from its duration
  assert (m.source_sample_rate, m.source_channels) == (sample_rate, 2)

  assert m.audio.dtype == np.float32 and m.audio.ndim == 1 and np.abs(m.audio).max() <= 1
  assert abs(len(m.audio) - duration * 16000) <= 16
  assert m.audio_seconds == pytest.approx(duration, abs=1e-3)
  assert m.video_seconds == pytest.approx(duration, abs=1e-3)
  assert abs(m.av_diff_seconds) < 1e-3
  spectrum = np.abs(np.fft.rfft(m.audio * np.hanning(len(m.audio))))
  assert np.fft.rfftfreq(len(m.audio), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=2)
  # Downmix is the channel mean: (0.6 + 0.2) / 2 = 0.4 peak, 0.283 RMS.
  assert np.sqrt(np.mean(m.audio[1000:-1000] ** 2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.05)


def test_decode_variable_frame_rate(tmp_path):
  rng = np.random.default_rng(0)
  times = np.concatenate([[0.0], np.cumsum(rng.uniform(0.005, 0.09, 40))])
  path = _write(tmp_path / "vfr.mp4", times)
  m = decode.read_media(path, need_audio=False)
  assert m.audio is None
  np.testing.assert_array_equal([_read_index(f) for f in m.frames], _expected_sources(times, len(m.frames)))
  # The last frame lasts about one average interval, so the video ends near times[-1] + mean step.
  assert abs(len(m.frames) - round((times[-1] + np.diff(times).mean()) * 25)) <= 2


def test_streams_keep_their_offset(tmp_path):
  """Video starting 0.2 s after the audio: frame 0 repeats the first picture until 0.2 s."""
  times = 0.2 + np.arange(10) * 0.04
  path = _write(tmp_path / "late.mp4", times, _stereo_sine(0.6, 16000), 16000)
  m = decode.read_media(path)
  assert [_read_index(f) for f in m.frames] == [0] * 5 + list(range(10))
  assert len(m.audio) == 9600 and m.av_diff_seconds == pytest.approx(0.0, abs=1e-3)


_VARIABLE_RATE = np.concatenate([[0.0], np.cumsum(np.random.default_rng(1).uniform(0.005, 0.09, 40))])


@pytest.mark.parametrize("times", [np.arange(50) * 0.04, _VARIABLE_RATE], ids=["25fps", "variable"])
def test_decode_in_chunks_gives_the_same_frames(tmp_path, times):
  """on_frames gets the frames read_media would keep, in order, in chunks of at most chunk_mb."""
  path = _write(tmp_path / "clip.mp4", times, _stereo_sine(2.0, 16000), 16000)
  whole = decode.read_media(path)
  chunks = []  # converted copies: a chunk is only valid during the call
  streamed = decode.read_media(path, on_frames=lambda c: chunks.append(np.asarray(c)),
                               chunk_mb=7 * whole.frames[0].nbytes / 2 ** 20)
  assert streamed.frames is None and streamed.num_frames == whole.num_frames == len(whole.frames)
  assert len(chunks) == -(-len(whole.frames) // 7) and max(len(c) for c in chunks) == 7
  np.testing.assert_array_equal(np.concatenate(chunks), whole.frames)
  np.testing.assert_array_equal(streamed.audio, whole.audio)


def test_chunks_are_worked_on_while_the_next_decodes(tmp_path, monkeypatch):
  """on_frames runs on a thread of its own, one chunk at a time and in order, while the decoder fills the next
  chunk; read_media returns after the last call and raises what a call raised."""
  path = _write(tmp_path / "clip.mp4", np.arange(40) * 0.04, _stereo_sine(1.6, 16000), 16000)
  chunk_mb = 10 * decode.read_media(path, need_audio=False).frames[0].nbytes / 2 ** 20
  appended = []  # output frames the decoder has placed, as the work on a chunk sees it
  append = decode._VideoSampler._append
  monkeypatch.setattr(decode._VideoSampler, "_append", lambda self, frame: appended.append(1) or append(self, frame))
  calls, busy = [], threading.Lock()

  def work(chunk: frames.FrameChunk) -> None:
    assert busy.acquire(blocking=False), "two chunks worked on at once"
    try:
      calls.append((threading.get_ident(), len(chunk)))
      if len(calls) == 1:  # the decoder goes on meanwhile: it fills the second chunk
        deadline = time.monotonic() + 30
        while len(appended) <= 20 and time.monotonic() < deadline:
          time.sleep(0.01)
        assert len(appended) > 20, "no frame decoded while the first chunk was worked on"
      time.sleep(0.02)
    finally:
      busy.release()

  m = decode.read_media(path, on_frames=work, chunk_mb=chunk_mb)
  assert [n for _, n in calls] == [10, 10, 10, 10] and m.num_frames == 40
  assert len({ident for ident, _ in calls}) == 1 and calls[0][0] != threading.get_ident()

  def fail_on_the_second(chunk: frames.FrameChunk) -> None:
    if calls.append(0) or len(calls) == 6:
      raise RuntimeError("bad chunk")

  with pytest.raises(RuntimeError, match="bad chunk"):
    decode.read_media(path, on_frames=fail_on_the_second, chunk_mb=chunk_mb)


def test_chunk_frames_read_by_parts_equal_the_whole_frames(tmp_path):
  """A FrameChunk's frames, read by index or iterated and sliced (only the slice is converted from YUV), are the
  frames read_media keeps, pixel for pixel, for parts with odd and even bounds and parts past the edges."""
  rng = np.random.default_rng(3)
  path = str(tmp_path / "colour.mp4")
  with av.open(path, "w") as container:
    stream = container.add_stream("libx264", rate=25, options={"crf": "18", "preset": "ultrafast"})
    stream.width, stream.height, stream.pix_fmt = 90, 66, "yuv420p"
    for _ in range(6):  # smooth colour noise: every 2x2 block's chroma differs from its neighbours'
      noise = cv2.resize(rng.integers(0, 256, (11, 15, 3), np.uint8), (90, 66), interpolation=cv2.INTER_CUBIC)
      container.mux(stream.encode(av.VideoFrame.from_ndarray(noise, format="rgb24")))
    container.mux(stream.encode(None))
  whole = decode.read_media(path, need_audio=False).frames
  parts = [(slice(0, 66), slice(0, 90)), (slice(1, 8), slice(3, 4)), (slice(10, 31), slice(16, 64)),
           (slice(33, 66), slice(45, 200)), (slice(-5, None), slice(None, 7))]
  seen = []

  def check(chunk: frames.FrameChunk) -> None:
    assert chunk.shape == (len(chunk), 66, 90, 3)
    frames = whole[len(seen):len(seen) + len(chunk)]
    np.testing.assert_array_equal(chunk[1], frames[1])  # by index: converted whole, and kept
    syncnet = syncnet_preprocess_config()
    syncnet.syncnet_median_frames = 1  # its zero-padded median needs a track longer than 3 frames
    for pp in (preprocess_config(), syncnet):  # two faces cropped in one pass, as from arrays
      boxes = [np.tile([[5.0, 3.0, 20.0, 24.0]], (len(chunk), 1)), np.tile([[51, 30.5, 33, 33]], (len(chunk), 1))]
      for (crops, squares), one in zip(faces_crops(chunk, boxes, pp), boxes):
        expected, expected_squares = face_crops(frames, one, pp)
        np.testing.assert_array_equal(crops, expected)
        np.testing.assert_array_equal(squares, expected_squares)
    for frame in chunk:
      for rows, cols in parts:
        np.testing.assert_array_equal(frame[rows, cols], whole[len(seen)][rows, cols])
      seen.append(True)

  decode.read_media(path, need_audio=False, on_frames=check, chunk_mb=3 * whole[0].nbytes / 2 ** 20)
  assert len(seen) == len(whole) == 6


def test_audio_starting_late_gets_leading_silence(tmp_path):
  path = _write(tmp_path / "alate.mp4", np.arange(10) * 0.04, _stereo_sine(0.4, 16000), 16000, audio_start=3200)
  m = decode.read_media(path)
  assert len(m.frames) == 10 and len(m.audio) == 9600
  assert np.abs(m.audio[:3100]).max() < 0.02 and np.abs(m.audio[3300:]).max() > 0.35


def test_audio_gap_keeps_later_audio_in_place(tmp_path):
  """Missing audio packets (here never written; in practice undecodable) become silence, not a shift."""
  sr = 16000
  sine = (0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr)).astype(np.float32)
  path = str(tmp_path / "gap.m4a")
  with av.open(path, "w") as container:
    stream = container.add_stream("aac", rate=sr, layout="mono")
    stream.codec_context.open()
    step = stream.codec_context.frame_size
    for start in range(0, len(sine), step):
      if 8 * step <= start < 16 * step:
        continue
      frame = av.AudioFrame.from_ndarray(sine[None, start:start + step].copy(), format="fltp", layout="mono")
      frame.sample_rate, frame.pts = sr, start
      container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
  audio = decode.read_media(path, need_video=False).audio
  assert len(audio) == len(sine)
  assert np.abs(audio[8 * step + 200:16 * step - 200]).max() < 0.05
  tail = slice(16 * step + 400, len(sine) - 400)
  assert np.sqrt(np.mean((audio[tail] - sine[tail]) ** 2)) < 0.05


def test_probe_reads_headers(tmp_path):
  path = _write(tmp_path / "clip.mp4", np.arange(25) / 25, _stereo_sine(1.0, 44100), 44100)
  info = decode.probe(path)
  assert info["has_video"] and info["has_audio"] and info["duration"] == pytest.approx(1.0, abs=0.05)
  video, audio = info["streams"]
  assert (video["codec"], video["width"], video["height"], video["frames"]) == ("h264", 64, 48, 25)
  assert (audio["codec"], audio["sample_rate"], audio["channels"]) == ("aac", 44100, 2)


def _assert_media_error(path, reason_part, **kwargs):
  with pytest.raises(decode.MediaError) as info:
    decode.read_media(path, **kwargs)
  message = str(info.value)
  assert isinstance(info.value, UserError)
  assert message.startswith(f"{path}: ") and "\n" not in message and reason_part in message
  assert info.value.path == str(path)


def test_decode_errors(tmp_path):
  _assert_media_error(tmp_path / "missing.mp4", "file not found")
  _assert_media_error(tmp_path, "directory")
  text = tmp_path / "notes.mp4"
  text.write_text("just some text\nover two lines\n")
  _assert_media_error(text, "not a media file")
  empty = tmp_path / "empty.mp4"
  empty.write_bytes(b"")
  _assert_media_error(empty, "not a media file")

  video_only = _write(tmp_path / "video_only.mp4", np.arange(10) / 25)
  _assert_media_error(video_only, "no audio stream")
  assert len(decode.read_media(video_only, need_audio=False).frames) == 10

  audio_only = _write(tmp_path / "audio_only.m4a", audio=_stereo_sine(0.5, 16000))
  _assert_media_error(audio_only, "no video stream")
  m = decode.read_media(audio_only, need_video=False)
  assert m.frames is None and len(m.audio) == 8000


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_decode_permission_denied(tmp_path):
  path = _write(tmp_path / "locked.mp4", np.arange(5) / 25)
  os.chmod(path, 0)
  _assert_media_error(path, "permission denied", need_audio=False)


def test_non_ascii_path(tmp_path):
  folder = tmp_path / "vidéos ünïcode 视频"
  folder.mkdir()
  path = _write(folder / "clip é.mp4", np.arange(10) / 25, _stereo_sine(0.4, 16000), 16000)
  m = decode.read_media(path)
  assert len(m.frames) == 10 and m.path == path
  _assert_media_error(folder / "無い.mp4", "file not found")


# ---------------------------------------------------------------------------------------------------------
# Log-mel.


def _speech_like(seconds=3.0, sr=16000, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(round(seconds * sr)) / sr
  phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.7 * t)) / sr
  voiced = sum(np.sin(k * phase) / k for k in range(1, 30)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
  x = 0.3 * voiced / np.abs(voiced).max() + 0.01 * rng.standard_normal(len(t))
  x[sr:sr + 2000] = 0  # a digital silence exercises the -100 dB floor
  return x.astype(np.float32)


def _wav2lip_reference(x, cfg):
  y = scipy.signal.lfilter([1, -cfg.preemphasis], [1], x)
  stft = librosa.stft(y=y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length)
  basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                              fmax=cfg.fmax)
  db = 20 * np.log10(np.maximum(1e-5, basis @ np.abs(stft))) - cfg.ref_level_db
  m = cfg.max_abs_value
  return np.clip(2 * m * (db - cfg.min_level_db) / -cfg.min_level_db - m, -m, m).T


def test_log_mel_matches_librosa(cfg):
  x = _speech_like()
  ours = logmel.log_mel(x, cfg)
  assert ours.dtype == np.float32 and ours.shape == (1 + len(x) // 200, 80)
  np.testing.assert_allclose(ours, _wav2lip_reference(x, cfg), atol=1e-4)
  assert ours.min() == -4.0 and ours.max() > 0


def test_mel_basis_matches_librosa(cfg):
  ours = logmel._mel_basis(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
  theirs = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                               fmax=cfg.fmax)
  np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("length", [1, 199, 200, 799, 16000, 16001])
def test_log_mel_frame_count(cfg, length):
  assert logmel.log_mel(np.zeros(length, np.float32), cfg).shape == (1 + length // 200, 80)


def test_mel_window_start(cfg):
  frames = np.arange(-100, 100000)
  expected = np.array([int(80 * f / 25) for f in frames])
  np.testing.assert_array_equal(logmel.mel_window_start(frames, cfg), expected)
  assert [logmel.mel_window_start(f, cfg) for f in (0, 1, 5, 25, 7)] == [0, 3, 16, 80, 22]
  assert isinstance(logmel.mel_window_start(7, cfg), int)


def test_preprocess_config_holds_spec_values(cfg):
  spec = dict(fps=25, sample_rate=16000, crop_size=96, mouth_row_start=48, n_fft=800, win_length=800,
              hop_length=200, n_mels=80, fmin=55, fmax=7600, preemphasis=0.97, ref_level_db=20,
              min_level_db=-100, max_abs_value=4.0, mel_window_frames=16, video_window_frames=5,
              mel_frames_per_second=80)
  assert {k: cfg[k] for k in spec} == spec
  assert tuple(cfg.lrs2_box) == (0.0, 0.0, 1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# Boxes and crops.

_LRS3_TXT = """Text:  SO WHAT DO YOU THINK
Conf:  4
Ref:   0af00UcTOSc

FRAME \tX \tY \tW \tH
000245 \t0.400 \t0.200 \t0.250 \t0.450
000246 \t0.410 \t0.200 \t0.250 \t0.450
000248 \t0.430 \t0.220 \t0.250 \t0.450

WORD START END ASDSCORE
SO 0.09 0.19 4.2
"""


def test_read_lrs3_boxes(tmp_path):
  txt = tmp_path / "50001.txt"
  txt.write_text(_LRS3_TXT)
  boxes = faces.read_lrs3_boxes(txt, num_frames=6, width=200, height=100)
  assert boxes.dtype == np.float32 and boxes.shape == (6, 4)
  np.testing.assert_allclose(boxes[0], [80, 20, 50, 45], atol=1e-4)
  np.testing.assert_allclose(boxes[2], [84, 21, 50, 45], atol=1e-4)  # frame 247 interpolated
  np.testing.assert_allclose(boxes[3:], np.tile([86, 22, 50, 45], (3, 1)), atol=1e-4)  # held past the end

  no_table = tmp_path / "trainval.txt"
  no_table.write_text("Text:  HELLO\nConf:  3\n")
  assert faces.read_lrs3_boxes(no_table, 6, 200, 100) is None


@pytest.mark.parametrize("bad_row", ["000246 \t0.41 \tabc \t0.25 \t0.45", "000246 \t0.41 \t0.2 \t0.25",
                                     "000246 0.41 0.2 0.25 0.45 0.1", "000246 \t0.41 \t0.2 \t0 \t0.45"])
def test_read_lrs3_boxes_malformed(tmp_path, bad_row):
  txt = tmp_path / "bad.txt"
  txt.write_text(_LRS3_TXT.replace("000246 \t0.410 \t0.200 \t0.250 \t0.450", bad_row))
  with pytest.raises(decode.MediaError) as info:
    faces.read_lrs3_boxes(txt, 6, 200, 100)
  assert str(info.value).startswith(f"{txt}: line 7:") and "\n" not in str(info.value)
  with pytest.raises(decode.MediaError, match="file not found"):
    faces.read_lrs3_boxes(tmp_path / "missing.txt", 6, 200, 100)


def test_fixed_boxes():
  boxes = faces.fixed_boxes(3, 160, 200, (0.1, 0.25, 0.9, 1.0))
  np.testing.assert_allclose(boxes, np.tile([20, 40, 160, 120], (3, 1)))
  np.testing.assert_allclose(faces.fixed_boxes(1, 160, 160), [[0, 0, 160, 160]])


def test_crop_centres_the_box():
  frames = np.zeros((2, 200, 300, 3), np.uint8)
  frames[:, 50:90, 100:140] = (255, 0, 0)  # a red 40x40 square
  boxes = np.array([[100, 50, 40, 40]] * 2, np.float32)
  pp = preprocess_config()
  pp.face_crop_scale, pp.face_crop_shift_y = 2.0, 0.0
  crops, squares = face_crops(frames, boxes, pp)
  np.testing.assert_allclose(squares, [[80, 30, 80, 80]] * 2)
  assert crops.shape == (2, 96, 96, 3) and crops.dtype == np.uint8
  red = crops[0, ..., 0] > 128
  rows, cols = np.nonzero(red)
  assert rows.mean() == pytest.approx(47.5, abs=0.5) and cols.mean() == pytest.approx(47.5, abs=0.5)
  assert red.sum() == pytest.approx(48 * 48, rel=0.05)  # 40 px of an 80 px window -> half of 96

  pp.face_crop_shift_y = 0.25
  shifted = face_crops(frames, boxes, pp)[0]  # centre 10 px lower
  assert np.nonzero(shifted[0, ..., 0] > 128)[0].mean() == pytest.approx(47.5 - 12, abs=0.5)


def test_small_squares_are_cropped_where_they_are_not_at_whole_pixels():
  """A small face's square enlarged to 96 px follows its box to a fraction of a pixel: rounding it to whole
  pixels made the crop jump by 1/20 of its width as a 20 px square crossed pixel boundaries."""
  yy, xx = np.mgrid[:60, :80]
  blob = (255 * np.exp(-((xx - 40.3) ** 2 + (yy - 30.6) ** 2) / (2 * 3.0 ** 2))).astype(np.uint8)
  frames = np.repeat(blob[None, ..., None], 3, axis=3)
  shifts = np.arange(0, 1.01, 0.125)
  squares = np.array([[30 + d, 20, 20, 20] for d in shifts], np.float32)
  crops = crop_squares(np.repeat(frames, len(shifts), axis=0), squares, size=96)[..., 0].astype(np.float64)
  centre_x = (crops * np.arange(96)).sum(axis=(1, 2)) / crops.sum(axis=(1, 2))
  expected = (40.3 + 0.5 - squares[:, 0]) * 96 / 20 - 0.5  # pixel i spans [i, i + 1) in both
  np.testing.assert_allclose(centre_x, expected, atol=0.15)
  # At whole pixels it is the window enlarged as cv2.resize enlarges it.
  window = cv2.resize(np.ascontiguousarray(frames[0, 20:40, 30:50]), (96, 96), interpolation=cv2.INTER_LINEAR)
  assert np.abs(crops[0] - window[..., 0]).max() <= 2  # warpAffine places samples to 1/32 pixel


def test_crop_pads_with_edge_pixels():
  frames = np.zeros((1, 100, 100, 3), np.uint8)
  frames[0, :, :10] = (0, 255, 0)  # green left edge
  crops = crop_squares(frames, np.array([[-30, 20, 40, 40]], np.float32), size=40)
  assert (crops[0, :, :25, 1] == 255).all()  # off-frame columns repeat the green edge
  far = crop_squares(frames, np.array([[-500, 20, 40, 40]], np.float32), size=40)
  assert (far[0, ..., 1] == 255).all()


def test_mouth_rows(cfg):
  crops = np.random.default_rng(0).integers(0, 255, (2, 5, 96, 96, 3), np.uint8)
  mouth = mouth_rows(crops, cfg.mouth_row_start)
  assert mouth.shape == (2, 5, 48, 96, 3)
  np.testing.assert_array_equal(mouth, crops[..., 48:, :, :])
  np.testing.assert_array_equal(mouth_rows(crops, 48, margin=4), crops[..., 44:, :, :])
  with pytest.raises(ValueError, match="margin"):
    mouth_rows(crops, 2, margin=4)


# ---------------------------------------------------------------------------------------------------------
# Face detection and tracking.


def _draw_face(image, cx, cy, s, mouth_open=0.3):
  """A cartoon face (s = half-width) that OpenCV's frontal-face Haar cascade detects."""
  cv2.ellipse(image, (cx, cy), (s, int(s * 1.3)), 0, 0, 360, (200, 160, 140), -1)
  for side in (-1, 1):
    ex = cx + side * int(s * 0.4)
    cv2.ellipse(image, (ex, cy - int(s * 0.3)), (int(s * 0.22), int(s * 0.1)), 0, 0, 360, (40, 30, 30), -1)
    brow = cy - int(s * 0.55)
    cv2.line(image, (ex - int(s * 0.25), brow), (ex + int(s * 0.25), brow), (60, 40, 30), max(1, int(s * 0.08)))
  cv2.line(image, (cx, cy - int(s * 0.15)), (cx, cy + int(s * 0.3)), (150, 110, 100), max(1, int(s * 0.06)))
  cv2.ellipse(image, (cx, cy + int(s * 0.65)), (int(s * 0.35), int(s * 0.2 * mouth_open) + 2), 0, 0, 360,
              (90, 30, 40), -1)


def test_detect_faces_on_drawn_face(cfg):
  frames = np.full((40, 256, 256, 3), 90, np.uint8)
  centres = 128 + (20 * np.sin(np.arange(40) / 6)).astype(int)
  for i, cx in enumerate(centres):
    _draw_face(frames[i], int(cx), 120, 45, mouth_open=(i % 7) / 7)
  track = faces.detect_faces(frames, cfg)
  assert track.num_tracks == 1 and track.coverage == 1.0 and track.valid.all()
  box_cx = track.boxes[:, 0] + track.boxes[:, 2] / 2
  assert np.abs(box_cx - centres).max() < 8
  assert np.abs(track.boxes[:, 1] + track.boxes[:, 3] / 2 - 120).max() < 20
  crops, _ = face_crops(frames, track.boxes, cfg)
  assert crops.shape == (40, 96, 96, 3)

  none = faces.detect_faces(np.full((5, 128, 128, 3), 90, np.uint8), cfg)
  assert (none.num_tracks, none.coverage, none.valid.any()) == (0, 0.0, False)
  np.testing.assert_allclose(none.boxes, faces.fixed_boxes(5, 128, 128))  # whole frame, so crops still work


def test_missing_cascade_is_a_clear_error(cfg):
  bad = preprocess_config()
  bad.face_detector = "no_such_cascade.xml"
  with pytest.raises(UserError, match="cascade not found"):
    faces.detect_faces(np.zeros((2, 64, 64, 3), np.uint8), bad)


def _box(x, y, s):
  return np.array([[x, y, s, s]], np.float32)


def test_tracking_interpolates_smooths_and_drops_outliers(cfg):
  rng = np.random.default_rng(0)
  detections = {f: _box(50 + f + rng.normal(0, 1), 40, 60) for f in range(0, 50, 5)}
  detections[25] = np.array([[75, 60, 70, 70]], np.float32)  # one detection too low and too big
  detections[3] = np.zeros((0, 4), np.float32)  # a frame that saw nothing
  track = faces.track_faces(detections, 50, 200, 200, cfg)
  assert track.num_tracks == 1
  assert track.valid[:46].all() and not track.valid[46:].any()  # last detection at frame 45
  # The linear motion survives; the outlier and the jitter do not.
  np.testing.assert_allclose(track.boxes[:46, 0], 50 + np.arange(46), atol=3)
  np.testing.assert_allclose(track.boxes[:, 1:], np.tile([40, 60, 60], (50, 1)), atol=1e-4)


def test_tracking_long_gap_is_invalid_but_same_track(cfg):
  detections = {f: _box(50, 40, 60) for f in list(range(0, 31, 5)) + list(range(60, 100, 5))}
  track = faces.track_faces(detections, 100, 200, 200, cfg)
  assert track.num_tracks == 1
  assert track.valid[:31].all() and not track.valid[31:60].any() and track.valid[60:96].all()
  assert track.coverage == pytest.approx((31 + 36) / 100)


def test_tracking_prefers_the_larger_face(cfg):
  detections = {f: np.concatenate([_box(10, 10, 30), _box(100, 50, 80)]) for f in range(0, 40, 5)}
  detections[40] = _box(12, 10, 30)  # the small face stays longer but is much smaller
  track = faces.track_faces(detections, 45, 200, 200, cfg)
  assert track.num_tracks == 2 and len(track.tracks) == 2
  np.testing.assert_allclose(track.boxes[0], [100, 50, 80, 80], atol=1e-4)
  np.testing.assert_allclose(track.tracks[1].boxes[0], [10, 10, 30, 30], atol=1e-4)
  assert track.tracks[1].valid.sum() == 41


def test_tracking_keeps_a_face_seen_twice_in_a_frame_as_one_track(cfg):
  """A small face boxed twice in one frame (whole, and lower by a quarter: two windows saw it) stays one track;
  a face beside it, touching it, is a track of its own."""
  detections = {f: np.concatenate([_box(50 + f, 40, 20), _box(72 + f, 40, 20)]) for f in range(0, 50, 5)}
  detections[20] = np.concatenate([detections[20], _box(71, 45, 17)])
  track = faces.track_faces(detections, 50, 200, 200, cfg)
  assert track.num_tracks == 2
  for t, x in zip(sorted(track.tracks, key=lambda t: t.boxes[0, 0]), (50, 72)):
    assert t.valid[:46].all()
    np.testing.assert_allclose(t.boxes[:46, 0], x + np.arange(46), atol=1.5)


def test_tracking_rejects_a_stride_longer_than_the_gap(cfg):
  bad = preprocess_config()
  bad.detect_stride = bad.max_gap_frames + 5
  with pytest.raises(ValueError, match="max_gap_frames"):
    faces.detect_faces(np.zeros((2, 64, 64, 3), np.uint8), bad)
