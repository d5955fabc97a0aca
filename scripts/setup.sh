#!/usr/bin/env bash
# Sets up fcabert on a fresh Debian 12 machine: system packages (apt-get), the Python
# venv for the tools and tests (pip, pinned in requirements.txt), and a Release build in
# build/. Safe to re-run; each step skips what is already done.
#
#   scripts/setup.sh            # everything
#   scripts/setup.sh --no-apt   # skip apt-get (packages already installed)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake pkg-config clang-format
  libdnnl-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libgtest-dev libutf8proc-dev
  # The fuzz pass of scripts/test.sh: clang with libFuzzer and the sanitizer runtimes
  # (libclang-rt-14-dev) and clang's OpenMP (libomp-dev), see scripts/fuzz.sh.
  clang libclang-rt-14-dev libomp-dev
  # Python tools: Debian's CPU build of torch, with the OpenMP OpenBLAS (without it torch
  # falls back to the reference BLAS and runs ~50x slower).
  python3 python3-venv python3-torch python3-numpy libopenblas0-openmp
)

log() { printf '\n== %s\n' "$*" >&2; }

run_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_system_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "system packages: all present"
    return
  fi
  log "apt-get install ${missing[*]}"
  run_as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive run_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

create_python_env() {
  # /usr/bin/python3 is Debian's, which is the one python3-torch is built for.
  if [ ! -x .venv/bin/python ]; then
    log "python venv in .venv (with Debian's torch)"
    /usr/bin/python3 -m venv --system-site-packages .venv
  fi
  log "pip install -r requirements.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
}

build() {
  log "cmake build (Release) in build/"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)"
}

start=$(date +%s)
[ "${1:-}" = "--no-apt" ] || install_system_packages
create_python_env
build
log "setup done in $(( $(date +%s) - start )) s; try: build/fcabert classify examples/reviews.txt"
