#!/usr/bin/env bash
# The Omniglot meta-training benchmarks on a CUDA card, in one call (short budgets: a lent GPU
# machine gives minutes). Figures go beside the CPU ones in docs/benchmarks.md, labelled with the card.
#   METASTREAM_DATA=/path/to/shared/data bash bench/cuda_omniglot.sh OUTDIR [GRADIENT_MINUTES] [FOLD_MINUTES]
set -euo pipefail
out=${1:-runs/cuda}; gradient=${2:-2.5}; fold=${3:-1}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi -L || true
python3 bench/omniglot_oneshot.py --part gradient --algos protomaml --budget-minutes "$gradient" --device cuda \
  --out runs/cuda-gradient 2>&1 | tee "$out/gradient.log"
python3 bench/omniglot_oneshot.py --part folds --fold-minutes "$fold" --device cuda 2>&1 | tee "$out/folds.log"
