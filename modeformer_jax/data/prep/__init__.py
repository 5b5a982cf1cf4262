"""LRS2 / LRS3 / plain video folders -> a TFDS ArrayRecord dataset of face crops, audio and log-mel.

Three stages:
  1. find clips (modeformer_jax.data.lrs_layout) and stat them (fingerprints.py);
  2. per clip, `process_clip` (clip.py; pure, picklable; the same function in the local process pool,
     local_runner.py, and in the Beam pipeline, beam_runner.py): decode at 25 fps / 16 kHz mono, cut audio and
     video to a common length, face boxes, 96x96 crops, log-mel. `work_one` (work_files.py) persists its
     outcome in OUT/_work/<dataset>/<split>/: the record as a pickle, then a small JSON marker (the report line
     plus what the result depends on), each written to a temporary name and os.replace'd. The marker is the
     commit point, so an interrupted run leaves only whole results and a rerun recomputes only clips without a
     valid marker (source file, its .txt or the settings changed);
  3. write the shards (shards.py): a TFDS GeneratorBasedBuilder reads the work files into a staging folder
     (TFDS itself writes to an `incomplete.*` folder and renames it when done), then the staged version folder
     replaces OUT/<dataset>/<version> by two renames. No partial shard ever carries the final name.
`prepare` (build.py) runs the three; summary.py writes the report and the summary; options.py holds the
per-clip settings.

A rerun whose clip list, source files and settings are unchanged (the fingerprints in
OUT/<dataset>/<version>/prep_state.json) does nothing. The dataset holds exactly the splits of the run that
wrote it; a run that would drop splits of an existing dataset stops unless `replace=True`. OUT/_work can be
deleted once the dataset is final, at the price of recomputing everything if it is ever rebuilt.

Skip reasons (the report's `reason`; a skipped clip never stops the run):
  missing       the video named by a split list is not there
  unreadable    no read permission on the video or its .txt
  corrupt       not a media file, or nothing decodable in it
  no_video      no video stream / no decodable video frame
  no_audio      no audio stream / no decodable audio
  too_short     fewer than min_frames video frames or min_mel_frames mel frames after cutting to a common length
  av_mismatch   |audio - video duration| > max_av_diff seconds
  bad_txt       LRS3 .txt with a malformed FRAME table (a damaged side file: neither its boxes nor its
                transcript are trusted). A missing .txt, or one without a table, falls back to the detector with
                a warning instead.
  no_face       the detector found a face in fewer than min_face_coverage of the frames
  error         anything else (the detail holds the exception); reported, never raised
"""

from modeformer_jax.data.prep.build import prepare
from modeformer_jax.data.prep.clip import REASONS, process_clip
from modeformer_jax.data.prep.fingerprints import clip_key
from modeformer_jax.data.prep.options import PrepOptions
from modeformer_jax.data.prep.shards import STATE_FILE
from modeformer_jax.data.prep.summary import REPORT_FILE, format_summary
from modeformer_jax.data.prep.work_files import load_example, read_marker, work_one, work_paths
