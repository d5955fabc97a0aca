#!/usr/bin/env bash
# Proves the README's first command on a machine that has nothing installed: makes a minimal
# Debian 12 root with debootstrap, puts a clean clone of the current commit (and ../shared)
# into it, runs the README's first command there as root, and checks that it printed one
# classification per line of the sample file. A developer's or CI's machine has packages that
# earlier runs installed by hand; this root has only what scripts/setup.sh installs.
#
#   scripts/fresh-root.sh            # the README's first command
#   scripts/fresh-root.sh --test     # then the README's second command (scripts/test.sh) too
#   scripts/fresh-root.sh --keep     # leave the root behind (unmounted) for a look
#
# Needs root (debootstrap, chroot, mount). The root reaches the same package registries as this
# machine: it gets this machine's apt sources and settings, its CA certificates, its pip
# configuration files and the CA / proxy / pip variables of the environment (passed through,
# never printed). /proc, /sys and /dev are mounted for it and unmounted on every exit path,
# Ctrl-C included; the root is deleted only once nothing is mounted under it.
# FCABERT_FRESH_ROOT_PARENT (default /var/tmp) is where the root is made.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

RUN_TESTS=0
KEEP_ROOT=0
for arg in "$@"; do
  case "$arg" in
    --test) RUN_TESTS=1 ;;
    --keep) KEEP_ROOT=1 ;;
    *) echo "fresh-root.sh: unknown option $arg (use --test or --keep)" >&2; exit 2 ;;
  esac
done

log() { printf '\n== fresh-root: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }
die() { echo "fresh-root.sh: $*" >&2; exit 1; }

# Registry hosts (and any credentials in a URL) stay out of logs.
redact() { sed -E -u 's#([a-zA-Z][a-zA-Z0-9+.-]*://)[^/[:space:]"'"'"']+#\1<host>#g'; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mount): run it as root or with sudo"

# The README's first command, read from the README itself so that the two cannot drift: the
# line of the "Two commands" block marked "# 1.".
readme_first_command() {
  local line
  line=$(grep -m1 -E '^[^#].*#[[:space:]]*1\.' README.md) || die "README.md has no line marked '# 1.' (the first command)"
  line=${line%%#*}
  echo "${line%"${line##*[![:space:]]}"}"
}

# The file the first command classifies: its last argument.
classified_file() { local words; read -r -a words <<<"$1"; echo "${words[-1]}"; }

# The first 'bookworm' archive URI of this machine's apt sources (deb822 .sources or
# one-line .list), for debootstrap.
host_debian_mirror() {
  local file uri=""
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    uri=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) { print u; exit } u = ""; s = "" }
      /^URIs:/ { u = $2 } /^Suites:/ { s = $0 }
      END { if (u != "" && s ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) print u }' "$file" | head -n1)
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }')
  fi
  [ -n "$uri" ] || die "found no Debian bookworm archive in /etc/apt/sources.list*: debootstrap needs one"
  echo "$uri"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  log "installing debootstrap on this machine"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

# --- cleanup: on every exit path, stop what runs in the root, unmount, then delete ----------
ROOT=""
MOUNTS=()
BACKGROUND_PID=""
DEBOOTSTRAP_LOG=""

# Long steps run in the background while the script waits: bash runs a signal's trap only
# once the foreground command has ended, but it interrupts `wait` at once.
in_background() {
  local status=0
  "$@" &
  BACKGROUND_PID=$!
  wait "$BACKGROUND_PID" || status=$?
  BACKGROUND_PID=""
  return "$status"
}

mounts_under_root() { awk -v root="$ROOT" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/self/mounts; }

stop_processes_in_root() {
  local pid link
  for pid in /proc/[0-9]*; do
    link=$(readlink "$pid/root" 2>/dev/null) || continue
    [ "$link" = "$ROOT" ] || [[ "$link" == "$ROOT"/* ]] || continue
    kill -KILL "${pid#/proc/}" 2>/dev/null || true
  done
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [ -n "$BACKGROUND_PID" ] && kill -TERM "$BACKGROUND_PID" 2>/dev/null
  [ -n "$DEBOOTSTRAP_LOG" ] && rm -f "$DEBOOTSTRAP_LOG"
  [ -n "$ROOT" ] || exit "$status"
  stop_processes_in_root
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTS[i]}" 2>/dev/null || umount -R -l "${MOUNTS[i]}" 2>/dev/null || true
  done
  local left
  left=$(mounts_under_root)
  if [ -n "$left" ]; then
    echo "fresh-root.sh: could not unmount, left $ROOT in place:" >&2
    echo "$left" >&2
    exit 1
  fi
  if [ "$KEEP_ROOT" -eq 1 ]; then
    echo "fresh-root.sh: root kept (nothing mounted) at $ROOT" >&2
  else
    rm -rf --one-file-system "$ROOT"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_into_root() {  # mount_into_root TARGET MOUNT-ARGS...
  local target="$ROOT$1"
  shift
  mkdir -p "$target"
  mount "$@" "$target"
  MOUNTS+=("$target")
}

# --- making the root ------------------------------------------------------------------------
make_root() {
  local mirror
  mirror=$(host_debian_mirror)
  log "debootstrap --variant=minbase bookworm"
  DEBOOTSTRAP_LOG=$(mktemp)
  local status=0
  in_background debootstrap --variant=minbase bookworm "$ROOT" "$mirror" >"$DEBOOTSTRAP_LOG" 2>&1 || status=$?
  redact <"$DEBOOTSTRAP_LOG" | grep -vE '^I: (Retrieving|Validating|Extracting|Unpacking|Configuring|Resolving|Checking|Found|Installing|Base system)' >&2 || true
  [ "$status" -eq 0 ] || die "debootstrap failed with exit $status (output above)"
  [ -x "$ROOT/bin/bash" ] || die "debootstrap made no usable root"
}

copy_into_root() {  # copy_into_root PATH...: the same path inside the root, contents dereferenced
  local path
  for path in "$@"; do
    [ -e "$path" ] || continue
    mkdir -p "$ROOT$(dirname "$path")"
    cp -aL "$path" "$ROOT$(dirname "$path")/"
  done
}

# Variables that steer how apt, pip and TLS clients reach the registries.
PASSED_VARIABLES=(
  http_proxy https_proxy no_proxy all_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY
  SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE PIP_CONFIG_FILE
)
passed_variable_names() {
  printf '%s\n' "${PASSED_VARIABLES[@]}"
  compgen -e | grep -E '^PIP_' || true
}

give_root_the_registries() {
  log "apt sources, CA certificates, pip configuration"
  # apt: sources with their keyrings, and settings such as proxies and snapshot validity.
  rm -f "$ROOT/etc/apt/sources.list"
  copy_into_root /etc/apt/sources.list /etc/apt/apt.conf.d /etc/apt/trusted.gpg.d /usr/share/keyrings
  rm -f "$ROOT"/etc/apt/sources.list.d/*
  local file
  for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do copy_into_root "$file"; done
  # CA certificates: the locally added ones (the ca-certificates package that setup.sh
  # installs rebuilds its bundle from them) and the system bundle as it is now.
  copy_into_root /usr/local/share/ca-certificates /etc/ssl/certs/ca-certificates.crt
  # pip's configuration files, wherever pip looks for them.
  copy_into_root /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.pip/pip.conf" "$HOME/.config/pip/pip.conf"
  # Files and folders the passed variables point at (CA bundles, pip's find-links folder).
  local name value
  while read -r name; do
    value=${!name:-}
    [[ "$value" == /* ]] && [ -e "$value" ] && [ ! -e "$ROOT$value" ] && copy_into_root "$value"
  done < <(passed_variable_names)
  copy_into_root /etc/resolv.conf /etc/hosts
  # Package scripts must not start services inside the root.
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod +x "$ROOT/usr/sbin/policy-rc.d"
}

put_clone_into_root() {
  local commit
  commit=$(git -C "$REPO" rev-parse HEAD)
  log "clean clone of $(git -C "$REPO" rev-parse --short HEAD) and ../shared"
  git -C "$REPO" diff --quiet HEAD 2>/dev/null ||
    echo "fresh-root.sh: note: uncommitted changes are not in the clone (it tests the commit)" >&2
  mkdir -p "$ROOT/work"
  git clone --quiet --no-local --no-checkout "$REPO" "$ROOT/work/main"
  git -C "$ROOT/work/main" checkout --quiet --detach "$commit"
  if [ -d "$REPO/../shared" ]; then
    cp -a "$REPO/../shared" "$ROOT/work/shared"
  else
    echo "fresh-root.sh: note: no ../shared next to the repository; the root gets none" >&2
  fi
}

# Runs a command in the root as root, in a clean environment plus the passed variables.
run_in_root() {
  local env_args=(HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  local name
  while read -r name; do
    [ -n "${!name+x}" ] && env_args+=("$name=${!name}")
  done < <(passed_variable_names)
  chroot "$ROOT" /usr/bin/env -i "${env_args[@]}" /bin/bash -c "cd /work/main && $1"
}

# --- the run ---------------------------------------------------------------------------------
# All of it in a function, so that bash has read the whole file before anything runs.
main() {
  local phase_start COMMAND SAMPLE OUTPUT status expected got bad
  COMMAND=$(readme_first_command)
  SAMPLE=$(classified_file "$COMMAND")
  [ -f "$SAMPLE" ] || die "the README's first command classifies $SAMPLE, which is not in the repository"

  ensure_debootstrap
  mkdir -p "${FCABERT_FRESH_ROOT_PARENT:-/var/tmp}"
  ROOT=$(mktemp -d "${FCABERT_FRESH_ROOT_PARENT:-/var/tmp}/fcabert-fresh-root.XXXXXX")
  ROOT=$(cd "$ROOT" && pwd -P)
  chmod 755 "$ROOT"  # it is the root's "/": apt's _apt user must be able to enter it

  phase_start=$SECONDS
  make_root
  give_root_the_registries
  put_clone_into_root
  mount_into_root /proc -t proc proc
  mount_into_root /sys -t sysfs -o ro sysfs
  mount_into_root /dev --rbind /dev
  mount --make-rslave "$ROOT/dev"
  log "root ready in $((SECONDS - phase_start)) s"

  phase_start=$SECONDS
  log "the README's first command: $COMMAND"
  OUTPUT="$ROOT/work/first-command.out"
  set +e
  in_background run_in_root "$COMMAND" >"$OUTPUT" 2> >(redact >&2)
  status=$?
  set -e
  log "first command exited $status after $((SECONDS - phase_start)) s"
  [ "$status" -eq 0 ] || die "the README's first command failed in a fresh Debian 12 root (exit $status; its output is above)"

  expected=$(wc -l <"$SAMPLE")
  got=$(wc -l <"$OUTPUT")
  # One result per input line: a label, a tab and a probability.
  bad=$(grep -cvE $'^[^\t]+\t[01]\\.[0-9]+$' "$OUTPUT" || true)
  echo "--- its output (stdout):" >&2
  cat "$OUTPUT" >&2
  [ "$got" -eq "$expected" ] || die "expected one classification per line of $SAMPLE ($expected), got $got lines"
  [ "$bad" -eq 0 ] || die "$bad output lines are not 'label<TAB>probability'"
  log "OK: $got classifications for the $expected lines of $SAMPLE"

  if [ "$RUN_TESTS" -eq 1 ]; then
    phase_start=$SECONDS
    log "the README's second command: scripts/test.sh"
    in_background run_in_root "scripts/test.sh" > >(redact) 2>&1
    log "scripts/test.sh passed in the fresh root in $((SECONDS - phase_start)) s"
  fi
  log "done in $SECONDS s"
}

main
