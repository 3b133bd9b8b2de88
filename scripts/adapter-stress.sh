#!/usr/bin/env bash
# Runs `emofuse gpu --check` (every kernel compiled and checked; device destroyed; process exits) N times on
# one adapter route and counts outcomes: ok, crash (non-zero exit), futex (glibc's "futex facility returned an
# unexpected error code" abort), hang (over 120 s). The evidence behind DEVELOPERS.md "Software adapters".
#   scripts/adapter-stress.sh 20 opengles
#   scripts/adapter-stress.sh 20 vulkan
set -u
n=${1:-10}; route=${2:-auto}
cd "$(dirname "$0")/.."
bin=packages/cli/dist/emofuse.js
[ -f "$bin" ] || npx turbo run build --output-logs=errors-only >/dev/null
ok=0; crash=0; futex=0; hang=0
for _ in $(seq "$n"); do
  out=$(EMOFUSE_ADAPTER=$route timeout 120 node "$bin" gpu --check 2>&1); rc=$?
  if [ $rc -eq 0 ]; then ok=$((ok + 1))
  elif [ $rc -eq 124 ]; then hang=$((hang + 1))
  else
    crash=$((crash + 1))
    grep -qi futex <<<"$out" && futex=$((futex + 1))
    printf '  exit %s: %s\n' "$rc" "$(tail -2 <<<"$out" | tr '\n' ' ')"
  fi
done
echo "route=$route runs=$n ok=$ok crash=$crash futex=$futex hang=$hang"
