"""InfoNCE loss: a float64 numpy reference with finite-difference gradients, sharded and chunked equivalence on 8
simulated CPU devices, the chunked variant's compiled memory, and the accuracy metrics on constructed examples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from modeformer_jax.loss import info_nce, sharded_info_nce

pytestmark = pytest.mark.unit

MODES = ("hard", "in_batch", "both")


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _batch(b=16, k=4, d=8, seed=0):
  rng = np.random.default_rng(seed)
  video = _unit(rng.normal(size=(b, d))).astype(np.float32)
  audio = _unit(rng.normal(size=(b, k, d))).astype(np.float32)
  mask = rng.random((b, k)) > 0.35
  mask[:, 0] = True
  mask[1, 1:] = False  # a clip with no hard negatives at all
  return video, audio, mask


def _np_candidates(mask, negatives, ids=None):
  """Per row: flat indices into the [B*K] audio windows that it scores against, and the target's position.
  ids [B, K, 2]: a window with the id of the row's positive is not a candidate (other than the positive)."""
  b, k = mask.shape
  flat_ids = None if ids is None else [tuple(x) for x in np.asarray(ids).reshape(b * k, -1)]
  rows = []
  for i in range(b):
    if negatives == "hard":
      cand = [i * k + j for j in range(k) if mask[i, j]]
    elif negatives == "in_batch":
      cand = [j * k for j in range(b)]
    else:
      cand = [j for j in range(b * k) if mask.reshape(-1)[j]]
    if flat_ids is not None:
      cand = [j for j in cand if j == i * k or flat_ids[j] != flat_ids[i * k]]
    rows.append((np.array(cand), cand.index(i * k)))
  return rows


def _np_loss(video, audio, mask, scale, negatives, ids=None):
  """The formula in float64 numpy: mean over rows of logsumexp(logits) - logits[target]; plus top-1 accuracy."""
  flat = audio.reshape(-1, audio.shape[-1])
  ces, hits = [], []
  for i, (cand, target) in enumerate(_np_candidates(mask, negatives, ids)):
    logits = scale * flat[cand] @ video[i]
    top = logits.max()
    ces.append(top + np.log(np.exp(logits - top).sum()) - logits[target])
    hits.append(np.argmax(logits) == target)
  return np.mean(ces), np.mean(hits)


def _np_grads(video, audio, mask, scale, negatives, eps=1e-6):
  """Central finite differences of `_np_loss` in float64 w.r.t. video, audio and scale."""
  f = lambda v, a, s: _np_loss(v, a, mask, s, negatives)[0]
  grads = []
  for pos in range(3):
    args = [video.astype(np.float64), audio.astype(np.float64), np.float64(scale)]
    x = np.array(args[pos], dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
      plus, minus = x.copy(), x.copy()
      plus[idx] += eps
      minus[idx] -= eps
      g[idx] = (f(*args[:pos], plus, *args[pos + 1:]) - f(*args[:pos], minus, *args[pos + 1:])) / (2 * eps)
    grads.append(g)
  return grads


def _value_and_grads(fn, *args):
  """(loss, metrics), (d video, d audio, d logit_scale) of fn(video, audio, mask, logit_scale) under jit."""
  (loss, metrics), grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 1, 3), has_aux=True))(*args)
  return loss, metrics, grads


@pytest.mark.parametrize("negatives", MODES)
@pytest.mark.parametrize("chunk_size", [None, 7])
def test_matches_numpy_reference_value_and_gradients(negatives, chunk_size):
  video, audio, mask = _batch(b=5, k=4, d=3, seed=1)
  scale = 7.0
  loss, metrics, grads = _value_and_grads(
      lambda v, a, m, s: info_nce(v, a, m, s, negatives=negatives, chunk_size=chunk_size), video, audio, mask, scale)
  ref_loss, ref_acc = _np_loss(video.astype(np.float64), audio.astype(np.float64), mask, scale, negatives)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
  assert float(metrics["accuracy"]) == pytest.approx(ref_acc)
  assert float(metrics["hard_accuracy"]) == pytest.approx(_np_loss(video, audio, mask, scale, "hard")[1])
  for got, want in zip(grads, _np_grads(video, audio, mask, scale, negatives)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  # Masked hard negatives are not candidates at all, so they get exactly zero gradient.
  assert np.all(np.asarray(grads[1])[~mask] == 0)


def _mesh(shape, names):
  return jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(names))


@pytest.mark.parametrize("shape,names", [((8,), ("data",)), ((4, 2), ("data", "fsdp"))])
@pytest.mark.parametrize("negatives", MODES)
def test_sharded_and_chunked_match_single_device(shape, names, negatives):
  video, audio, mask = _batch(b=16, k=4, d=8)
  scale = jnp.float32(10.0)
  ref_loss, ref_metrics, ref_grads = _value_and_grads(
      lambda v, a, m, s: info_nce(v, a, m, s, negatives=negatives), video, audio, mask, scale)
  mesh = _mesh(shape, names)
  placed = [jax.device_put(x, NamedSharding(mesh, P(names))) for x in (video, audio, mask)]
  # Columns: 16 (in_batch) or 64 (both): 8 divides both, 5 neither, so the last chunk is padded.
  runs = [("sharded", s) for s in (None, 8, 5)] + [("single", s) for s in (8, 5)]
  for kind, chunk_size in runs:
    if kind == "sharded":
      fn = lambda v, a, m, s: sharded_info_nce(v, a, m, s, mesh=mesh, batch_axes=names, negatives=negatives,
                                               chunk_size=chunk_size)
    else:
      fn = lambda v, a, m, s: info_nce(v, a, m, s, negatives=negatives, chunk_size=chunk_size)
    loss, metrics, grads = _value_and_grads(fn, *placed, scale)
    np.testing.assert_allclose(loss, ref_loss, atol=1e-5, rtol=1e-5, err_msg=f"{kind} chunk={chunk_size}")
    assert {k: float(v) for k, v in metrics.items()} == {k: float(v) for k, v in ref_metrics.items()}
    for got, want in zip(grads, ref_grads):
      np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=f"{kind} chunk={chunk_size}")
    if kind == "sharded":
      assert grads[0].sharding.is_equivalent_to(placed[0].sharding, 2)


def _temp_bytes(fn, *args):
  compiled = jax.jit(jax.value_and_grad(lambda *a: fn(*a)[0], argnums=(0, 1, 3))).lower(*args).compile()
  analysis = compiled.memory_analysis()
  if analysis is None:
    pytest.skip("this backend has no compiled memory analysis")
  return analysis.temp_size_in_bytes


@pytest.mark.parametrize("sharded", [False, True])
def test_chunked_temp_memory_scales_with_chunk_not_columns(sharded):
  b, k, d, chunk = 1024, 16, 4, 128  # 16384 columns; only compiled, never run
  video, audio, mask = (jnp.ones((b, d)), jnp.ones((b, k, d)), jnp.ones((b, k), bool))
  if sharded:
    mesh = _mesh((8,), ("data",))
    video, audio, mask = [jax.device_put(x, NamedSharding(mesh, P("data"))) for x in (video, audio, mask)]
    fn = lambda chunk_size: lambda v, a, m, s: sharded_info_nce(v, a, m, s, mesh=mesh, chunk_size=chunk_size)
    rows = b // 8  # memory_analysis of an SPMD program is per device
  else:
    fn = lambda chunk_size: lambda v, a, m, s: info_nce(v, a, m, s, chunk_size=chunk_size)
    rows = b
  full = _temp_bytes(fn(None), video, audio, mask, 10.0)
  chunked = _temp_bytes(fn(chunk), video, audio, mask, 10.0)
  logits_bytes, chunk_bytes, columns_bytes = rows * b * k * 4, rows * chunk * 4, b * k * d * 4
  print(f"sharded={sharded}: temp bytes unchunked {full}, chunked {chunked}; one logits matrix {logits_bytes}")
  assert full >= logits_bytes
  # What remains is a few chunk-sized logit blocks and copies of the gathered columns, never a logits matrix.
  assert chunked <= 8 * (chunk_bytes + columns_bytes) < logits_bytes
  assert chunked * 4 < full


def _constructed(b=6, k=3):
  """Audio windows on orthonormal axes; video leans to its positive, except rows 0 and 3 lean to hard negative 1."""
  eye = np.eye(b * k, dtype=np.float32)
  audio = eye.reshape(b, k, b * k)
  video = _unit(2 * audio[:, 0] + audio[:, 1])
  video[[0, 3]] = _unit(audio[[0, 3], 0] + 2 * audio[[0, 3], 1])
  return video, audio, np.ones((b, k), bool)


def test_accuracy_on_constructed_examples():
  video, audio, mask = _constructed()
  for negatives, acc in [("hard", 4 / 6), ("in_batch", 1.0), ("both", 4 / 6)]:
    _, metrics = info_nce(video, audio, mask, 10.0, negatives=negatives)
    assert float(metrics["accuracy"]) == pytest.approx(acc), negatives
    assert float(metrics["hard_accuracy"]) == pytest.approx(4 / 6)
    _, chunked = info_nce(video, audio, mask, 10.0, negatives=negatives, chunk_size=4)
    assert float(chunked["accuracy"]) == pytest.approx(acc), negatives
  # Masking the winning hard negative of row 0 turns that row into a hit.
  mask[0, 1] = False
  _, metrics = info_nce(video, audio, mask, 10.0, negatives="both")
  assert float(metrics["accuracy"]) == pytest.approx(5 / 6)
  assert float(metrics["hard_accuracy"]) == pytest.approx(5 / 6)
  # Perfect embeddings: video equals its positive audio.
  _, metrics = info_nce(audio[:, 0], audio, mask, 10.0, negatives="both")
  assert float(metrics["accuracy"]) == 1.0 and float(metrics["hard_accuracy"]) == 1.0


def _with_duplicates(b=8, k=4, d=8):
  """A batch where rows repeat audio, as windows drawn from one record do (data.windows_per_record > 1): row 1's
  hard negative 2 is row 0's positive (and holds the same vector), rows 2 and 3 share their positive, row 5's
  positive is row 4's hard negative 1. Returns (video, audio, mask, ids)."""
  video, audio, mask = _batch(b=b, k=k, d=d, seed=4)
  mask[:] = True
  ids = np.stack([np.repeat(np.arange(b)[:, None], k, 1), np.tile(np.arange(k) * 10, (b, 1))], -1).astype(np.int32)
  for (row, col), (src_row, src_col) in [((1, 2), (0, 0)), ((3, 0), (2, 0)), ((4, 1), (5, 0))]:
    ids[row, col], audio[row, col] = ids[src_row, src_col], audio[src_row, src_col]
  video = _unit(video + 2 * audio[:, 0])  # near their positives, so a duplicated positive weighs in the loss
  return video, audio, mask, ids


@pytest.mark.parametrize("negatives", ("in_batch", "both"))
def test_duplicates_of_a_rows_positive_are_not_its_negatives(negatives):
  video, audio, mask, ids = _with_duplicates()
  scale = 10.0
  ref_loss, ref_acc = _np_loss(video.astype(np.float64), audio.astype(np.float64), mask, scale, negatives, ids)
  unmasked, _ = _np_loss(video.astype(np.float64), audio.astype(np.float64), mask, scale, negatives)
  assert abs(ref_loss - unmasked) > 1e-3  # the batch does exercise the mask
  mesh = _mesh((4, 2), ("data", "fsdp"))
  placed = [jax.device_put(x, NamedSharding(mesh, P(("data", "fsdp")))) for x in (video, audio, mask, ids)]
  runs = {"single": lambda v, a, m, i: info_nce(v, a, m, scale, negatives=negatives, audio_ids=i),
          "chunked": lambda v, a, m, i: info_nce(v, a, m, scale, negatives=negatives, audio_ids=i, chunk_size=5),
          "sharded": lambda v, a, m, i: sharded_info_nce(v, a, m, scale, mesh=mesh, batch_axes=("data", "fsdp"),
                                                         negatives=negatives, audio_ids=i),
          "sharded chunked": lambda v, a, m, i: sharded_info_nce(v, a, m, scale, mesh=mesh, negatives=negatives,
                                                                 batch_axes=("data", "fsdp"), audio_ids=i,
                                                                 chunk_size=3)}
  for name, fn in runs.items():
    loss, metrics = jax.jit(fn)(*placed)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, err_msg=name)
    assert float(metrics["accuracy"]) == pytest.approx(ref_acc), name


def test_a_duplicated_positive_no_longer_bounds_the_loss_at_log_2():
  """Perfect embeddings: every video equals its positive. A row whose positive reappears among its candidates
  cannot go below log 2 unless the duplicate is removed."""
  video, audio, mask, ids = _with_duplicates()
  audio = audio.copy()
  audio[:, 0] = _unit(video)
  audio[1, 2] = audio[0, 0]
  audio[3, 0] = audio[2, 0]
  audio[4, 1] = audio[5, 0]
  video = audio[:, 0]
  scale = 100.0
  naive, _ = info_nce(video, audio, mask, scale, negatives="both")
  masked, _ = info_nce(video, audio, mask, scale, negatives="both", audio_ids=ids)
  # Rows 0, 2, 3 and 5 tie with a duplicate of their positive without the mask: 4 of 8 rows at log 2 at least.
  assert float(naive) >= 0.999 * 4 * np.log(2) / 8
  assert float(masked) < 1e-3


def _np_audio_rows(video, audio, scale, ids=None):
  """The audio -> video direction in float64 numpy: row j = clip j's positive audio against every video, target
  video j; a video whose positive has row j's id (the same window as video j) is no candidate."""
  b = len(video)
  pos = None if ids is None else [tuple(x) for x in np.asarray(ids)[:, 0]]
  ces, hits = [], []
  for j in range(b):
    cand = [i for i in range(b) if i == j or pos is None or pos[i] != pos[j]]
    logits = scale * video[cand] @ audio[j, 0]
    top = logits.max()
    ces.append(top + np.log(np.exp(logits - top).sum()) - logits[cand.index(j)])
    hits.append(np.argmax(logits) == cand.index(j))
  return np.mean(ces), np.mean(hits)


@pytest.mark.parametrize("negatives", MODES)
def test_symmetric_adds_the_audio_to_video_rows(negatives):
  """Value, accuracies and gradients of symmetric=True against the float64 reference (the mean of the two
  directions), on a batch with duplicated audio, single-device, chunked, sharded and sharded chunked."""
  video, audio, mask, ids = _with_duplicates()
  scale = 10.0
  v64, a64 = video.astype(np.float64), audio.astype(np.float64)
  video_rows, video_acc = _np_loss(v64, a64, mask, scale, negatives, ids)
  audio_rows, audio_acc = _np_audio_rows(v64, a64, scale, ids)
  assert abs(audio_rows - _np_audio_rows(v64, a64, scale)[0]) > 1e-3  # rows 2 and 3 share their video window
  mesh = _mesh((4, 2), ("data", "fsdp"))
  placed = [jax.device_put(x, NamedSharding(mesh, P(("data", "fsdp")))) for x in (video, audio, mask, ids)]
  common = dict(negatives=negatives, audio_ids=placed[3], symmetric=True)
  sharded = dict(common, mesh=mesh, batch_axes=("data", "fsdp"))
  runs = {"single": lambda v, a, m, s: info_nce(v, a, m, s, **common),
          "chunked": lambda v, a, m, s: info_nce(v, a, m, s, chunk_size=3, **common),
          "sharded": lambda v, a, m, s: sharded_info_nce(v, a, m, s, **sharded),
          "sharded chunked": lambda v, a, m, s: sharded_info_nce(v, a, m, s, chunk_size=3, **sharded)}
  grads = {}
  for name, fn in runs.items():
    loss, metrics, grads[name] = _value_and_grads(fn, *placed[:3], jnp.float32(scale))
    np.testing.assert_allclose(loss, (video_rows + audio_rows) / 2, rtol=1e-5, err_msg=name)
    assert float(metrics["accuracy"]) == pytest.approx(video_acc), name
    assert float(metrics["audio_accuracy"]) == pytest.approx(audio_acc), name
  for name in runs:
    for got, want in zip(grads[name], grads["single"]):
      np.testing.assert_allclose(got, want, atol=1e-5, err_msg=name)
  # Against finite differences of the reference, on the positives' vectors and the scale.
  reference = lambda v, a, s: (_np_loss(v, a, mask, s, negatives, ids)[0] + _np_audio_rows(v, a, s, ids)[0]) / 2
  eps = 1e-6
  for pos, x in ((0, v64), (1, a64)):
    for idx in ((0, 0), (3, 5)) if pos == 0 else ((2, 0, 1), (3, 0, 4)):
      plus, minus = x.copy(), x.copy()
      plus[idx] += eps
      minus[idx] -= eps
      args = lambda y: (y, a64, scale) if pos == 0 else (v64, y, scale)
      numeric = (reference(*args(plus)) - reference(*args(minus))) / (2 * eps)
      assert float(grads["single"][pos][idx]) == pytest.approx(numeric, abs=2e-5), (pos, idx)
  numeric = (reference(v64, a64, scale + eps) - reference(v64, a64, scale - eps)) / (2 * eps)
  assert float(grads["single"][2]) == pytest.approx(numeric, abs=2e-5)


def test_rejects_bad_arguments():
  video, audio, mask = _batch(b=4)
  with pytest.raises(ValueError, match="negatives"):
    info_nce(video, audio, mask, 1.0, negatives="all")
  with pytest.raises(ValueError, match="chunk_size"):
    info_nce(video, audio, mask, 1.0, chunk_size=0)
  with pytest.raises(ValueError, match="divisible"):
    sharded_info_nce(video[:3], audio[:3], mask[:3], 1.0, mesh=_mesh((8,), ("data",)))
