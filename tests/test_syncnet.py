"""SyncNet as syncnet_python has it: parameter count, MFCC and crop front-ends, the published-weights import
(against a PyTorch SyncNet with the published state-dict keys and random weights) and the offset / Min dist /
Confidence of a generated clip against syncnet_python's pipeline transcribed here in PyTorch."""

import json

import cv2
import numpy as np
import pytest
import python_speech_features
import scipy.signal

torch = pytest.importorskip("torch")
nn = torch.nn

from modeformer_jax import cli, config_defaults as cd  # noqa: E402
from modeformer_jax.data import synth  # noqa: E402
from modeformer_jax.export import syncnet_weights  # noqa: E402
from modeformer_jax.inference import load_sync_model  # noqa: E402
from modeformer_jax.media.crops import face_crops, syncnet_crop_faces  # noqa: E402
from modeformer_jax.media.encode import write_video  # noqa: E402
from modeformer_jax.media.mfcc import audio_features, mfcc  # noqa: E402
from modeformer_jax.media.preprocess_config import syncnet_preprocess_config  # noqa: E402
from modeformer_jax.models.summary import parameter_counts  # noqa: E402
from modeformer_jax.sync import detect  # noqa: E402
from modeformer_jax.sync.tracks import whole_frame  # noqa: E402

pytestmark = pytest.mark.integration

MAX_OFFSET = 15


class TorchSyncNet(nn.Module):
  """syncnet_python's SyncNetModel.S, transcribed: same layers, same state-dict keys."""

  def __init__(self):
    super().__init__()
    bn_relu = lambda c: [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    bn3_relu = lambda c: [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]
    self.netcnnaud = nn.Sequential(
        nn.Conv2d(1, 64, 3, 1, 1), *bn_relu(64), nn.MaxPool2d(1, 1),
        nn.Conv2d(64, 192, 3, 1, 1), *bn_relu(192), nn.MaxPool2d((3, 3), (1, 2)),
        nn.Conv2d(192, 384, 3, padding=1), *bn_relu(384),
        nn.Conv2d(384, 256, 3, padding=1), *bn_relu(256),
        nn.Conv2d(256, 256, 3, padding=1), *bn_relu(256), nn.MaxPool2d((3, 3), (2, 2)),
        nn.Conv2d(256, 512, (5, 4), padding=0), *bn_relu(512))
    head = lambda: nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 1024))
    self.netfcaud, self.netfclip = head(), head()
    self.netcnnlip = nn.Sequential(
        nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0), *bn3_relu(96), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), *bn3_relu(256),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *bn3_relu(256),
        nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *bn3_relu(256),
        nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *bn3_relu(256), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        nn.Conv3d(256, 512, (1, 6, 6), padding=0), *bn3_relu(512))

  def forward_aud(self, x):
    return self.netfcaud(self.netcnnaud(x).flatten(1))

  def forward_lip(self, x):
    return self.netfclip(self.netcnnlip(x).flatten(1))


@pytest.fixture(scope="module")
def torch_syncnet():
  """Random weights and random BatchNorm statistics (so the running statistics' mapping is checked too)."""
  torch.manual_seed(0)
  net = TorchSyncNet()
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, nn.modules.batchnorm._BatchNorm):
        m.running_mean.normal_(0, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.2)
  return net.eval()


@pytest.fixture(scope="module")
def imported(torch_syncnet, tmp_path_factory):
  """`modeformer import-syncnet` on the saved state dict -> the loaded model folder."""
  folder = tmp_path_factory.mktemp("syncnet_import")
  # The published file predates PyTorch's zip format: save it the old way, which weights_only must read too.
  torch.save(torch_syncnet.state_dict(), folder / "syncnet_v2.model", _use_new_zipfile_serialization=False)
  assert cli.main(["import-syncnet", str(folder / "syncnet_v2.model"), "--out", str(folder / "model")]) == 0
  return load_sync_model(str(folder / "model"), batch_size=8)


def test_parameter_count_is_syncnet_pythons():
  counts = parameter_counts(cd.syncnet_model_config())
  assert sum(counts.values()) == 13_631_616  # 13.63M; the PyTorch transcription below has the same
  assert sum(p.numel() for p in TorchSyncNet().parameters()) == 13_631_616
  # The softmax objectives add their temperature, nothing else.
  assert sum(parameter_counts(cd.syncnet_model_config(objective="multiway", embedding="unit")).values()) == \
      13_631_617


def test_mfcc_equals_python_speech_features():
  pp = syncnet_preprocess_config()
  rng = np.random.default_rng(0)
  clip = synth.render_clip(3, synth.speaker_style(1, 0), 1.0)
  int16 = np.clip(np.round(clip.audio * 32768), -32768, 32767).astype(np.int16)
  for audio in (int16, rng.normal(0, 2000, 16000 + 123).astype(np.int16), np.zeros(800, np.int16),
                int16[:250]):  # speech, noise, silence, shorter than one frame
    ref = python_speech_features.mfcc(audio, 16000)
    np.testing.assert_allclose(mfcc(audio, pp), ref, atol=1e-4, rtol=0)
  # Float audio in [-1, 1] is the same signal: scaled to int16 values first.
  np.testing.assert_allclose(audio_features(int16.astype(np.float32) / 32768, pp),
                             python_speech_features.mfcc(int16, 16000), atol=1e-4, rtol=0)


def test_syncnet_crops_equal_crop_video():
  """crops.syncnet_crop_faces against run_pipeline.crop_video transcribed (numpy.pad with 110, medfilt 13)."""
  pp = syncnet_preprocess_config()
  rng = np.random.default_rng(1)
  frames = rng.integers(0, 256, (20, 120, 160, 3), dtype=np.uint8)
  boxes = np.stack([40 + rng.normal(0, 3, 20), 30 + rng.normal(0, 3, 20), 50 + rng.normal(0, 4, 20),
                    60 + rng.normal(0, 4, 20)], 1)
  ref = []
  s = scipy.signal.medfilt(boxes[:, 2:].max(1) / 2, 13)
  x = scipy.signal.medfilt(boxes[:, 0] + boxes[:, 2] / 2, 13)
  y = scipy.signal.medfilt(boxes[:, 1] + boxes[:, 3] / 2, 13)
  for i, image in enumerate(frames):
    cs, bs = 0.4, s[i]
    bsi = int(bs * (1 + 2 * cs))
    frame = np.pad(image, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(110, 110))
    my, mx = y[i] + bsi, x[i] + bsi
    face = frame[int(my - bs):int(my + bs * (1 + 2 * cs)), int(mx - bs * (1 + cs)):int(mx + bs * (1 + cs))]
    ref.append(cv2.resize(face, (224, 224)))
  np.testing.assert_array_equal(syncnet_crop_faces(frames, boxes, pp), np.stack(ref))
  # face_crops with face_crop "syncnet" is this crop, and its squares frame the same region.
  crops, squares = face_crops(frames, boxes, pp)
  np.testing.assert_array_equal(crops, np.stack(ref))
  np.testing.assert_allclose(squares[:, 2], 2 * s * 1.4, rtol=1e-6)
  np.testing.assert_allclose(squares[:, 1], y - s, rtol=1e-6)


def test_import_gives_identical_embeddings(torch_syncnet, imported):
  rng = np.random.default_rng(2)
  rgb = rng.integers(0, 256, (3, 5, 224, 224, 3), dtype=np.uint8)
  cc = rng.normal(0, 5, (3, 13, 20)).astype(np.float32)
  with torch.no_grad():
    # syncnet_python's input: BGR frames stacked as [B, 3, T, H, W], 0..255 floats; MFCC as [B, 1, 13, 20].
    bgr = torch.from_numpy(rgb[..., ::-1].transpose(0, 4, 1, 2, 3).astype(np.float32))
    ref_v = torch_syncnet.forward_lip(bgr).numpy()
    ref_a = torch_syncnet.forward_aud(torch.from_numpy(cc[:, None])).numpy()
  v, a = imported.embed_video(rgb), imported.embed_audio(cc)
  scale = np.abs(ref_v).max()
  assert np.abs(v - ref_v).max() <= 1e-4 * max(1.0, scale), np.abs(v - ref_v).max()
  assert np.abs(a - ref_a).max() <= 1e-4 * max(1.0, np.abs(ref_a).max()), np.abs(a - ref_a).max()
  assert imported.scoring == "euclidean" and imported.syncnet_compat


def test_import_rejects_other_weights(tmp_path, capsys):
  torch.save({"netcnnaud.0.weight": torch.zeros(3)}, tmp_path / "bad.model")
  assert cli.main(["import-syncnet", str(tmp_path / "bad.model"), "--out", str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err
  assert "netcnnaud.0.weight: shape (3,), expected (64, 1, 3, 3)" in err and "missing netcnnaud.5.bias" in err


def _syncnet_python_evaluate(net, frames_bgr, audio_int16, vshift):
  """SyncNetInstance.evaluate of syncnet_python on in-memory frames and WAV samples (PyTorch)."""
  im = torch.from_numpy(frames_bgr.transpose(3, 0, 1, 2)[None].astype(np.float32))  # [1, 3, T, H, W]
  cc = python_speech_features.mfcc(audio_int16, 16000).T  # [13, M]
  cct = torch.from_numpy(cc[None, None].astype(np.float32))
  min_length = min(len(frames_bgr), len(audio_int16) // 640)
  lastframe = min_length - 5
  with torch.no_grad():
    im_feat = net.forward_lip(torch.cat([im[:, :, f:f + 5] for f in range(lastframe)]))
    cc_feat = net.forward_aud(torch.cat([cct[:, :, :, f * 4:f * 4 + 20] for f in range(lastframe)]))
  win = 2 * vshift + 1
  padded = torch.nn.functional.pad(cc_feat, (0, 0, vshift, vshift))
  dists = [torch.nn.functional.pairwise_distance(im_feat[[i]].repeat(win, 1), padded[i:i + win])
           for i in range(len(im_feat))]
  mdist = torch.mean(torch.stack(dists, 1), 1)
  minval, minidx = torch.min(mdist, 0)
  return vshift - int(minidx), float(minval), float(torch.median(mdist) - minval)


def test_sync_numbers_equal_syncnet_python(torch_syncnet, imported):
  """AV offset, Min dist and Confidence of a generated clip (audio leading by 3 frames), scored by `sync`'s
  score() in --syncnet-compat mode, equal syncnet_python's on the same crops and audio."""
  clip = synth.render_clip(21, synth.speaker_style(5, 2), 1.8, 3, size=224)
  audio = np.clip(np.round(clip.audio * 32768), -32768, 32767).astype(np.int16)
  pp = imported.config.preprocess
  inputs = detect.ModelInputs(path="clip", faces=[whole_frame(clip.frames, (0, 0, 224, 224))],
                               features=audio_features(audio, pp), num_frames=len(clip.frames), face_centered=True,
                               num_tracks=0, face_px=224.0, info={}, timings={})
  ours = detect.score(imported, inputs, MAX_OFFSET)
  offset, min_dist, confidence = _syncnet_python_evaluate(torch_syncnet, clip.frames[..., ::-1], audio, MAX_OFFSET)
  assert ours.windows_total == min(len(clip.frames), len(audio) // 640) - 5
  assert ours.offset == offset
  assert abs(ours.min_dist - min_dist) < 1e-3 and abs(ours.confidence - confidence) < 1e-3


def test_sync_command_on_a_video_file(imported, tmp_path, capsys):
  """`modeformer sync` with an imported SyncNet folder: face detection, syncnet_python's crops at 224,
  MFCCs of the decoded audio, --syncnet-compat scoring by default (L - 5 windows)."""
  clip = synth.render_clip(17, synth.speaker_style(5, 2), 1.8, -3, size=256)  # a face the cascade finds
  path = str(tmp_path / "clip.mp4")
  write_video(path, clip.frames, 25, clip.audio, 16000, preset="ultrafast")
  assert cli.main(["sync", path, "--checkpoint", imported.source, "--json"]) == 0
  report = json.loads(capsys.readouterr().out)
  assert report["faces"] == "detected" and report["face_coverage"] > 0.9
  assert report["windows_total"] == len(clip.frames) - 5
  assert report["min_dist"] > 0 and report["confidence"] >= 0


def test_export_refuses_other_models(imported, tmp_path, capsys):
  assert cli.main(["export", "--checkpoint", imported.source, "--out", str(tmp_path / "out")]) == 2
  assert "export writes ModEFormer models only" in capsys.readouterr().err
