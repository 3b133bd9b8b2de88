#!/usr/bin/env bash
# Leave one corpus out, as docs/model-card.md reports it: RAVDESS actors 01-18 -> all of EmoDB, and all of EmoDB ->
# RAVDESS actors 01-18, on the 6 emotions both share (meld7 names; RAVDESS calm and surprised, EmoDB boredom dropped).
# Each run trains the audio head on the whole source corpus (every split joined, 20 epochs, the last epoch kept: the
# target chooses nothing) with each speaker standardized by their own statistics, and scores every clip of the other.
#   bash scripts/leave-one-corpus-out.sh [CACHES]       CACHES: the folder scripts/train-default.sh wrote (runs/default-model),
#                                                       holding cache-ravdess and cache-emodb
#   SEEDS="0 1 2" FLAGS="--linear-skip off" bash scripts/leave-one-corpus-out.sh   (the defaults)
#   RAVDESS_SOURCE=<cache> ...   train the RAVDESS -> EmoDB direction on another RAVDESS cache (e.g. one extracted with
#                                --augment); scoring EmoDB -> RAVDESS always reads $CACHES/cache-ravdess (originals only)
# Prints one line per run and the mean ± std (sample) of each direction; runs go to $CACHES/loco.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHES=${1:-runs/default-model}
SEEDS=${SEEDS:-0 1 2}
FLAGS=${FLAGS:---linear-skip off}
MAP=meld7:calm=drop,surprised=drop,boredom=drop
emofuse() { node packages/cli/bin/emofuse.js "$@"; }
for c in ravdess emodb; do
  [ -f "$CACHES/cache-$c/index.json" ] || { echo "no $CACHES/cache-$c: run scripts/train-default.sh first (it extracts both)" >&2; exit 2; }
done
OUT="$CACHES/loco"
mkdir -p "$OUT"
SCORES="$OUT/scores-$(date -u +%Y%m%dT%H%M%S).txt"
for seed in $SEEDS; do
  for dir in ravdess-to-emodb emodb-to-ravdess; do
    if [ "$dir" = ravdess-to-emodb ]; then src_cache=${RAVDESS_SOURCE:-$CACHES/cache-ravdess}; from=train+dev; tgt=emodb; to=train+dev+test;
    else src_cache=$CACHES/cache-emodb; from=train+dev+test; tgt=ravdess; to=train+dev; fi
    run="$OUT/$dir-s$seed"
    # shellcheck disable=SC2086
    emofuse train --features "$src_cache" --train-split "$from" --patience 0 --label-map "$MAP" --fusion audio \
      --speaker-norm on --seed "$seed" $FLAGS --out "$run" --force --no-progress > "$run.train.log" 2>&1 ||
      { tail -5 "$run.train.log" >&2; exit 1; }
    emofuse eval --checkpoint "$run/last.safetensors" --features "$CACHES/cache-$tgt" --split "$to" --out "$run/eval" --json \
      > "$run.eval.json" 2> "$run.eval.log" || { tail -5 "$run.eval.log" >&2; exit 1; }
    node -e 'const j=require(process.argv[1]); console.log(`${process.argv[2]} seed ${process.argv[3]}: ${(100*j.accuracy).toFixed(1)}% of ${j.n}`)' \
      "$(realpath "$run.eval.json")" "$dir" "$seed" | tee -a "$SCORES"
  done
done
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
for (const dir of ["ravdess-to-emodb", "emodb-to-ravdess"]) {
  const x = lines.filter((l) => l.startsWith(dir + " ")).map((l) => Number(l.match(/: ([\d.]+)%/)[1]));
  const m = x.reduce((a, b) => a + b, 0) / x.length;
  const sd = x.length > 1 ? Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / (x.length - 1)) : 0;
  console.log(`${dir}: ${m.toFixed(1)} ± ${sd.toFixed(1)} over ${x.length} seeds (${x.join(", ")})`);
}' "$SCORES"
