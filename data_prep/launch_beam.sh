#!/usr/bin/env bash
# Runs the per-clip stage of `modeformer prep` on an Apache Beam runner; the shards are then written on this
# machine. SRC and OUT must be mounted at the same paths on this machine and on every worker (see README.md).
#
#   RUNNER=direct|flink|spark|dataflow DATASET=lrs2 SRC=/mnt/lrs2 OUT=/mnt/prepared data_prep/launch_beam.sh [extra prep flags]
#
# Runner settings come from the environment: FLINK_MASTER (host:port), SPARK_MASTER (spark://host:port),
# PROJECT / REGION / TEMP_LOCATION / WORKER_IMAGE (Dataflow; the image must carry this package, its media
# dependencies and the SRC/OUT mounts), WORKERS (DirectRunner processes, default: all cores).
set -euo pipefail

: "${DATASET:?set DATASET=lrs2|lrs3|folder}" "${SRC:?set SRC}" "${OUT:?set OUT}"
RUNNER="${RUNNER:-direct}"

case "$RUNNER" in
  direct)
    BEAM="--runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=${WORKERS:-$(nproc)}"
    ;;
  flink)
    # PROCESS/EXTERNAL environments need this package importable on the task managers; LOOPBACK runs the
    # Python work in this process and is only for trying the cluster out.
    BEAM="--runner=FlinkRunner --flink_master=${FLINK_MASTER:?set FLINK_MASTER} --environment_type=${ENVIRONMENT_TYPE:-LOOPBACK}"
    ;;
  spark)
    BEAM="--runner=SparkRunner --spark_master_url=${SPARK_MASTER:?set SPARK_MASTER} --environment_type=${ENVIRONMENT_TYPE:-LOOPBACK}"
    ;;
  dataflow)
    BEAM="--runner=DataflowRunner --project=${PROJECT:?set PROJECT} --region=${REGION:?set REGION}"
    BEAM+=" --temp_location=${TEMP_LOCATION:?set TEMP_LOCATION (gs://bucket/tmp)}"
    BEAM+=" --sdk_container_image=${WORKER_IMAGE:?set WORKER_IMAGE} --sdk_location=container"
    BEAM+=" --experiments=use_runner_v2 --max_num_workers=${MAX_WORKERS:-50}"
    ;;
  *)
    echo "RUNNER=$RUNNER: expected direct, flink, spark or dataflow" >&2
    exit 2
    ;;
esac

exec modeformer prep --dataset "$DATASET" --src "$SRC" --out "$OUT" --runner beam --beam-options="$BEAM" "$@"
