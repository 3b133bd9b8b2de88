#!/usr/bin/env bash
# Trains emofuse's shipped default model from the offline assets, the whole recipe written out:
#   extract MELD train/dev text, RAVDESS actors 01-18 and EmoDB (text: all-MiniLM-L6-v2; audio: Whisper tiny.en,
#   layer 2, the clip's own frames), train the cross-self model on all three joined, read through the meld7 label map
#   (MELD's 7 emotions: RAVDESS calm -> neutral, EmoDB boredom dropped), each corpus drawn in proportion to the square
#   root of its size (--balance sqrt: MELD's 9,989 beside RAVDESS's 960 and EmoDB's 259), each speaker's features
#   standardized with that speaker's own statistics and, half the time, with the pooled train statistics a lone clip gets
#   (--speaker-norm on --speaker-norm-mix 0.5), evaluate every dev split, and write the inference-only checkpoint.
#   bash scripts/train-default.sh [OUT]            (default OUT: runs/default-model; SEED=0 by default)
#   LIMIT=24 EPOCHS=2 bash scripts/train-default.sh /tmp/x   a reduced recipe (the reproducibility test runs it twice)
# Needs: the models converted (python3 scripts/convert_minilm.py, python3 scripts/convert_whisper.py) and the assets
# ($EMOFUSE_ASSETS, default ../shared/assets). Every step resumes when run again (the same command).
# The result trained on RAVDESS (CC BY-NC-SA 4.0): non-commercial use, share-alike. Its card: docs/model-card.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/default-model}
SEED=${SEED:-0}
ASSETS=${EMOFUSE_ASSETS:-../shared/assets}
TEXT=${TEXT_ENCODER:-bert:sentence-transformers/all-MiniLM-L6-v2}
AUDIO=${AUDIO_ENCODER:-whisper}
LIMIT_ARGS=()
[ -n "${LIMIT:-}" ] && LIMIT_ARGS=(--limit-per-split "$LIMIT")
EPOCH_ARGS=()
[ -n "${EPOCHS:-}" ] && EPOCH_ARGS=(--epochs "$EPOCHS")
emofuse() { node packages/cli/bin/emofuse.js "$@"; }
export EMOFUSE_OFFLINE=${EMOFUSE_OFFLINE:-1}
mkdir -p "$OUT"

echo "== 1/5 features: MELD text (train, dev)"
emofuse extract --dataset meld --data "$ASSETS/meld-text" --text-only --text-encoder "$TEXT" "${LIMIT_ARGS[@]}" --out "$OUT/cache-meld" --no-progress
echo "== 2/5 features: RAVDESS actors 01-18 (train 01-16, dev 17-18)"
emofuse extract --dataset ravdess --data "$ASSETS/ravdess" --text-encoder "$TEXT" --audio-encoder "$AUDIO" "${LIMIT_ARGS[@]}" --out "$OUT/cache-ravdess" --no-progress
echo "== 3/5 features: EmoDB (train speakers 03 08 09 11 12 13, dev 10 14, test 15 16)"
emofuse extract --dataset emodb --data "$ASSETS/emodb" --text-encoder "$TEXT" --audio-encoder "$AUDIO" "${LIMIT_ARGS[@]}" --out "$OUT/cache-emodb" --no-progress
FEATURES="$OUT/cache-ravdess,$OUT/cache-emodb,$OUT/cache-meld"

echo "== 4/5 train (cross-self, the defaults, meld7 labels, corpora sharing an epoch by the square root of their sizes, speaker norm, seed $SEED)"
RESUME=()
[ -f "$OUT/run-s$SEED/last.safetensors" ] && RESUME=(--resume)
emofuse train --features "$FEATURES" --label-map meld7 --select-by corpus-mean --balance sqrt \
  --speaker-norm on --speaker-norm-mix 0.5 --seed "$SEED" "${EPOCH_ARGS[@]}" --out "$OUT/run-s$SEED" --no-progress "${RESUME[@]}"

echo "== 5/5 evaluate every dev split, write the inference-only checkpoint"
emofuse eval --checkpoint "$OUT/run-s$SEED/best.safetensors" --features "$FEATURES" --split dev
node scripts/slim-checkpoint.mjs "$OUT/run-s$SEED/best.safetensors" "$OUT/emofuse-default.safetensors"
echo "done: $OUT/emofuse-default.safetensors (ship it as packages/model/assets/default-model/emofuse-default.safetensors)"
