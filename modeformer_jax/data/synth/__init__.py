"""A generated stand-in for LRS2/LRS3: talking-face clips whose mouth and voice follow one articulation track.

Each clip is driven by an articulation track on a 1 kHz control grid: words of 1-3 syllables (80-320 ms each,
scaled by the speaker's rate), pauses, and within syllables closures, bursts, fricatives, nasals, glides and
vowels. The track sets mouth opening and lip rounding (smoothed as coarticulation) and the sound sources
(voicing, three noise bands, nasality). Video draws the mouth from opening and rounding; audio is a harmonic
source at the speaker's pitch (with jitter and intonation) shaped by formants tied to the same mouth shape
(opening raises F1, rounding lowers F2), plus band noise for fricatives and bursts. Lips can close while the
voice goes on (M, B) and open in silence (T, K closures), so energy alone does not give the alignment away.

Offset convention (SPEC section 6): offset_frames > 0 means the audio LEADS the video: the sound of video
frame i is at audio frame i - offset_frames. Audio sample n renders the track at time
(n + round(offset_frames * sample_rate / fps)) / sample_rate, while video frame i shows it at (i + 0.5) / fps.
The track extends beyond the clip on both sides and every random stream is indexed by absolute time, so a
shifted clip is the in-sync clip's audio moved by whole frames, with genuine speech where the shift uncovers
new audio (no padding, no wrap-around) and the same duration.

Datasets: write_dataset lays clips out like LRS2 (mvlrs_v1/main|pretrain/<show>/<clip>.mp4 + .txt, split
lists) or LRS3 (pretrain|trainval|test/<speaker>/<clip>.mp4 + .txt with face boxes), assigns whole speakers
to splits, and writes manifest.jsonl with the ground truth of every clip.

Modules, bottom up: streams (random streams), speakers (per-speaker voice and looks), articulation (the track),
audio and video (rendering from the track), clip (render_clip), layout (folders, splits, ids, side files),
dataset (plan_dataset, write_dataset, the manifest), in_memory (clips rendered straight into training records,
the `data.source = "synthetic"` of configs). The names below are the package's public interface.
"""

from modeformer_jax.data.synth.articulation import CONTROL_RATE
from modeformer_jax.data.synth.clip import RenderedClip, num_frames, num_samples, render_clip
from modeformer_jax.data.synth.dataset import MANIFEST, plan_dataset, read_manifest, write_dataset
from modeformer_jax.data.synth.layout import (FACE_SCALE, FRAME_SIZE, LAYOUTS, SPLIT_FRACTIONS, clip_path, speaker_id,
                                              speaker_splits)
from modeformer_jax.data.synth.speakers import SpeakerStyle, speaker_style
