"""InfoNCE with hard (same-utterance) and global in-batch negatives, on one device or sharded (SPEC section 3).

Shapes: B clips in the global batch, N hard negatives per clip, K = 1 + N audio windows per clip, D embedding dim.
Inputs are L2-normalised, so logits = logit_scale * dot product. Candidate sets (`negatives`):
  "hard":     row i against its own K audio windows, target 0;
  "in_batch": row i against every clip's positive audio[j, 0], target i;
  "both":     row i against all B*K audio windows of the batch (masked ones removed), target i*K.
One core, `_row_losses`, scores local rows against shared columns; the single-device and the shard_map path
both call it, and its chunked form streams columns so memory is O(rows x chunk_size).

Audio identities (`audio_ids` [B, K, 2]: record, window start; data.windows.ExampleSampler): two rows drawn
from one record (data.windows_per_record > 1, or a record met twice across an epoch boundary) can hold the
same audio window, and a row's positive would then reappear among its candidates as a "negative" that it can
never beat (its loss could not go below log 2). Every candidate with the id of a row's positive, other than
the target itself, is removed from that row's candidates.

Symmetric (`symmetric=True`, as CLIP-style losses): the audio -> video direction too. Each clip's positive
audio window is a row against the B video windows of the global batch, its own clip's video the target, and the
loss is the mean of the two directions' row means. A duplicate in this direction is a video window that is the
same window as the row's own clip's: its positive has the row's audio id (same record, same start), so it is in
sync with the row's audio as well, and it is removed from that row's candidates as a duplicated audio window is
from a video row's. Hard negatives are no rows here: their video windows are not in the batch.

The baselines' objectives (SyncNet's margin loss, PM's multi-way cross-entropy, VocaLiST's binary
cross-entropy, AVST's cross-entropy over offsets) are at the end; `objective_loss` picks a model's own, and the
train step calls it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

NEGATIVES = ("hard", "in_batch", "both")
# Finite, not -inf: exp(NEG - m) underflows to exactly 0 while differences of two NEGs stay 0, never inf - inf.
_NEG = -1e9


def candidate_columns(audio: jax.Array, audio_mask: jax.Array, audio_ids: jax.Array,
                      negatives: str) -> tuple[jax.Array, jax.Array, jax.Array, int]:
  """Shared candidate columns of the whole batch for "in_batch" / "both".

  audio [B, K, D], audio_mask [B, K], audio_ids [B, K, 2] -> columns [C, D], column mask [C], column ids [C, 2],
  stride: row i's target column is i * stride.
  """
  if negatives == "in_batch":
    return audio[:, 0], audio_mask[:, 0], audio_ids[:, 0], 1
  b, k, d = audio.shape
  return audio.reshape(b * k, d), audio_mask.reshape(b * k), audio_ids.reshape(b * k, -1), k


def distinct_ids(batch: int, k: int) -> jax.Array:
  """audio_ids [batch, k, 2] under which no two windows are the same audio (callers that know none repeat)."""
  rows, cols = jnp.meshgrid(jnp.arange(batch, dtype=jnp.int32), jnp.arange(k, dtype=jnp.int32), indexing="ij")
  return jnp.stack([rows, cols], axis=-1)


def _block(rows, row_ids, cols, col_mask, col_ids, col_start, targets, scale):
  """One block of columns -> per-row (max logit, sum exp(logit - max), target logit or 0 if not in this block).

  row_ids [R, 2] are the ids of the rows' positives: a column with that id other than the target is no negative.
  """
  logits = scale * jnp.einsum("rd,cd->rc", rows, cols, preferred_element_type=jnp.float32)
  is_target = (col_start + jnp.arange(cols.shape[0]))[None] == targets[:, None]
  duplicate = jnp.all(col_ids[None] == row_ids[:, None], axis=-1) & ~is_target
  logits = jnp.where(col_mask[None] & ~duplicate, logits, _NEG)
  # The max only shifts the exponent; the logsumexp value does not depend on it, so it needs no gradient.
  m = jax.lax.stop_gradient(logits.max(-1))
  s = jnp.exp(logits - m[:, None]).sum(-1)
  return m, s, jnp.where(is_target, logits, 0.0).sum(-1)


def _combine(a, b):
  """Merge the statistics of two disjoint column blocks (online logsumexp)."""
  (m1, s1, t1), (m2, s2, t2) = a, b
  m = jnp.maximum(m1, m2)
  return m, s1 * jnp.exp(m1 - m) + s2 * jnp.exp(m2 - m), t1 + t2


def _row_losses(rows, row_ids, cols, col_mask, col_ids, targets, scale, chunk_size=None):
  """Cross-entropy [R] and top-1 hit [R] of rows [R, D] over columns [C, D] (mask [C]), target column per row [R].

  row_ids [R, 2] and col_ids [C, 2] remove duplicates of a row's positive (module docstring). With chunk_size,
  columns go through a scan in chunks whose body is rematerialised in the backward pass, so neither direction
  holds more than R x chunk_size logits. A hit is target logit == row max (ties count as hits).
  """
  c, d = cols.shape
  if chunk_size is None or chunk_size >= c:
    m, s, t = _block(rows, row_ids, cols, col_mask, col_ids, 0, targets, scale)
  else:
    # The first chunk seeds the carry, so the carry has the rows' types (varying over the mesh axes in shard_map).
    block = jax.checkpoint(lambda cols, mask, ids, start: _block(rows, row_ids, cols, mask, ids, start, targets,
                                                                 scale))
    first = block(cols[:chunk_size], col_mask[:chunk_size], col_ids[:chunk_size], 0)
    pad = -c % chunk_size  # padded columns are masked out
    chunked = lambda x: jnp.pad(x[chunk_size:], ((0, pad),) + ((0, 0),) * (x.ndim - 1)).reshape(
        -1, chunk_size, *x.shape[1:])
    starts = (1 + jnp.arange(-(-(c - chunk_size) // chunk_size))) * chunk_size
    (m, s, t), _ = jax.lax.scan(lambda carry, xs: (_combine(carry, block(*xs)), None), first,
                                (chunked(cols), chunked(col_mask), chunked(col_ids), starts))
  return m + jnp.log(s) - t, t >= m


def _sums(video, audio, audio_mask, audio_ids, all_audio, all_mask, all_ids, row_start, scale, negatives, chunk_size):
  """Sums over the local rows of (cross-entropy, hits, hard hits); all_* are the global batch's audio."""
  hard = scale * jnp.einsum("bd,bkd->bk", video, audio, preferred_element_type=jnp.float32)
  hard = jnp.where(audio_mask, hard, _NEG)
  hard_hit = hard[:, 0] >= hard.max(-1)
  if negatives == "hard":
    ce, hit = jax.nn.logsumexp(hard, axis=-1) - hard[:, 0], hard_hit
  else:
    cols, col_mask, col_ids, stride = candidate_columns(all_audio, all_mask, all_ids, negatives)
    targets = (row_start + jnp.arange(video.shape[0])) * stride
    ce, hit = _row_losses(video, audio_ids[:, 0], cols, col_mask, col_ids, targets, scale, chunk_size)
  return ce.sum(), hit.sum(dtype=jnp.float32), hard_hit.sum(dtype=jnp.float32)


def _audio_to_video(audio, audio_ids, all_video, all_ids, row_start, scale, chunk_size):
  """Sums over the local clips of (cross-entropy, hits) of their positive audio against every video of the global
  batch (all_video [B, D]; all_ids [B, K, 2], the ids of each video's own audio windows)."""
  targets = row_start + jnp.arange(audio.shape[0])
  ce, hit = _row_losses(audio[:, 0], audio_ids[:, 0], all_video, jnp.ones(all_video.shape[:1], bool),
                        all_ids[:, 0], targets, scale, chunk_size)
  return ce.sum(), hit.sum(dtype=jnp.float32)


def _check(negatives: str, chunk_size: int | None) -> None:
  if negatives not in NEGATIVES:
    raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
  if chunk_size is not None and chunk_size < 1:
    raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")


def _result(ce_sum, hits, hard_hits, b, audio_ce_sum=None, audio_hits=None):
  metrics = {"accuracy": hits / b, "hard_accuracy": hard_hits / b}
  if audio_ce_sum is None:
    return ce_sum / b, metrics
  return (ce_sum + audio_ce_sum) / (2 * b), dict(metrics, audio_accuracy=audio_hits / b)


def info_nce(video: jax.Array, audio: jax.Array, audio_mask: jax.Array, logit_scale: jax.Array | float, *,
             negatives: str = "both", chunk_size: int | None = None, audio_ids: jax.Array | None = None,
             symmetric: bool = False) -> tuple[jax.Array, dict[str, jax.Array]]:
  """InfoNCE on the whole batch as one array program (single device, or auto-sharded by jit).

  Args:
    video: [B, D] L2-normalised video embeddings.
    audio: [B, K, D] L2-normalised audio embeddings; [:, 0] the positive, [:, 1:] the hard negatives.
    audio_mask: [B, K] bool, False for padded hard negatives; column 0 must be True.
    logit_scale: scalar, 1 / temperature.
    negatives: "hard", "in_batch" or "both" (module docstring).
    chunk_size: stream the in-batch columns in chunks of this many (None: one B x C logits matrix).
    audio_ids: [B, K, 2] int identities of the audio windows (module docstring); None: all distinct.
    symmetric: add the audio -> video rows (module docstring).
  Returns:
    (mean cross-entropy over the B rows (symmetric: the mean of the two directions'), {"accuracy": top-1 over
    the candidate set, "hard_accuracy": top-1 over the row's own K windows, symmetric: "audio_accuracy", top-1
    of the audio rows over the batch's videos}), all float32 scalars.
  """
  _check(negatives, chunk_size)
  scale = jnp.asarray(logit_scale, jnp.float32)
  ids = distinct_ids(*audio_mask.shape) if audio_ids is None else audio_ids
  sums = _sums(video, audio, audio_mask, ids, audio, audio_mask, ids, 0, scale, negatives, chunk_size)
  if symmetric:
    sums += _audio_to_video(audio, ids, video, ids, 0, scale, chunk_size)
  return _result(*sums[:3], video.shape[0], *sums[3:])


def sharded_info_nce(video: jax.Array, audio: jax.Array, audio_mask: jax.Array, logit_scale: jax.Array | float, *,
                     mesh: jax.sharding.Mesh, batch_axes: tuple[str, ...] = ("data",), negatives: str = "both",
                     chunk_size: int | None = None, audio_ids: jax.Array | None = None,
                     symmetric: bool = False) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`info_nce` with the batch split over `batch_axes` of `mesh`: same value and gradients, less memory per device.

  Each device scores its B_local video rows against the all-gathered audio of the global batch (local rows x
  global columns), so it holds B_local x C logits (B_local x chunk_size with chunk_size) instead of B x C; with
  symmetric, also its B_local positive audio rows against the all-gathered B videos. The batch dimension of the
  inputs is split as P(batch_axes); other mesh axes see replicated copies. Shapes and returns as `info_nce`; B
  must be divisible by the product of the batch axes' sizes. Usable inside jax.jit.
  """
  _check(negatives, chunk_size)
  batch_axes = tuple(batch_axes)
  n_shards = math.prod(mesh.shape[a] for a in batch_axes)
  if video.shape[0] % n_shards:
    raise ValueError(f"batch {video.shape[0]} is not divisible by the {n_shards} shards of mesh axes {batch_axes}")

  def local(video, audio, audio_mask, audio_ids, scale):
    if negatives == "hard" and not symmetric:  # own rows only: nothing to gather
      all_audio, all_mask, all_ids, row_start = audio, audio_mask, audio_ids, 0
    else:
      # Tuple axis_index and tiled all_gather both order shards major-to-minor in batch_axes, as P(batch_axes) does.
      all_audio, all_mask, all_ids = (jax.lax.all_gather(x, batch_axes, tiled=True)
                                      for x in (audio, audio_mask, audio_ids))
      row_start = jax.lax.axis_index(batch_axes) * video.shape[0]
    sums = _sums(video, audio, audio_mask, audio_ids, all_audio, all_mask, all_ids, row_start, scale, negatives,
                 chunk_size)
    if symmetric:
      all_video = jax.lax.all_gather(video, batch_axes, tiled=True)
      sums += _audio_to_video(audio, audio_ids, all_video, all_ids, row_start, scale, chunk_size)
    return jax.lax.psum(sums, batch_axes)

  spec = P(batch_axes)
  ids = distinct_ids(*audio_mask.shape) if audio_ids is None else audio_ids
  sums = jax.shard_map(local, mesh=mesh, in_specs=(spec, spec, spec, spec, P()), out_specs=P())(
      video, audio, audio_mask, ids, jnp.asarray(logit_scale, jnp.float32))
  return _result(*sums[:3], video.shape[0], *sums[3:])


# ---- Objectives of the baselines (SPEC section 7) and the dispatch the train step uses ----------------------
# infonce:     the above, on unit embeddings (ModEFormer; SyncNet trained with our loss).
# multiway:    Perfect Match: cross-entropy over the positive and the clip's own candidate offsets (cosine
#              similarity / temperature), i.e. InfoNCE with negatives="hard" whatever the stage says.
# contrastive: SyncNet's original margin loss on Euclidean distances of raw embeddings.
# bce:         VocaLiST's binary in-sync / off-sync classification of (video, audio) pairs.
# multiway_logits: AVST (reconstructed): cross-entropy over the clip's candidate offsets of a joint model's logits.
OBJECTIVES = ("infonce", "multiway", "contrastive", "bce", "multiway_logits")


def _balanced_mean(pos: jax.Array, neg: jax.Array, neg_mask: jax.Array) -> jax.Array:
  """(mean over positives [B] + mean over the valid negatives [B, N]) / 2: each class weighs half whatever N is."""
  return 0.5 * (pos.mean() + jnp.sum(jnp.where(neg_mask, neg, 0.0)) / jnp.maximum(neg_mask.sum(), 1))


def _hard_hits(scores: jax.Array, audio_mask: jax.Array) -> jax.Array:
  """Fraction of rows whose positive (column 0) scores highest among the row's valid candidates; scores [B, K]."""
  scores = jnp.where(audio_mask, scores, -jnp.inf)
  return jnp.mean(scores[:, 0] >= scores.max(-1))


def contrastive_loss(video: jax.Array, audio: jax.Array, audio_mask: jax.Array,
                     margin: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """SyncNet's loss (Chung and Zisserman 2016): d^2 for in-sync pairs, max(margin - d, 0)^2 for off-sync ones.

  video [B, D], audio [B, K, D] raw embeddings ([:, 0] in sync, [:, 1:] the hard negatives), audio_mask
  [B, K]. d is the Euclidean distance. The paper averages over pairs drawn half in sync; here every clip
  brings one positive and N negatives, so the two classes are averaged separately and weigh half each.
  """
  sq = jnp.sum(jnp.square(video[:, None] - audio), axis=-1)
  d = jnp.sqrt(jnp.maximum(sq, 1e-12))  # the floor keeps the gradient finite at d = 0
  loss = _balanced_mean(sq[:, 0], jnp.square(jnp.maximum(margin - d[:, 1:], 0.0)), audio_mask[:, 1:])
  hits = _hard_hits(-d, audio_mask)
  return loss, {"accuracy": hits, "hard_accuracy": hits}


def pair_bce_loss(logits: jax.Array, audio_mask: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """VocaLiST's binary cross-entropy: logits [B, K] of (clip, candidate) pairs, candidate 0 in sync (label 1),
  the others off sync (label 0); classes weigh half each, as `contrastive_loss`."""
  pos = -jax.nn.log_sigmoid(logits[:, 0])
  neg = -jax.nn.log_sigmoid(-logits[:, 1:])
  hits = _hard_hits(logits, audio_mask)
  return _balanced_mean(pos, neg, audio_mask[:, 1:]), {"accuracy": hits, "hard_accuracy": hits}


def offset_cross_entropy(logits: jax.Array, audio_mask: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Cross-entropy of candidate 0 (in sync) among the clip's valid candidates: logits [B, K] of (clip, candidate)
  pairs from a joint model (AVST), audio_mask [B, K]. PM's multi-way objective with the model's logits as
  scores; no in-batch negatives, which would cost a joint pass per (clip, other clip's audio) pair."""
  masked = jnp.where(audio_mask, logits, _NEG)
  hits = _hard_hits(logits, audio_mask)
  return jnp.mean(jax.nn.logsumexp(masked, axis=-1) - logits[:, 0]), {"accuracy": hits, "hard_accuracy": hits}


def objective_loss(net, outputs, audio_mask: jax.Array, *, mesh: jax.sharding.Mesh, batch_axes: tuple[str, ...],
                   negatives: str, chunk_size: int | None, audio_ids: jax.Array | None = None,
                   symmetric: bool = False) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The training loss of `net` (its `objective` attribute) on its forward pass's outputs.

  outputs: (video [B, D], audio [B, K, D]) embeddings, or logits [B, K] for the cross-modal models ("bce",
  "multiway_logits").
  audio_ids [B, K, 2]: see the module docstring (only the in-batch candidates of InfoNCE need them).
  symmetric: InfoNCE's audio -> video rows too (config.stages.N.symmetric; the "infonce" objective only).
  Returns (scalar loss, metrics with "accuracy" and "hard_accuracy"; "temperature" where the loss has one).
  """
  objective = net.objective
  if symmetric and objective != "infonce":
    raise ValueError(f"symmetric: the {objective} objective has no audio -> video direction (InfoNCE only)")
  if objective in ("infonce", "multiway"):
    video, audio = outputs
    loss, metrics = sharded_info_nce(video, audio, audio_mask, net.logit_scale(), mesh=mesh, batch_axes=batch_axes,
                                     negatives="hard" if objective == "multiway" else negatives,
                                     chunk_size=chunk_size, audio_ids=audio_ids, symmetric=symmetric)
    return loss, dict(metrics, temperature=net.temperature())
  if objective == "contrastive":
    return contrastive_loss(*outputs, audio_mask, net.margin)
  if objective == "bce":
    return pair_bce_loss(outputs, audio_mask)
  if objective == "multiway_logits":
    return offset_cross_entropy(outputs, audio_mask)
  raise ValueError(f"unknown objective {objective!r} (known: {', '.join(OBJECTIVES)})")
