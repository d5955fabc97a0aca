#!/usr/bin/env bash
# Sets up fcabert on a fresh Debian 12 machine: system packages (apt-get), the Python
# venv for the tools and tests (pip, pinned in requirements.txt), and a Release build in
# build/. Safe to re-run; each step skips what is already done. Run it as root or as a user
# who may use sudo (only apt-get needs it). scripts/fresh-root.sh proves it on a minimal
# Debian 12 root made with debootstrap, so every package the project needs must be listed
# here: a package installed by hand on a developer's machine would hide a missing one.
#
#   scripts/setup.sh            # everything
#   scripts/setup.sh --no-apt   # skip apt-get (packages already installed)
set -euo pipefail
cd "$(dirname "$0")/.."
# Progress goes to stderr, so that `scripts/setup.sh && build/fcabert classify FILE` prints
# only the classifications on stdout.
exec >&2

APT_PACKAGES=(
  build-essential cmake pkg-config clang-format
  # oneDNN's CMake package (dnnl-config.cmake) calls find_package(OpenCL) and fails without
  # it; Debian has it only as a Recommends of libdnnl-dev, which --no-install-recommends drops.
  libdnnl-dev ocl-icd-opencl-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libgtest-dev libutf8proc-dev
  # SHA-256 of model files and shard inputs (src/io/digest.cpp).
  libssl-dev
  # Running jobs in shards on this machine: the GNU parallel recipes of docs/SCALE_OUT.md.
  parallel
  # The fuzz pass of scripts/test.sh: clang with libFuzzer and the sanitizer runtimes
  # (libclang-rt-14-dev) and clang's OpenMP (libomp-dev), see scripts/fuzz.sh.
  clang libclang-rt-14-dev libomp-dev
  # Python tools: Debian's CPU build of torch, with the OpenMP OpenBLAS (without it torch
  # falls back to the reference BLAS and runs ~50x slower). ca-certificates: pip talks HTTPS.
  python3 python3-venv python3-torch python3-numpy libopenblas0-openmp ca-certificates
)

log() { printf '\n== %s\n' "$*" >&2; }

# Runs "$@" and logs how long it took as "<name> took N s".
timed() {
  local name=$1 step_start=$SECONDS
  shift
  "$@"
  log "$name took $((SECONDS - step_start)) s"
}

run_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "setup.sh: installing Debian packages needs root: run it as root, install sudo," \
      "or install the packages listed in scripts/setup.sh and pass --no-apt" >&2
    exit 1
  fi
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
  run_as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

create_python_env() {
  # /usr/bin/python3 is Debian's, which is the one python3-torch is built for.
  if [ ! -x .venv/bin/python ]; then
    log "python venv in .venv (with Debian's torch)"
    /usr/bin/python3 -m venv --system-site-packages .venv
  fi
  log "pip install -r requirements.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  # The tools as the package `tools` (pyproject.toml), editable: the tools, the tests and
  # fuzz/make_corpus.py import it as tools.<module>; edits in tools/ need no reinstall.
  log "pip install -e . (the tools package)"
  .venv/bin/pip install -q --disable-pip-version-check -e .
}

build() {
  log "cmake build (Release) in build/"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)"
}

if [ "${1:-}" != "" ] && [ "${1:-}" != "--no-apt" ]; then
  echo "setup.sh: unknown option $1 (use --no-apt or nothing)" >&2
  exit 2
fi
[ "${1:-}" = "--no-apt" ] || timed "system packages" install_system_packages
timed "python venv" create_python_env
timed "build" build
log "setup done in $SECONDS s; try: build/fcabert classify examples/reviews.txt"
