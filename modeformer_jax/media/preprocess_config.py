"""Every preprocessing constant (SPEC section 1) and the face detection / cropping settings, as one config.

Configs elsewhere embed this as `config.preprocess`; media functions take it (or its fields) as an argument so
that no constant is buried in code.
"""

import ml_collections


def preprocess_config() -> ml_collections.ConfigDict:
  """Returns the LRS2-protocol preprocessing settings (SPEC section 1) plus our face-handling choices."""
  c = ml_collections.ConfigDict()

  # Video (SPEC 1).
  c.fps = 25.0
  c.crop_size = 96  # square face crop, RGB
  c.mouth_row_start = 48  # the model sees rows 48..95 of the crop (the lower half)
  c.video_window_frames = 5

  # Audio and log-mel (SPEC 1; the Wav2Lip / VocaLiST LRS2 values).
  c.sample_rate = 16000
  c.n_fft = 800
  c.win_length = 800
  c.hop_length = 200
  c.n_mels = 80
  c.fmin = 55.0
  c.fmax = 7600.0
  c.preemphasis = 0.97
  c.ref_level_db = 20.0
  c.min_level_db = -100.0
  c.max_abs_value = 4.0
  c.mel_window_frames = 16
  c.mel_frames_per_second = 80  # = sample_rate / hop_length; 3.2 mel frames per video frame

  # Fixed crop for face-centred datasets: (x0, y0, x1, y1) as fractions of the frame. LRS2 frames are already
  # face-centred 160x160 crops, so the default is the whole frame.
  c.lrs2_box = (0.0, 0.0, 1.0, 1.0)

  # Face detection (ours; the paper does not say). "blazeface": MediaPipe's BlazeFace detectors run in JAX
  # (media/blazeface.py; weights in the package); "haar": OpenCV's Haar cascade (frontal faces only, misses
  # about 40% of generated faces and every face smaller than min_face_fraction), kept as a fallback.
  c.face_detector = "blazeface"
  c.detect_stride = 5  # run the detector on every 5th frame (and the last); boxes in between are interpolated
  # BlazeFace: "auto" runs the full-range model (faces up to about 5 m) on tiles and the whole frame, and the
  # short-range one (close-ups) on frames where it found nothing; "full" or "short" runs that model alone.
  c.blazeface_model = "auto"
  # Detection threshold (MediaPipe's is 0.5): 0.3 finds 24-px faces in generated wide shots on 100% of frames
  # instead of 78%, with 0.03 false faces per frame, which the tracker leaves as short tracks.
  c.blazeface_min_score = 0.3
  c.blazeface_nms_iou = 0.3  # MediaPipe's weighted non-maximum suppression overlap
  # Smallest face to find (box height in pixels), or this fraction of the frame's shorter side if larger: sets
  # the tiles, whose count grows with (frame side / smallest face)^2 (454x256: 7 windows, 1080p: 9).
  c.min_face_px = 18
  c.blazeface_min_face_fraction = 0.06
  c.blazeface_tile_overlap = 0.25  # neighbouring tiles overlap by this fraction of their side
  # The full scan (every tile and the whole frame) on every 10th detection frame, every 2 s at detect_stride 5;
  # the detection frames between look only around the faces the scans before and after them found (a window
  # per face), so a face that comes into view between two scans is found from the next scan on, and on the
  # frames before it where it stayed near where that scan saw it. 1: the full scan on every detection frame.
  # Against every 5th (the default until 2026-12-01): 0.71x the detector's time on generated wide shots, faces
  # found on 100% of frames both ways, sync's offsets and speakers on wide shots and dialogues as good
  # (BENCHMARKS.md, "1080p with face detection on, part 3").
  c.blazeface_scan_every = 10
  # Rounds of looking again, zoomed in, where the neighbouring detection frames saw a face this one lacks.
  c.blazeface_refind_rounds = 2
  # BlazeFace's box runs from the brows to the chin; scaled by 1.22 and moved up by 0.1 of its height it frames
  # faces as the Haar cascade did (measured on generated faces), so the crop settings below serve both.
  c.blazeface_box_scale = 1.22
  c.blazeface_box_shift_y = -0.1
  # Windows per network call. On the 2-core dev CPU 16 runs a window 1.3x faster than 64 (full-range 15 vs 20 ms,
  # short-range 5.4 vs 7.7 ms, in one run): a batch's activations stay in cache.
  c.blazeface_batch = 16
  # Haar cascade: file name in OpenCV's data or a path; frames downscaled to detect_max_side first.
  c.haar_cascade = "haarcascade_frontalface_default.xml"
  c.detect_max_side = 320
  c.min_face_fraction = 0.15  # smallest face side, as a fraction of the frame's shorter side
  c.detect_scale_factor = 1.1  # cascade pyramid step
  # Cascade vote threshold: lower finds more faces and more false positives; the tracker keeps the largest,
  # longest track, so short-lived false positives do little harm.
  c.detect_min_neighbors = 3
  c.detect_equalize = True  # histogram equalisation before detecting: helps dim or low-contrast faces
  # Faces whose median box is smaller than this many pixels get a warning: the crop (1.4 boxes wide) then spans
  # under 67 source pixels, so over half of its 96x96 pixels are interpolated (upsampled more than 1.43x).
  c.small_face_px = 48
  c.track_iou = 0.3  # a detection continues a track when it overlaps the track's last box this much,
  c.track_box_scale = 2.0  # both boxes scaled by this about their centres (a small face moves its own size)
  c.max_gap_frames = 12  # detection gaps up to this long (frames) are interpolated; longer ones are invalid
  c.median_window = 3  # median over a track's consecutive detections (odd), removes single outliers
  c.smooth_window = 5  # moving average over frames after interpolation (odd), removes jitter

  # Crop around a detected / LRS3 box: side = max(w, h) * scale, centre moved down by shift_y * max(w, h).
  # These reproduce syncnet_python's crop_video with its crop_scale 0.4 (side 1.4 box, centre 0.2 box lower),
  # which frames a face with its chin and some neck, as face-centred LRS2 / LRS3 frames do.
  c.face_crop_scale = 1.4
  c.face_crop_shift_y = 0.2
  return c


def with_face_defaults(pp: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """pp with the face-detection fields it lacks taken from today's defaults (configs saved by older versions).

  A saved face_detector naming a cascade file (what it held before BlazeFace) means "haar" with that cascade,
  so an older run keeps detecting faces as it did.
  """
  defaults = preprocess_config()
  missing = [k for k in defaults if k not in pp]
  legacy = str(pp.get("face_detector", "")).endswith(".xml")
  if not missing and not legacy:
    return pp
  out = ml_collections.ConfigDict(pp.to_dict())
  for k in missing:
    out[k] = defaults[k]
  if legacy:
    out.haar_cascade, out.face_detector = out.face_detector, "haar"
  return out


def syncnet_preprocess_config() -> ml_collections.ConfigDict:
  """syncnet_python's inputs (SPEC section 7): 224x224 whole-face crops made by its crop_video, MFCCs at 100 Hz
  with python_speech_features' defaults, and the audio window of video frame f = MFCC columns 4f..4f+19.

  The window fields keep their names: the "mel" arrays of records and of `modeformer sync` hold MFCCs here,
  so the window code (data.windows.WindowSpec) serves both front-ends unchanged.
  """
  c = preprocess_config()
  c.crop_size = 224
  c.mouth_row_start = 0  # SyncNet sees the whole face
  c.audio_features = "mfcc"  # "logmel" (the default front-end) or "mfcc"
  c.mel_window_frames = 20  # 0.2 s of MFCC columns
  c.mel_frames_per_second = 100  # window of frame f starts at column 100 f / 25 = 4 f
  c.mfcc_winlen = 0.025
  c.mfcc_winstep = 0.01
  c.mfcc_numcep = 13
  c.mfcc_nfilt = 26
  c.mfcc_nfft = 512
  c.mfcc_lowfreq = 0.0
  c.mfcc_highfreq = 0.0  # 0 = sample_rate / 2
  c.mfcc_preemph = 0.97
  c.mfcc_ceplifter = 22
  c.mfcc_append_energy = True
  # syncnet_python's crop_video: half-size s and centre median-filtered over 13 frames, the frame padded with
  # 110, rows cy - s .. cy + s (1 + 2 c), columns cx - s (1 + c) .. cx + s (1 + c), resized to crop_size.
  c.face_crop = "syncnet"  # "ours" (media/crops.face_crops with face_crop_scale / shift_y) or "syncnet"
  c.syncnet_crop_scale = 0.4
  c.syncnet_pad_value = 110
  c.syncnet_median_frames = 13
  return c
