#!/bin/bash
# A wall-clock-bounded burst of codec training on a lent GPU, from the shipped default's
# weights (issue 9, point 6): recipes/default_v2_tune_24k.yaml at batch 64 x 1 s. Run from the repository root; reads Opus-packed data made by
#   python recipes/tools/pack_opus.py pack CORPUS/train.jsonl runs/sprint/train --mb 24
#   python recipes/tools/pack_opus.py pack CORPUS/dev.jsonl runs/sprint/dev --mb 1
# and writes to $OUT what fits through a 16 MiB-per-file return: the generator and the
# discriminator in fp32 safetensors shards, the metrics and the log (no optimiser state).
# On the CPU, `python recipes/tools/split_state.py join OUT sprint.pt` rebuilds a checkpoint
# that `audiotok train RECIPE --set init_from=sprint.pt` continues from.
#   SECONDS_BUDGET  training seconds (optim.max_seconds), default 330
#   EXTRA           more --set flags
set -u
OUT=${OUT:?set OUT}; BUDGET=${SECONDS_BUDGET:-330}; WORK=${WORK:-/tmp/sprint}
export PYTHONUNBUFFERED=1
mkdir -p "$WORK" "$OUT"
nvidia-smi -L 2>/dev/null
python3 recipes/tools/pack_opus.py unpack runs/sprint/train "$WORK/train" || exit 1
python3 recipes/tools/pack_opus.py unpack runs/sprint/dev "$WORK/dev" || exit 1
python3 -m audiotok train recipes/default_v2_tune_24k.yaml --run-dir "$WORK/run" \
  --set init_from=audiotok/pretrained/default \
  --set data.train="$WORK/train/manifest.jsonl" --set data.dev="$WORK/dev/manifest.jsonl" \
  --set data.batch_size=${BATCH:-64} --set data.num_workers=${WORKERS:-8} \
  --set data.examples_per_epoch=64000 \
  --set optim.max_seconds="$BUDGET" --set threads=4 \
  --set validation.every=500 --set validation.num_audio_samples=0 \
  --set checkpoint.every=1000 --set checkpoint.keep_last=1 \
  --set log.every=50 --set log.progress=false --set log.tensorboard=false \
  ${EXTRA:-} > "$OUT/train.log" 2>&1
echo "train rc=$?"; tail -5 "$OUT/train.log"
python3 recipes/tools/split_state.py split "$WORK/run" "$OUT" --max-mb 15 || exit 1
cp "$WORK/run/metrics.jsonl" "$OUT/metrics.jsonl"
ls -la "$OUT"
