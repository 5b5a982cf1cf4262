"""`modeformer prep`: synth LRS2/LRS3 folders (plus one file of each bad kind) -> TFDS ArrayRecord -> reader."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from modeformer_jax import cli
from modeformer_jax.data import lrs_layout, prep, synth
from modeformer_jax.data.prep import shards
from modeformer_jax.data.records import open_split
from modeformer_jax.errors import UserError
from modeformer_jax.media import faces
from modeformer_jax.media.decode import read_media
from modeformer_jax.media.encode import write_video
from modeformer_jax.media.logmel import log_mel
from modeformer_jax.media.preprocess_config import preprocess_config

pytestmark = pytest.mark.integration

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
BAD_SHOW = "9999999999999999999"
NON_ASCII_SHOW = "émission_ü"


def _render(seconds: float, fps: float = 25.0, size: int = 160, seed: int = 7):
  return synth.render_clip(seed, synth.speaker_style(1, 3), seconds, size=size, fps=fps)


def _write_vfr(path: str, frames: np.ndarray, audio: np.ndarray, sample_rate: int) -> None:
  """Frames at alternating 50 / 30 ms intervals (40 ms on average): a variable frame rate file."""
  with av.open(path, "w") as container:
    video = container.add_stream("libx264", rate=25)
    video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    video.codec_context.time_base = video.time_base = Fraction(1, 1000)
    sound = container.add_stream("aac", rate=sample_rate, layout="mono")
    pts = np.cumsum([0] + [30 if i % 2 else 50 for i in range(len(frames) - 1)])
    for image, t in zip(frames, pts):
      frame = av.VideoFrame.from_ndarray(image, format="rgb24")
      frame.pts = int(t)
      container.mux(video.encode(frame))
    container.mux(video.encode())
    step = sound.codec_context.frame_size or 1024
    for start in range(0, len(audio), step):
      block = av.AudioFrame.from_ndarray(audio[None, start:start + step].astype(np.float32), format="fltp",
                                         layout="mono")
      block.sample_rate, block.pts = sample_rate, start
      container.mux(sound.encode(block))
    container.mux(sound.encode())


def _add_lrs2_bad_files(src: str) -> dict[str, tuple[str, str | None]]:
  """Adds one clip of each awkward kind to train.txt; returns id -> (expected status, expected reason)."""
  show = os.path.join(src, "mvlrs_v1", "main", BAD_SHOW)
  os.makedirs(show)
  clip = _render(2.0)
  expected = {}

  def add(name, status, reason, folder=show):
    expected[f"{os.path.basename(folder)}/{name}"] = (status, reason)
    return os.path.join(folder, name + ".mp4")

  with open(add("corrupt", "skipped", "corrupt"), "wb") as f:
    f.write(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
  write_video(add("no_audio", "skipped", "no_audio"), clip.frames, 25.0, None, 16000)
  write_video(add("no_video", "skipped", "no_video"), None, 25.0, clip.audio, 16000)
  write_video(add("short", "skipped", "too_short"), clip.frames[:3], 25.0, clip.audio[:3 * 640], 16000)
  write_video(add("av_mismatch", "skipped", "av_mismatch"), clip.frames, 25.0, clip.audio[:16000], 16000)
  _write_vfr(add("vfr", "ok", None), clip.frames, clip.audio, 16000)
  for name, fps in (("fps29.97", 30000 / 1001), ("fps30", 30.0), ("fps50", 50.0)):
    other = _render(2.0, fps=fps)
    write_video(add(name, "ok", None), other.frames, fps, other.audio, 16000)
  for rate in (44100, 48000):
    other = synth.render_clip(7, synth.speaker_style(1, 3), 2.0, sample_rate=rate)
    write_video(add(f"stereo{rate}", "ok", None), other.frames, 25.0,
                np.stack([other.audio, 0.5 * other.audio], axis=1), rate)
  add("missing", "skipped", "missing")
  locked = add("locked", "ok" if IS_ROOT else "skipped", None if IS_ROOT else "unreadable")
  write_video(locked, clip.frames, 25.0, clip.audio, 16000)
  os.chmod(locked, 0)
  accents = os.path.join(src, "mvlrs_v1", "main", NON_ASCII_SHOW)
  os.makedirs(accents)
  write_video(add("clïp_ø", "ok", None, accents), clip.frames, 25.0, clip.audio, 16000)
  with open(os.path.join(src, "train.txt"), "a", encoding="utf-8") as f:
    f.writelines(f"{name}\n" for name in expected)
  return expected


@pytest.fixture(scope="module")
def lrs2(tmp_path_factory):
  """A 4-speaker LRS2 stand-in (about half the clips with a 3-frame audio lead) plus the bad files."""
  src = str(tmp_path_factory.mktemp("lrs2_src"))
  manifest = synth.write_dataset(src, "lrs2", speakers=4, clips_per_speaker=2, seconds=2.0, seed=3,
                                 offsets_frames=(3,), offset_fraction=0.5, workers=1, progress=False)
  expected = _add_lrs2_bad_files(src)
  out = str(tmp_path_factory.mktemp("lrs2_out"))
  summary = prep.prepare("lrs2", src, out, workers=1, progress=False)
  return {"src": src, "out": out, "manifest": manifest, "expected": expected, "summary": summary}


@pytest.fixture(scope="module")
def lrs3(tmp_path_factory):
  src = str(tmp_path_factory.mktemp("lrs3_src"))
  manifest = synth.write_dataset(src, "lrs3", speakers=3, clips_per_speaker=2, seconds=2.0, seed=5,
                                 workers=1, progress=False)
  expected = {f"{r['speaker']}/{r['clip']}": ("ok", None, []) for r in manifest}
  # A clip without .txt falls back to the detector (with a warning): take one the detector can see. Another
  # clip gets a malformed box table and is skipped.
  cfg = preprocess_config()
  no_txt = next(r for r in manifest
                if faces.detect_faces(read_media(os.path.join(src, r["path"])).frames, cfg).coverage > 0.8)
  bad_txt = next(r for r in manifest if r is not no_txt)
  os.remove(os.path.join(src, no_txt["path"][:-4] + ".txt"))
  expected[f"{no_txt['speaker']}/{no_txt['clip']}"] = ("ok", None, ["no .txt beside the video"])
  bad_path = os.path.join(src, bad_txt["path"][:-4] + ".txt")
  with open(bad_path) as f:
    lines = f.read().splitlines()
  row = next(i for i, line in enumerate(lines) if line.startswith("000003"))
  lines[row] = "000003 \t0.1 \tbanana \t0.5"
  with open(bad_path, "w") as f:
    f.write("\n".join(lines) + "\n")
  expected[f"{bad_txt['speaker']}/{bad_txt['clip']}"] = ("skipped", "bad_txt", [])
  # A blank video whose .txt has no box table: the detector finds nothing.
  speaker = next(r["speaker"] for r in manifest if r["split"] == "trainval")
  blank = os.path.join(src, "trainval", speaker, "blank.mp4")
  write_video(blank, np.full((50, 224, 224, 3), 120, np.uint8), 25.0, _render(2.0).audio, 16000)
  with open(blank[:-4] + ".txt", "w") as f:
    f.write("Text:  NOBODY HERE\nConf:  3\n")
  expected[f"{speaker}/blank"] = ("skipped", "no_face", ["no FRAME table in the .txt"])
  out = str(tmp_path_factory.mktemp("lrs3_out"))
  summary = prep.prepare("lrs3", src, out, workers=1, progress=False)
  return {"src": src, "out": out, "manifest": manifest, "expected": expected, "summary": summary}


def _report(out: str) -> dict[str, dict]:
  with open(os.path.join(out, prep.REPORT_FILE), encoding="utf-8") as f:
    return {(r["split"], r["id"]): r for r in map(json.loads, f)}


def _records(out: str, dataset: str, split: str) -> dict[str, dict]:
  source = open_split(out, dataset, split)
  return {r["id"]: r for r in (source[i] for i in range(len(source)))}


def test_lrs2_report_per_item(lrs2):
  report = _report(lrs2["out"])
  for clip_id, (status, reason) in lrs2["expected"].items():
    line = report["train", clip_id]
    assert (line["status"], line["reason"]) == (status, reason), line
  for row in lrs2["manifest"]:
    assert report[row["split"], f"{row['speaker']}/{row['clip']}"]["status"] == "ok"
  assert {line["reason"] for line in report.values()} <= {None, *prep.REASONS}
  summary = lrs2["summary"]
  assert summary["status"] == "written"
  assert summary["skipped"] == sum(s == "skipped" for s, _ in lrs2["expected"].values())
  assert summary["skipped_by_reason"]["missing"] == 1
  # The printed summary names every skipped clip with its reason, one line each.
  printed = prep.format_summary(summary).splitlines()
  for item in summary["skipped_items"]:
    assert sum(line.startswith(f"  skipped {item['source']}: {item['reason']}") for line in printed) == 1
  assert len(summary["skipped_items"]) == summary["skipped"] and summary["skipped_unlisted"] == 0
  # Every frame rate, VFR and 44.1 / 48 kHz stereo come out as 2 s at 25 fps and 16 kHz mono.
  records = _records(lrs2["out"], "lrs2", "train")
  for name in ("vfr", "fps29.97", "fps30", "fps50", "stereo44100", "stereo48000"):
    r = records[f"{BAD_SHOW}/{name}"]
    assert abs(r["num_frames"] - 50) <= 1, (name, r["num_frames"])
    assert r["audio"].shape == (r["num_frames"] * 640,) and r["audio"].dtype == np.int16
    assert r["mel"].shape == (1 + r["num_frames"] * 640 // 200, 80)
  assert report["train", f"{BAD_SHOW}/stereo48000"]["source_channels"] == 2
  accented = records[f"{NON_ASCII_SHOW}/clïp_ø"]
  assert accented["source"] == f"mvlrs_v1/main/{NON_ASCII_SHOW}/clïp_ø.mp4"


def test_lrs2_features_and_tfds_access(lrs2):
  import tensorflow_datasets as tfds

  builder = tfds.builder("lrs2", data_dir=lrs2["out"])
  assert set(builder.info.splits) == {"pretrain", "train", "val", "test"}
  assert set(builder.info.features) == {
      "id", "speaker", "clip", "split", "source", "transcript", "num_frames", "crops_jpeg", "audio", "mel",
      "boxes", "av_diff_seconds"}
  source = tfds.data_source("lrs2", split="val", data_dir=lrs2["out"])
  raw = source[0]
  assert raw["crops_jpeg"].dtype == object and raw["crops_jpeg"].shape == (raw["num_frames"],)
  assert len(builder.as_data_source()["test"]) == len(source)
  record = open_split(lrs2["out"], "lrs2", "val")[0]
  t = record["num_frames"]
  assert record["crops"].shape == (t, 96, 96, 3) and record["crops"].dtype == np.uint8
  assert record["boxes"].shape == (t, 4) and record["mel"].dtype == np.float16
  row = next(r for r in lrs2["manifest"] if f"{r['speaker']}/{r['clip']}" == record["id"])
  assert record["transcript"] == row["transcript"]
  picklable = pickle.loads(pickle.dumps(open_split(lrs2["out"], "lrs2", "val")))
  assert picklable[0]["id"] == record["id"]
  window = open_split(lrs2["out"], "lrs2", "val").load(0, frames=slice(10, 15))
  np.testing.assert_array_equal(window["crops"], record["crops"][10:15])


def test_open_split_errors(lrs2, tmp_path):
  with pytest.raises(UserError, match="no split 'nope'"):
    open_split(lrs2["out"], "lrs2", "nope")
  with pytest.raises(UserError, match=str(tmp_path)):
    open_split(str(tmp_path), "lrs2", "train")


def _mouth_correlation(records: dict[str, dict], manifest: list[dict]) -> list[float]:
  """Per clip: correlation of the crop's darkness at the manifest mouth centre (mapped through the stored
  crop square) with the generator's mouth opening. The opening is drawn dark, the lips are not."""
  correlations = []
  for row in manifest:
    r = records.get(f"{row['speaker']}/{row['clip']}")
    if r is None:
      continue
    mouths = np.asarray(row["mouth_centers"])[:r["num_frames"]]
    box = r["boxes"]
    x = np.round((mouths[:, 0] - box[:, 0]) / box[:, 2] * 96).astype(int)
    y = np.round((mouths[:, 1] - box[:, 1]) / box[:, 3] * 96).astype(int)
    assert np.all((y >= 48) & (y < 96) & (x >= 0) & (x < 96)), "mouth outside the crop's lower half"
    brightness = np.array([r["crops"][i, y[i] - 1:y[i] + 2, x[i] - 1:x[i] + 2].mean() for i in range(len(x))])
    correlations.append(np.corrcoef(-brightness, np.asarray(row["mouth_open"])[:len(x)])[0, 1])
  return correlations


def test_crops_show_the_mouth_where_the_generator_drew_it(lrs2, lrs3):
  for data, dataset in ((lrs2, "lrs2"), (lrs3, "lrs3")):
    for split in ("train", "test") if dataset == "lrs2" else ("trainval", "test"):
      correlations = _mouth_correlation(_records(data["out"], dataset, split), data["manifest"])
      assert correlations and min(correlations) > 0.5, (dataset, split, correlations)


def test_injected_offset_survives_prep(lrs2):
  """The prepared mel of each clip matches its in-sync twin's mel shifted by 3.2 x offset mel frames."""
  cfg = preprocess_config()
  offsets = {}
  for row in lrs2["manifest"]:
    records = _records(lrs2["out"], "lrs2", row["split"])
    prepared = records[f"{row['speaker']}/{row['clip']}"]["mel"].astype(np.float32)
    twin = synth.render_clip(row["seed"], synth.speaker_style(row["dataset_seed"], row["speaker_index"]),
                             row["seconds"], 0, synth.FRAME_SIZE["lrs2"])
    reference = log_mel(twin.audio, cfg)
    errors = {}
    for lag in range(-20, 21):
      a = prepared[max(0, -lag):len(prepared) - max(0, lag)]
      b = reference[max(0, lag):len(reference) - max(0, -lag)]
      n = min(len(a), len(b))
      errors[lag] = np.abs(a[:n] - b[:n]).mean()
    offsets[row["clip"], row["speaker"]] = (min(errors, key=errors.get), row["offset_frames"])
  assert {o for _, o in offsets.values()} == {0, 3}, "the fixture should hold clips with and without offset"
  for lag, offset in offsets.values():
    assert abs(lag - 3.2 * offset) <= 1, offsets


def test_lrs3_report_and_detector_fallback(lrs3):
  report = _report(lrs3["out"])
  by_id = {clip_id: line for (_, clip_id), line in report.items()}
  for clip_id, (status, reason, warnings) in lrs3["expected"].items():
    line = by_id[clip_id]
    assert (line["status"], line["reason"]) == (status, reason), line
    assert [w.split(":")[0] for w in line["warnings"]] == warnings, line
  assert set(lrs3["summary"]["tfds_splits"]) == {"pretrain", "trainval", "test"}
  # Face heights, from the box tables and the detector alike (the generator's LRS3 faces are ~138 px tall).
  assert all(100 < line["face_px"] < 180 for line in by_id.values() if line["status"] == "ok")
  assert lrs3["summary"]["face_px"]["small"] == 0 and 100 < lrs3["summary"]["face_px"]["median"] < 180
  assert "face height: median" in prep.format_summary(lrs3["summary"])


def test_raw_storage_matches_jpeg(lrs2, tmp_path):
  options = prep.PrepOptions("lrs2", frame_storage="raw")
  summary = prep.prepare("lrs2", lrs2["src"], str(tmp_path), ["val"], options=options, progress=False)
  assert summary["status"] == "written"
  raw, jpeg = _records(str(tmp_path), "lrs2", "val"), _records(lrs2["out"], "lrs2", "val")
  assert raw.keys() == jpeg.keys()
  for clip_id, r in raw.items():
    assert r["crops"].shape == jpeg[clip_id]["crops"].shape
    assert np.abs(r["crops"].astype(float) - jpeg[clip_id]["crops"]).mean() < 3.0
    np.testing.assert_array_equal(r["mel"], jpeg[clip_id]["mel"])


def test_beam_direct_runner_matches_local(lrs2, tmp_path):
  pytest.importorskip("apache_beam")
  local, beam = str(tmp_path / "local"), str(tmp_path / "beam")
  prep.prepare("lrs2", lrs2["src"], local, ["val", "test"], workers=1, progress=False)
  summary = prep.prepare("lrs2", lrs2["src"], beam, ["val", "test"], runner="beam", progress=False,
                         beam_options=["--direct_num_workers=1", "--direct_running_mode=in_memory"])
  assert summary["computed"] == summary["clips"] == 4
  for split in ("val", "test"):
    a, b = _records(local, "lrs2", split), _records(beam, "lrs2", split)
    assert list(a) == list(b)
    for clip_id in a:
      for key, value in a[clip_id].items():
        np.testing.assert_array_equal(value, b[clip_id][key], err_msg=f"{clip_id} {key}")


def test_resume_after_interrupt(lrs2, tmp_path, monkeypatch):
  out = str(tmp_path)
  seen = []

  def stop_after_three(report):
    seen.append(report["id"])
    if len(seen) == 3:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    prep.prepare("lrs2", lrs2["src"], out, ["train"], workers=1, progress=False, on_result=stop_after_three)
  assert not os.path.exists(os.path.join(out, "lrs2")), "no dataset may appear before all clips are done"
  clips = lrs_layout.find_clips("lrs2", lrs2["src"], ["train"])["train"]
  markers = {c.id: os.stat(prep.work_paths(os.path.join(out, "_work", "lrs2"), c)[0]).st_mtime_ns
             for c in clips if c.id in seen}

  summary = prep.prepare("lrs2", lrs2["src"], out, ["train"], workers=2, progress=False)
  assert (summary["computed"], summary["resumed"]) == (len(clips) - 3, 3)
  report = _report(out)
  assert sorted(clip_id for (_, clip_id), line in report.items() if line["resumed"]) == sorted(seen)
  for c in clips:
    if c.id in seen:
      assert os.stat(prep.work_paths(os.path.join(out, "_work", "lrs2"), c)[0]).st_mtime_ns == markers[c.id]
  ids = [open_split(out, "lrs2", "train")[i]["id"] for i in range(len(open_split(out, "lrs2", "train")))]
  ok = [clip_id for (_, clip_id), line in report.items() if line["status"] == "ok"]
  assert sorted(ids) == sorted(ok) and len(set(ids)) == len(ids)
  # Unchanged inputs: nothing to do. A touched source file: only that clip is recomputed.
  assert prep.prepare("lrs2", lrs2["src"], out, ["train"], progress=False)["status"] == "unchanged"
  os.utime(clips[0].video, ns=(1, 1))
  # That clip is recomputed, then the rebuild dies while writing shards: the previous dataset stays as it
  # was, and no staging folder is left.
  load = shards.load_example
  calls = []

  def fail_on_third(*args):
    calls.append(1)
    if len(calls) == 3:
      raise OSError("disk full")
    return load(*args)

  monkeypatch.setattr(shards, "load_example", fail_on_third)
  with pytest.raises(OSError, match="disk full"):
    prep.prepare("lrs2", lrs2["src"], out, ["train"], workers=1, progress=False)
  monkeypatch.setattr(shards, "load_example", load)
  assert sorted(_records(out, "lrs2", "train")) == sorted(ids)
  assert not [d for d in os.listdir(os.path.join(out, "_work", "lrs2")) if d.startswith("_")]
  again = prep.prepare("lrs2", lrs2["src"], out, ["train"], workers=1, progress=False)
  assert (again["status"], again["computed"]) == ("written", 0), "the failed run recomputed the touched clip"
  with pytest.raises(UserError, match="would drop train"):
    prep.prepare("lrs2", lrs2["src"], out, ["val"], progress=False)


def _cli(*argv: str) -> tuple[int, str, str]:
  stdout, stderr = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    code = cli.main(["prep", *argv])
  return code, stdout.getvalue(), stderr.getvalue()


def test_cli_exit_status_and_json(lrs2, tmp_path):
  code, stdout, _ = _cli("--dataset", "lrs2", "--src", lrs2["src"], "--out", str(tmp_path / "a"),
                         "--splits", "val", "--limit", "1", "--workers", "1", "--json", "--no-progress")
  summary = json.loads(stdout)
  assert code == 0 and (summary["status"], summary["ok"], summary["clips"]) == ("written", 1, 1)
  code, _, stderr = _cli("--dataset", "lrs3", "--src", lrs2["src"], "--out", str(tmp_path / "b"))
  assert code == 2 and "LRS3 folder for split 'pretrain' not found" in stderr
  broken = tmp_path / "broken" / "train" / "someone"
  broken.mkdir(parents=True)
  (broken / "x.mp4").write_bytes(b"not a video")
  code, stdout, _ = _cli("--dataset", "folder", "--src", str(tmp_path / "broken"), "--out", str(tmp_path / "c"),
                         "--workers", "1", "--no-progress")
  assert code == 1 and "no clip could be prepared" in stdout
  # Skipped clips make the exit status 1 although the dataset holds the others (a rerun over the fixture's
  # output, which has bad clips).
  code, stdout, _ = _cli("--dataset", "lrs2", "--src", lrs2["src"], "--out", lrs2["out"], "--workers", "1",
                         "--no-progress")
  assert code == 1 and "prepared, " in stdout and "skipped mvlrs_v1/main/" in stdout


def test_layouts(tmp_path):
  for speaker in ("s1", "s2", "s3", "s4"):
    os.makedirs(tmp_path / "trainval" / speaker)
    (tmp_path / "trainval" / speaker / "00001.mp4").write_bytes(b"")
  clips = lrs_layout.find_clips("lrs3", str(tmp_path), ["train", "val"], val_fraction=0.25)
  train, val = ({c.speaker for c in clips[s]} for s in ("train", "val"))
  assert len(val) == 1 and len(train) == 3 and not train & val
  with pytest.raises(UserError, match="test"):
    lrs_layout.find_clips("lrs3", str(tmp_path), ["test"])
  lrs2 = tmp_path / "lrs2"
  os.makedirs(lrs2 / "mvlrs_v1" / "main")
  (lrs2 / "test.txt").write_text("123/00001 NF\n\n123/00002 NF\n")
  clips = lrs_layout.find_clips("lrs2", str(lrs2), ["test"])["test"]
  assert [c.id for c in clips] == ["123/00001", "123/00002"]
  with pytest.raises(UserError, match="train.txt"):
    lrs_layout.find_clips("lrs2", str(lrs2), ["train"])


def test_cli_lrs2_box_zooms_in(lrs2, tmp_path):
  """--lrs2-box 0.1875,...: the crop is the centre 62.5% of the frame, i.e. the whole-frame crop zoomed 1.6x."""
  code, _, _ = _cli("--dataset", "lrs2", "--src", lrs2["src"], "--out", str(tmp_path / "tight"), "--splits", "val",
                    "--limit", "1", "--workers", "1", "--no-progress", "--lrs2-box", "0.1875,0.1875,0.8125,0.8125")
  assert code == 0
  (tight,) = _records(str(tmp_path / "tight"), "lrs2", "val").values()
  whole = _records(lrs2["out"], "lrs2", "val")[tight["id"]]
  zoomed = np.stack([np.asarray(Image.fromarray(f[18:78, 18:78]).resize((96, 96), Image.BILINEAR))
                     for f in whole["crops"]])
  assert np.abs(tight["crops"].astype(float) - zoomed).mean() < 6
  assert np.abs(tight["crops"].astype(float) - whole["crops"]).mean() > 15
  code, _, stderr = _cli("--dataset", "lrs2", "--src", lrs2["src"], "--out", str(tmp_path / "bad"),
                         "--lrs2-box", "0.5,0.2,0.4,0.9")
  assert code == 2 and "--lrs2-box 0.5,0.2,0.4,0.9: expected X0,Y0,X1,Y1" in stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs an OS with CPU affinity and two cores to leave one out")
def test_default_workers_count_the_cores_this_process_may_use():
  """Under taskset (or a container's cpuset) prep, synth and sync size their default pools to the cores the
  process may run on, not the machine's os.cpu_count()."""
  import subprocess
  import sys

  one_core = min(os.sched_getaffinity(0))
  out = subprocess.run([sys.executable, "-m", "modeformer_jax.cli", "prep", "--help"], capture_output=True,
                       text=True, check=True, preexec_fn=lambda: os.sched_setaffinity(0, {one_core})).stdout
  assert "1 here" in " ".join(out.split()), out
