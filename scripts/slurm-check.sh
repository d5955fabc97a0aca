#!/usr/bin/env bash
# Runs the Slurm recipes of docs/SCALE_OUT.md for real: starts a single-node Slurm cluster on
# this machine from Debian's packages (munge, slurmctld, slurmd), installs fcabert into a
# temporary prefix (cmake --install, as the README says) and puts it on PATH, submits
# examples/scale-out/slurm/submit-classify.sh and submit-eval.sh exactly as the docs show
# them, waits for each merge job (bounded), and compares the merged results with one
# unsharded run. Everything lives in one temporary folder; the daemons are stopped and the
# folder removed on every way out (success, failure, timeout, Ctrl-C). .ci/run runs it.
#
#   scripts/slurm-check.sh            # needs root (or sudo) for apt-get and the daemons
#   SLURM_CHECK_TIMEOUT=300 scripts/slurm-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
timeout_s=${SLURM_CHECK_TIMEOUT:-300}
shards=3
log() { printf '== slurm-check: %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run it as root: it starts munged, slurmctld and slurmd (as root, in a temporary folder)"
[ -x build/fcabert ] || fail "build/fcabert is missing: run scripts/setup.sh first"

packages=(munge slurmctld slurmd slurm-client)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/fcabert-slurm.XXXXXX)
pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # Jobs still queued or running first (a timeout), then the daemons, then any job process
  # left behind (their command lines name $work).
  [ ${#pids[@]} -gt 0 ] && scancel --quiet --user=root 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pkill -9 -f "$work/" 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    for f in "$work"/*.out "$work"/jobs/*/*.log; do
      [ -f "$f" ] && { log "--- $f (last lines)"; tail -n 15 "$f" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'log "FAILED at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# --- munge: its own key, socket, pid, seed and log files in $work -----------------------------
dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge.key"
munged --foreground --force --key-file="$work/munge.key" --socket="$work/munge.socket" \
  --pid-file="$work/munged.pid" --seed-file="$work/munged.seed" --log-file="$work/munged.log" \
  >"$work/munged.out" 2>&1 &
pids+=($!)

# --- slurm.conf for this host only, on ports of its own -------------------------------------
host=$(hostname -s)
mkdir -p "$work/state" "$work/spool" "$work/jobs"
cat >"$work/slurm.conf" <<EOF
ClusterName=fcabert-check
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge.socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
for _ in $(seq 50); do [ -S "$work/munge.socket" ] && break; sleep 0.1; done
[ -S "$work/munge.socket" ] || fail "munged did not start"
slurmctld -D -f "$SLURM_CONF" >"$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$host" >"$work/slurmd.out" 2>&1 &
pids+=($!)

deadline=$((SECONDS + timeout_s))
wait_until() {  # wait_until WHAT COMMAND...: polls COMMAND until it succeeds or the time is up
  local what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${timeout_s} s waiting for $what"
    sleep 1
  done
}
node_idle() { sinfo -h -N -o '%T' | grep -qx idle; }
wait_until "the node to be idle" node_idle
log "single-node cluster up: $(sinfo -h -o '%P %D %T %c CPUs')"

# --- fcabert on PATH, installed as the README says ------------------------------------------
cmake --install build --prefix "$work/prefix" >/dev/null
export PATH=$work/prefix/bin:$PATH
[ "$(command -v fcabert)" = "$work/prefix/bin/fcabert" ] || fail "the installed fcabert is not first on PATH"

# Waits for job $1 to leave the queue and checks that it COMPLETED. A merge job whose shards
# failed waits forever (DependencyNeverSatisfied): that is a failure too.
job_gone() { [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; }
job_done_or_stuck() { job_gone "$1" || [ "$(squeue -h -j "$1" -o %r 2>/dev/null)" = DependencyNeverSatisfied ]; }
wait_for_job() {
  wait_until "job $1" job_done_or_stuck "$1"
  job_gone "$1" || fail "job $1 will never run: a job it depends on failed (the logs are below)"
  local job
  job=$(scontrol show job "$1")
  [[ $job =~ JobState=([A-Z_]+) ]] || fail "scontrol show job $1 gave no JobState"
  [ "${BASH_REMATCH[1]}" = COMPLETED ] || fail "job $1 ended ${BASH_REMATCH[1]}"
}

cd "$work/jobs"
sed -n '2,601p' "$repo/../shared/data/glue/SST-2/dev.tsv" | cut -f1 >reviews.txt  # 600 sentences

# --- classify: the documented submit script, then one unsharded run ------------------------
merge_job=$("$repo/examples/scale-out/slurm/submit-classify.sh" reviews.txt "$PWD/merged.jsonl" \
  "$PWD/classify-parts" "$shards" --format jsonl)
log "classify: $shards shard jobs and merge job $merge_job submitted"
wait_for_job "$merge_job"
fcabert classify -q --format jsonl reviews.txt >whole.jsonl
cmp merged.jsonl whole.jsonl || fail "the merged classify output differs from one run's"
log "classify: merged output of $(wc -l <merged.jsonl) rows is byte-identical to one run's"

# --- eval: the documented submit script, then one unsharded run ----------------------------
data=$repo/../shared/data/glue/SST-2
merge_job=$("$repo/examples/scale-out/slurm/submit-eval.sh" "$data" "$PWD/merged.json" \
  "$PWD/eval-parts" "$shards" --limit 300)
log "eval: $shards shard jobs and merge job $merge_job submitted"
wait_for_job "$merge_job"
fcabert eval -q --data "$data" --limit 300 --json whole.json >/dev/null
python3 - merged.json whole.json <<'PY' || fail "the merged eval report differs from one run's"
import json, sys
merged, whole = (json.load(open(p)) for p in sys.argv[1:])
assert merged["shards"] == [1, 2, 3] and merged["shard_count"] == 3, merged["shards"]
for key in ("model_sha256", "precision", "fcabert_version", "schedule"):
    assert merged[key] == whole[key], key
m, w = merged["splits"][0]["fca"], whole["splits"][0]["fca"]
for key in ("metrics", "confusion_matrix", "examples", "tokens", "flops"):
    assert m[key] == w[key], (key, m[key], w[key])
print(f"== slurm-check: eval: merged accuracy {m['metrics']['accuracy']:.4f} and FLOPs "
      f"{m['flops']['total']} equal one run's", file=sys.stderr)
PY
log "passed in $SECONDS s"
