#!/usr/bin/env bash
# One lent GPU's checks for the GPU profile, as one command (device time is scarce: one run).
# On the GPU host, from the repository root, with .whl/ carried along (built here by
# ../shared/gpu/build-offline-wheels.sh pycocotools faster-coco-eval; the host has torch but no Ray,
# pydantic or COCO tools). Writes gpu_profile.{json,log} and gpu_tests.log under $OUT.
set -u
OUT=${OUT:-/tmp/gpu-profile-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 RAY_AUTH_MODE=disabled
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc
timeout "${PROFILE_TIMEOUT_S:-420}" python3 -m bench.gpu_profile --json "$OUT/gpu_profile.json" \
    --deadline-s "${PROFILE_DEADLINE_S:-330}" "$@" 2>&1 | tee "$OUT/gpu_profile.log" | grep -v "^\[" 
timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests/unit/test_nonfinite_loss.py 2>&1 | tail -3 | tee "$OUT/gpu_tests.log"
