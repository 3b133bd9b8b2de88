#!/usr/bin/env bash
# The GPU check, ready to run on a machine with a GPU (or, smaller, on a software adapter). In order:
#   1. the kernel and runtime tests (vitest test/kernels test/runtime; --quick: attention and runtime errors)
#   2. emofuse gpu --check       (every kernel compiled and compared with its CPU reference: gpu-verify.json)
#   3. emofuse bench attention   (fused versions, unfused, ORT, PyTorch)
#   4. emofuse bench kernels     (matmul, softmax, layer norm)
#   5. emofuse bench train       (wgsl, ort, PyTorch twin; the cpu f32 column is left out: 30-60 s a step)
# PyTorch peers run on CUDA when `torch.cuda.is_available()` ($EMOFUSE_TORCH_DEVICE=cuda), else on the CPU, and
# are skipped with the reason when torch is missing. Every JSON and Markdown file goes to one folder, with
# summary.md (each step's status and seconds, and the tables) and gpu-check.log. Each step has a time limit
# (90 + 50 + 140 + 60 + 90 s, plus about 30 s to build and probe) so the whole check ends within 8 minutes; a step that fails or runs out of time is marked so and the next runs.
# On a software adapter (llvmpipe / lavapipe) the benches run --quick and the tests are a subset (a full run
# takes far longer there);
# GPU_CHECK_FULL=1 forces the full shapes, GPU_CHECK_QUICK=1 the quick ones anywhere.
#
# Usage: bash scripts/gpu-check.sh [out-dir]        (default gpu-check-<UTC time>)
# Needs: node_modules installed (bash scripts/setup.sh); the CLI is rebuilt from the working tree first (esbuild,
# seconds); nothing from the network. $EMOFUSE_ADAPTER picks the adapter (default auto: a hardware GPU if there is one).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
START=$(date +%s)
LOG="$OUT/gpu-check.log"
SUMMARY="$OUT/summary.md"
: >"$LOG"
EMOFUSE=(node packages/cli/bin/emofuse.js)
PY=${EMOFUSE_PYTHON:-python3}

elapsed() { echo $(($(date +%s) - START)); }
log() { echo "[gpu-check $(elapsed)s] $*" | tee -a "$LOG" >&2; }

if [ ! -d node_modules/esbuild ] || [ ! -d node_modules/webgpu ]; then
  echo "gpu-check: node_modules is missing (or incomplete); run 'bash scripts/setup.sh' (or 'npm ci') first" >&2
  exit 2
fi

log "building the CLI from the working tree (node packages/cli/build.mjs)"
node packages/cli/build.mjs >>"$LOG" 2>&1 || { log "building the CLI failed (see $LOG)"; exit 2; }

# PyTorch: CUDA when it has one.
if TORCH_INFO=$("$PY" -c 'import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>/dev/null); then
  read -r TORCH_VERSION TORCH_CUDA TORCH_GPU <<<"$TORCH_INFO"
  if [ "$TORCH_CUDA" = "True" ]; then
    export EMOFUSE_TORCH_DEVICE=cuda
    TORCH_NOTE="PyTorch $TORCH_VERSION on CUDA ($TORCH_GPU)"
  else
    TORCH_NOTE="PyTorch $TORCH_VERSION on the CPU: CUDA peer skipped, torch.cuda.is_available() is False"
  fi
else
  TORCH_NOTE="PyTorch peers skipped: '$PY -c \"import torch\"' failed (no torch; pip install torch)"
fi
log "$TORCH_NOTE"

# The adapter, and whether it is a software one.
"${EMOFUSE[@]}" gpu --json >"$OUT/gpu.json" 2>>"$LOG" || log "emofuse gpu failed (see gpu-check.log)"
SOFTWARE=$(node -e 'try { const g = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const a = g.adapter ?? g; console.log(a.isSoftware ? 1 : 0); } catch { console.log(1); }' "$OUT/gpu.json")
ADAPTER=$(node -e 'try { const g = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const a = g.adapter ?? g; console.log(`${a.device || a.description} (${a.backend})`); } catch { console.log("unknown"); }' "$OUT/gpu.json")
QUICK=()
TESTS=(test/kernels test/runtime)
if [ "${GPU_CHECK_QUICK:-0}" = 1 ] || { [ "$SOFTWARE" = 1 ] && [ "${GPU_CHECK_FULL:-0}" != 1 ]; }; then
  QUICK=(--quick)
  TESTS=(test/kernels/cross-attention.test.ts test/runtime/errors.test.ts)
  log "adapter $ADAPTER is a software adapter: benches run --quick (GPU_CHECK_FULL=1 for the full shapes)"
else
  log "adapter $ADAPTER"
fi

declare -a STEPS=()
# step <name> <seconds> <command...>: runs with a time limit, output to <name>.log, status to the summary.
step() {
  local name=$1 limit=$2
  shift 2
  log "$name: $* (limit ${limit}s)"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local took=$(($(date +%s) - t0)) status=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="TIMED OUT after ${limit}s"; elif [ "$rc" != 0 ]; then status="FAILED (exit $rc)"; fi
  STEPS+=("| $name | $status | $took |")
  log "$name: $status in ${took}s"
}

step kernel-tests 90 npx vitest run "${TESTS[@]}" --reporter=default --reporter=json --outputFile.json="$OUT/kernel-tests.json"
step gpu-verify 50 bash -c '"$@" gpu --check --json >"$0"' "$OUT/gpu-verify.json" "${EMOFUSE[@]}"
step bench-attention 140 "${EMOFUSE[@]}" bench attention "${QUICK[@]}" --out "$OUT/attention.json" --markdown "$OUT/attention.md"
step bench-kernels 60 "${EMOFUSE[@]}" bench kernels "${QUICK[@]}" --out "$OUT/kernels.json" --markdown "$OUT/kernels.md"
step bench-train 90 "${EMOFUSE[@]}" bench train "${QUICK[@]}" --only ort,PyTorch --out "$OUT/train.json" --markdown "$OUT/train.md"

{
  echo "# emofuse GPU check"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)'), $(elapsed) s in all"
  echo
  echo "- adapter: $ADAPTER$([ ${#QUICK[@]} -gt 0 ] && echo ' (benches --quick)')"
  echo "- $TORCH_NOTE"
  echo "- machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)$(command -v nvidia-smi >/dev/null && echo "; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)")"
  echo
  echo "| step | status | seconds |"
  echo "|---|---|---:|"
  printf '%s\n' "${STEPS[@]}"
  for f in attention kernels train; do
    if [ -s "$OUT/$f.md" ]; then
      echo
      echo "## bench $f"
      echo
      cat "$OUT/$f.md"
    fi
  done
} >"$SUMMARY"
log "done: $SUMMARY"
grep -q 'FAILED\|TIMED OUT' <(printf '%s\n' "${STEPS[@]}") && exit 1
exit 0
