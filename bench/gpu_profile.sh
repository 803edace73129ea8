#!/usr/bin/env bash
# One lent GPU's checks for the GPU profile (device time is scarce: prepare, then run once).
# On the GPU host, from the repository root, with .whl/ carried along (built here by
# ../shared/gpu/build-offline-wheels.sh pycocotools faster-coco-eval sentencepiece; the host has
# torch but no Ray, pydantic or COCO tools). Writes under $OUT: gpu_profile[-$RUN_NAME].{json,log}
# and, unless SKIP_GPU_TESTS=1, gpu_tests.log. Call it several times with different RUN_NAMEs and
# bench arguments in one device command; the wheels are installed once.
set -u
OUT=${OUT:-/tmp/gpu-profile-out}
NAME=gpu_profile${RUN_NAME:+-$RUN_NAME}
mkdir -p "$OUT"
if [ ! -d /tmp/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nproc
fi
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 RAY_AUTH_MODE=disabled
timeout "${PROFILE_TIMEOUT_S:-420}" python3 -m bench.gpu_profile --json "$OUT/$NAME.json" \
    --deadline-s "${PROFILE_DEADLINE_S:-330}" "$@" 2>&1 | tee "$OUT/$NAME.log" | grep -v "^\["
if [ "${SKIP_GPU_TESTS:-0}" != 1 ]; then
  timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests/unit/test_nonfinite_loss.py 2>&1 | tail -3 | tee "$OUT/gpu_tests.log"
fi
