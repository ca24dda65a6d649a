#!/usr/bin/env bash
# Regenerates every shipped checkpoint, its metrics.json and the per-dataset atlas from scratch.
# Usage: training/checkpoints.sh [DATA_ROOT] [PYTHON]   (called by `make checkpoints`)
# Two training streams run side by side, one CPU thread each (a 2-core machine stays busy).
set -euo pipefail
DATA=${1:-./data}
PY=${2:-python}
OUT=${CHECKPOINTS:-checkpoints}
COMMON=(--data-root "$DATA" --family conv --channels 32 --hidden-dim 512 --batch-size 128 --lr 1e-3 --seed 0)
train() { "$PY" -m training.train "${COMMON[@]}" "$@"; }

stream_a() {  # the long one: the MNIST VAE whose NLL is compared with the IWAE paper
  train --dataset mnist --bottleneck vae --latent-dim 16 --epochs 50 --kl-warmup-steps 2150 --threads 1 --out "$OUT/mnist/vae-16"
}
stream_b() {
  train --dataset mnist --bottleneck ae --latent-dim 16 --epochs 10 --threads 1 --out "$OUT/mnist/ae-16"
  train --dataset fashion-mnist --bottleneck ae --latent-dim 16 --epochs 10 --threads 1 --out "$OUT/fashion-mnist/ae-16"
  train --dataset fashion-mnist --bottleneck vae --latent-dim 16 --epochs 15 --kl-warmup-steps 2150 --threads 1 --out "$OUT/fashion-mnist/vae-16"
  for ds in mnist fashion-mnist; do
    train --dataset $ds --bottleneck ae --latent-dim 2 --epochs 5 --threads 1 --out "$OUT/$ds/ae-2"
    train --dataset $ds --bottleneck vae --latent-dim 2 --epochs 5 --kl-warmup-steps 860 --threads 1 --out "$OUT/$ds/vae-2"
  done
}
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  stream_a > "${LOG_DIR:-/tmp}/train-stream-a.log" 2>&1 &
  a=$!
  stream_b > "${LOG_DIR:-/tmp}/train-stream-b.log" 2>&1 || { kill $a; exit 1; }
  wait $a
fi
