#!/usr/bin/env bash
# `make gpu-check`: the check to run when a GPU machine is lent (README, "GPU check"). JSON lines on stdout.
#  1. `lrfr bench fit`: 300 IResNet-50 AMP steps of 128 images through the trainer on the full synthetic
#     preset's HR set (written once under $DATA_ROOT: 440,914 images), with the NaN/inf guard read every
#     step and every 100 steps (the cost of a host-device sync per step), then LFW-pair validation.
#  2. `lrfr bench scale` on the GPU: the full preset embedded, and chapter 2's evaluation on a TinyFace-size
#     test set (2,569 identities, 153,428 distractors): peak RSS and images/s.
# Every setting can be overridden from the environment (the test suite runs it small on a CPU).
set -euo pipefail
DATA_ROOT=${DATA_ROOT:-data}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-full}
BACKBONE=${BACKBONE:-iresnet50}
INPUT_SIZE=${INPUT_SIZE:-112}
STEPS=${STEPS:-300}
BATCH=${BATCH:-128}
WORKERS=${WORKERS:-8}
IDENTITIES=${IDENTITIES:-2569}
DISTRACTORS=${DISTRACTORS:-153428}
UI=${UI:-3000}

if [ "$DEVICE" = cuda ]; then
    python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'make gpu-check: no CUDA device (torch.cuda.is_available() is False)')"
    python -c "import torch; print(f'# {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}')" >&2
fi
lrfr bench fit --data-root "$DATA_ROOT" --preset "$PRESET" --backbone "$BACKBONE" --input-size "$INPUT_SIZE" \
    --steps "$STEPS" --batch-size "$BATCH" --workers "$WORKERS" --device "$DEVICE" --finite-check-every 1 100 --validate
lrfr bench scale --data-root "$DATA_ROOT" --preset "$PRESET" --backbone "$BACKBONE" --input-size "$INPUT_SIZE" \
    --embedding-size 512 --batch-size 512 --workers "$WORKERS" --device "$DEVICE" \
    --identities "$IDENTITIES" --distractors "$DISTRACTORS" --ui "$UI"
