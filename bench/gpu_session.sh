#!/usr/bin/env bash
# The device checks of the multi-process / pod-scale work (issue #16) and of feeding the accelerator
# (issue #17, part feed), as one prepared script for a lent GPU
# (the `device` tool's `run`, from the repo root). Not yet run: no device was lent to the session that wrote it.
#
#   bash bench/gpu_session.sh step      # MFU at the largest batch that fits + memory per clip   (~5 min H200)
#   bash bench/gpu_session.sh cache     # 59M first vs second start (compilation cache)          (~5 min)
#   bash bench/gpu_session.sh learn     # 59M bf16 on generated data: does it leave chance, with and without
#                                       # model.center_inputs (validation 5/15 frames at intervals) (~10 min)
#   bash bench/gpu_session.sh feed      # issue #17: loader examples/s per core and with 1-16 grain workers;
#                                       # sync on 1080p with face detection, per stage, BlazeFace's full scan
#                                       # on every detection frame against every 10th, FFmpeg on 4, 8, 16
#                                       # threads (~7 min)
#   bash bench/gpu_session.sh workers   # issue #17: sync --workers 1,2,4,8,16 on a folder of 1,000 clips of
#                                       # 5 s, each row the first 25 x N of them (files per minute, peak
#                                       # memory per worker), each worker's threads its share of the cores
#                                       # against all of them (~4 min)
#
# The device image has jax (CUDA), flax, optax, orbax, opencv, safetensors but not the rest of our stack. Before
# the first call, here (not there), once: `bash bench/device_wheels.sh` (the missing wheels for its Python 3.12,
# about 47 MB, into .whl/, which .git/info/exclude keeps out of git);
# then call `run` with carry [".whl"] and the command `bash bench/gpu_session.sh step` (timeout_s 540).
# Each part writes its tables to $OUT (the device tool brings them back) and prints them.
set -euo pipefail
part=${1:-step}
out=${OUT:-runs/gpu_session}
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
lrs2=configs/modeformer_lrs2.py
bf16=--config.model.dtype=bfloat16

case "$part" in
  step)
    # Largest batch first at 256 and doubling until out of memory; MFU against the measured bf16 peak.
    python3 bench/train_step.py --config $lrs2 $bf16 --batch 256 --max-batch --steps 5 --warmup 2 | tee "$out/train_step.txt"
    python3 bench/train_memory.py --config $lrs2 $bf16 --batches 64,128 | tee "$out/train_memory.txt"
    ;;
  cache)
    python3 bench/compile_cache.py --config $lrs2 --override=$bf16 --override=--config.data.source=synthetic \
      --override=--config.data.synthetic_clips=64 --override=--config.stages.0.batch_size=64 | tee "$out/compile_cache.txt"
    ;;
  learn)
    # 300 speakers x 2 clips x 4 s in the LRS2 layout (enough that a batch of 256 repeats no clip), 30 test speakers.
    python3 -m modeformer_jax.cli synth --out /tmp/gen --speakers 300 --clips-per-speaker 2 --seconds 4 --workers 16
    python3 -m modeformer_jax.cli prep --dataset lrs2 --src /tmp/gen --out /tmp/prep --splits train,val --workers 16 \
      --lrs2-box 0.1875,0.1875,0.8125,0.8125 || true   # exit 1 only when clips were skipped
    for center in False True; do
      python3 -m modeformer_jax.cli train --config $lrs2 --workdir /tmp/learn_$center --no-progress $bf16 \
        --config.data.data_dir=/tmp/prep --config.data.num_workers=12 --config.model.center_inputs=$center \
        --config.preprocess.lrs2_box="(0.1875,0.1875,0.8125,0.8125)" \
        --config.stages.0.split=train --config.stages.0.steps=1500 --config.stages.0.warmup_steps=300 \
        --config.stages.1.steps=1 --config.eval_every=250 --config.eval_videos=60 --config.checkpoint_every=100000 \
        2>&1 | grep -E "first step|val_accuracy|done" | tee "$out/learn_center_$center.txt"
    done
    ;;
  feed)
    # Loader: per core (workers 0, CPU-seconds) and wall rates with grain workers; JPEG and raw store vs records.
    python3 bench/loader_throughput.py --workers 1,2,4,8,16 --batches 16 | tee "$out/loader.txt"
    # sync at 1080p with BlazeFace (the default) on the GPU: both models, 20 s of video; the full scan on every
    # detection frame (blazeface_scan_every 1, as before issue #17) against the default (every 10th).
    # The video is drawn once (a minute of CPU) for both runs.
    python3 -c "from bench.sync_speed import make_video; make_video('/tmp/w1080.mp4', 20, wide=(1920, 1080))"
    python3 bench/sync_speed.py --video /tmp/w1080.mp4 --scan-every 1,10 | tee "$out/sync_1080p.txt"
    # One file's decoding: FFmpeg on half the cores (the default) against all of them, the detector on the GPU.
    python3 bench/sync_speed.py --models default --video /tmp/w1080.mp4 --decode-threads 4,8,16 --repeat 2 \
      | tee "$out/sync_1080p_decode_threads.txt"
    python3 bench/sync_speed.py --seconds 60 | tee "$out/sync_256.txt"
    ;;
  workers)
    # Many short clips (a lip-sync generator's evaluation set): files per minute and peak memory per worker.
    # Each worker's thread budget its share of the 16 cores (the default) against all 16 (before 2026-12-02).
    python3 bench/sync_workers.py --clips 1000 --workers 1,2,4,8,16 --files-per-worker 25 --threads share,all \
      --config modeformer_lrs2 | tee "$out/sync_workers.txt"
    ;;
  *)
    echo "usage: bash bench/gpu_session.sh step|cache|learn|feed|workers" >&2
    exit 2
    ;;
esac
