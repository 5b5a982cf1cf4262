"""The ModEFormer network: shapes through each encoder, the paper's parameter count, conv formulations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from modeformer_jax import config_defaults as cd
from modeformer_jax.models.functional import init_weights
from modeformer_jax.models.layers import Conv, conv2d
from modeformer_jax.models.modeformer import visual_cnn_table
from modeformer_jax.models.summary import parameter_counts

pytestmark = pytest.mark.unit

TINY = dict(width=32, video_widths=(4, 8, 8, 16, 32), audio_widths=(4, 8, 8, 16, 32), depth=1, num_heads=4,
            mlp_dim=64)


def test_default_config_matches_paper_parameter_count():
  counts = parameter_counts(cd.model_config())
  total = sum(counts.values())
  assert abs(total - 59.0e6) / 59.0e6 < 0.006
  # SPEC section 2's reconstruction, module by module.
  assert counts["video.cnn"] == 38_608_448
  assert counts["audio.cnn"] == 3_403_264
  assert counts["video.temporal"] == counts["audio.temporal"] == 8_412_160
  assert counts["video.token"] == counts["audio.token"] == 512


def test_pool_ablation_drops_the_transformers():
  counts = parameter_counts(cd.model_config(temporal="pool"))
  assert not any("temporal" in k or "token" in k for k in counts)
  assert sum(counts.values()) == 38_608_448 + 3_403_264 + 1


# One compiled program: op by op, each of the transformer's operations would compile on its own.
@nnx.jit
def _encode(model, video, mel):
  v, a = model.embed_video(video), model.embed_audio(mel)
  # The paired call encodes K audio windows per clip with the same audio encoder.
  v2, a2 = model(video, jnp.stack([mel, mel], axis=1))
  return v, a, v2, a2, model.sync_score(v, a)


@pytest.mark.parametrize("temporal", ["transformer", "pool"])
def test_encoder_shapes_and_unit_norm(temporal):
  model = init_weights(cd.model_config(temporal=temporal, **TINY)).module()
  video = jnp.asarray(np.random.default_rng(0).integers(0, 255, (3, 5, 48, 96, 3)), jnp.uint8)
  mel = jax.random.normal(jax.random.key(1), (3, 80, 16))
  v, a, v2, a2, score = _encode(model, video, mel)
  assert v.shape == a.shape == (3, 32) and v.dtype == jnp.float32
  np.testing.assert_allclose(jnp.linalg.norm(v, axis=-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(jnp.linalg.norm(a, axis=-1), 1.0, atol=1e-5)
  assert a2.shape == (3, 2, 32)
  np.testing.assert_allclose(a2[:, 1], a, atol=1e-5)
  np.testing.assert_allclose(v2, v, atol=1e-5)
  assert score.shape == (3,)


def test_visual_cnn_spatial_sizes_follow_spec():
  # 48x96 -> 46x47 -> 23x24 -> 12x12 -> 6x6 -> 3x3 -> 1x1, time stays 5 (SPEC section 2).
  model = init_weights(cd.model_config(**TINY)).module()
  x = jnp.zeros((1, 5, 48, 96, 3))
  sizes = []
  for block in model.video.cnn.blocks:
    x = block(x, train=False)
    sizes.append(x.shape[1:4])
  distinct = [s for i, s in enumerate(sizes) if i == 0 or s != sizes[i - 1]]
  assert distinct == [(5, 48, 96), (5, 46, 47), (5, 23, 24), (5, 12, 12), (5, 6, 6), (5, 3, 3), (5, 1, 1)]
  assert len(visual_cnn_table(TINY["video_widths"])) == 17


@pytest.mark.parametrize("kernel,stride,padding", [(7, 1, 3), (5, (1, 1, 2), (2, 1, 1)), (3, (1, 2, 2), 1),
                                                   (3, 1, (1, 0, 0)), (1, 1, 0)])
def test_taps2d_conv3d_equals_xla_conv3d(kernel, stride, padding):
  rngs = nnx.Rngs(0)
  xla = Conv(3, 6, kernel, stride, padding, ndim=3, impl="xla", rngs=rngs)
  taps = Conv(3, 6, kernel, stride, padding, ndim=3, impl="taps2d", rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(2), (2, 5, 12, 14, 3))
  np.testing.assert_allclose(taps(x), xla(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape,kernel,stride,padding", [((2, 12, 20, 4), 5, (1, 2), (1, 1)),
                                                         ((2, 9, 7, 3), 3, (2, 1), (0, 1))])
def test_strided_conv2d_gradients_equal_xla(shape, kernel, stride, padding):
  # On CPU, conv2d takes these layers' input gradient through the subsampled stride-1 convolution.
  x = jax.random.normal(jax.random.key(0), shape)
  k = jax.random.normal(jax.random.key(1), (kernel, kernel, shape[-1], 5))
  xla = lambda x, k: jax.lax.conv_general_dilated(x, k, stride, [(p, p) for p in padding],
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
  weights = jax.random.normal(jax.random.key(2), xla(x, k).shape)
  grads = lambda f: jax.jit(jax.grad(lambda x, k: jnp.sum(f(x, k) * weights), (0, 1)))(x, k)
  np.testing.assert_allclose(conv2d(x, k, stride, padding), xla(x, k), atol=1e-5, rtol=1e-5)
  for ours, theirs in zip(grads(lambda x, k: conv2d(x, k, stride, padding)), grads(xla)):
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def test_bfloat16_compute_keeps_float32_params():
  model = init_weights(cd.model_config(dtype="bfloat16", **TINY)).module()
  params = jax.tree.leaves(nnx.state(model, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in params)
  v = nnx.jit(lambda m, x: m.embed_video(x))(model, jnp.zeros((2, 5, 48, 96, 3), jnp.uint8))
  assert v.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(v)))


def test_temperature_is_learnable_and_clipped():
  model = init_weights(cd.model_config(**TINY)).module()
  np.testing.assert_allclose(model.temperature(), 0.07, rtol=1e-6)
  model.log_temperature[...] = jnp.log(1e-4)
  np.testing.assert_allclose(model.logit_scale(), 100.0, rtol=1e-5)  # clipped at tau = 0.01
