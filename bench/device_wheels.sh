#!/usr/bin/env bash
# Wheels for the lent GPU machine (the `device` tool), downloaded here into .whl/ before its first call: its
# image has jax (CUDA), flax, optax, orbax, opencv, numpy, scipy, scikit-learn, numba, torch but not the rest
# of our stack, and it reaches no package index. Versions are the ones installed in this environment (the
# ones the tests ran with), for the device's Python 3.12 (.library/device/README.md, "nvidia-h200").
#
#   bash bench/device_wheels.sh          # then: run(carry=[".whl"], command="bash bench/gpu_session.sh feed")
#
# About 47 MB (PyAV alone 35 MB), under the 64 MiB the working tree may take along. promise has no wheel on
# the index (sdist only): it is built here, pure Python.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
# What the image lacks: our direct dependencies and theirs (librosa's, tfds', grain's, pooch's, soundfile's).
names="ml-collections grain array-record tensorflow-datasets librosa av tensorboardX soxr audioread lazy-loader
  pooch soundfile cffi pycparser dm-tree simple-parsing tensorflow-metadata termcolor toml docstring-parser
  immutabledict decorator platformdirs"
pins=$(python3 -c 'import sys; from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1:]))' $names)
promise=$(python3 -c 'from importlib.metadata import version; print(version("promise"))')
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $pins
python3 -m pip wheel -q --no-deps -w .whl "promise==$promise"
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/"
