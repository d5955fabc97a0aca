"""The timed engines of a workload, all served processes driven round-robin:

  fcabert     `fcabert-bench --serve` (one process per model file, schedule and precision);
              it packs the token file into ragged batches in file order, no padding
  peers       `python -m tools.bench.peer_worker` (one process per peer configuration) that
              serves two rows: length-sorted batches and file-order batches

A row (Engine) is one process asked for one timed pass at a time with one command. Each
repetition runs one pass of every row, the first row rotating, so drift on a shared machine
hits every engine alike; every figure is then the median over the repetitions.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.bench.peer_runtime import PEERS
from tools.bench.workloads import fail

FILE_ORDER_SUFFIX = " (file order)"


class Served:
    """A child that prints one JSON line when ready and one JSON line per command."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env or dict(os.environ))
        self.info: dict | None = None

    def ready(self) -> dict:
        """Waits for the description line. The drivers start one process at a time, waiting
        for each: processes loading side by side on a 2-core machine would slow each other's
        load, and load_ms is a reported figure."""
        if self.info is None:
            line = self.proc.stdout.readline()
            if not line:
                fail(f"{self.name} failed to start (exit status {self.proc.wait()}; see its stderr above)")
            self.info = json.loads(line)
        return self.info

    def ask(self, command: str) -> dict:
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            fail(f"{self.name} stopped before {command!r} (see its stderr above)")
        line = self.proc.stdout.readline()
        if not line:
            fail(f"{self.name} stopped during {command!r} (exit status {self.proc.wait()}; see its stderr above)")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Engine:
    """One row of the results: a served process and the command of one timed pass."""
    name: str
    process: Served
    command: str
    kind: str                     # "fcabert" or "peer"
    precision: str
    peer: str | None = None       # PEERS key
    order: str | None = None      # peers: "sorted" or "file"
    passes: list = field(default_factory=list)

    def pass_(self) -> None:
        self.passes.append(self.process.ask(self.command))


# ---------------------------------------------------------------------------------------------
# fcabert

def fcabert_process(binary: str, model: Path, token_file: Path, batch_size: int, threads: int, precision: str,
                    schedule_flags: list[str], name: str) -> Served:
    argv = [binary, "--serve", "--warmup", "1", "-m", str(model), "--tokens", str(token_file), "-b",
            str(batch_size), "-t", str(threads), "--precision", precision, *schedule_flags]
    return Served(name, argv)


def fcabert_engines(args, configs: list[tuple], token_file: Path, batch_size: int, engines: list) -> None:
    """Appends one engine per config, (name, model path, schedule flags, precision, runs FCA),
    each in its own process (appended as soon as started: the caller closes what started)."""
    for name, model, flags, precision, _ in configs:
        process = fcabert_process(args.fcabert_bench, model, token_file, batch_size, args.threads, precision, flags,
                                  name)
        engines.append(Engine(name, process, "run", "fcabert", precision))
        process.ready()


def check_schedules(engines: list[Engine], configs: list[tuple]) -> None:
    """A process that runs FCA when it should not (or the reverse) is an error: the FCA model
    runs the schedule stored in its file only because no schedule flag is given."""
    for engine, (_, model, _, _, wants_fca) in zip(engines, configs):
        info = engine.process.ready()
        if bool(info["fca"]) != wants_fca:
            fail(f"{engine.name}: fcabert-bench ran {model} with schedule {info['schedule']!r}, expected "
                 f"{'an FCA schedule' if wants_fca else 'dense'}")


# ---------------------------------------------------------------------------------------------
# peers

def peer_env(args, peer: str) -> dict:
    env = dict(os.environ)
    if peer.startswith("ct2") and args.ct2_isa:
        # read once when CTranslate2 loads: hence a process per CTranslate2 engine
        env["CT2_FORCE_CPU_ISA"] = args.ct2_isa
    return env


def peer_engines(args, artefacts: Path, token_file: Path, batch_size: int, engines: list) -> None:
    """Appends two rows per peer at batch > 1 (length-sorted, then file order unless --no-file-order),
    one at batch 1 (no padding there: file order is the only order). One process per peer,
    whose rows share it; check_fingerprints() then checks what they hold."""
    orders = ["file"] if batch_size == 1 else (["sorted"] if args.no_file_order else ["sorted", "file"])
    for peer in args.peers:
        name = PEERS[peer][0]
        argv = [sys.executable, "-m", "tools.bench.peer_worker", "--peer", peer, "--artefacts", str(artefacts),
                "--tokens", str(token_file), "-b", str(batch_size), "-t", str(args.threads),
                "--orders", ",".join(orders)]
        process = Served(name, argv, peer_env(args, peer))
        rows = [Engine(name + (FILE_ORDER_SUFFIX if order == "file" and batch_size != 1 else ""), process,
                       f"run {order}", "peer", "", peer, order) for order in orders]
        engines += rows
        for row in rows:
            row.precision = process.ready()["inference_precision"]


def check_fingerprints(engines: list[Engine], fingerprint: str) -> None:
    """Each peer row's batches must hold exactly the workload's sequences."""
    for engine in (e for e in engines if e.kind == "peer"):
        if engine.process.info["fingerprints"][engine.order] != fingerprint:
            fail(f"{engine.name}: its batches do not hold the workload's sequences")


def peer_logits(engine: Engine, path: Path) -> np.ndarray:
    engine.process.ask(f"logits {engine.order} {path}")
    return np.load(path)


def is_exact(engine: Engine) -> bool:
    """fp32 peers, and OpenVINO's default where it resolved to f32 (a CPU without bf16)."""
    return PEERS[engine.peer][1] or engine.precision in ("f32", "float32")


def check_logits(engine: Engine, logits: np.ndarray, reference: np.ndarray, tolerance: float,
                 min_agreement: float, when: str) -> dict:
    """fp32 engines within `tolerance` of the reference logits; int8 / bf16 engines on the
    same argmax for at least `min_agreement` of the sequences. Rows are in file order, so an
    engine that did not restore the order fails too. A failure stops the run: a broken peer
    must not post a fast figure."""
    diff = float(np.max(np.abs(logits - reference))) if np.isfinite(logits).all() else float("inf")  # NaN: a lost row
    agreement = float(np.mean(np.argmax(logits, axis=1) == np.argmax(reference, axis=1)))
    exact = is_exact(engine)
    ok = diff <= tolerance if exact else agreement >= min_agreement
    rule = f"max |diff| <= {tolerance:g}" if exact else f"argmax agreement >= {min_agreement:.0%}"
    if not ok:
        fail(f"{engine.name} ({engine.precision}) fails its logit check {when}: max |logit - reference| "
             f"{diff:.3g}, argmax agreement {agreement:.1%} (rule: {rule}; --fp32-tolerance, --min-agreement)")
    return {"engine": engine.name, "precision": engine.precision, "max_abs_diff": diff,
            "argmax_agreement": agreement, "rule": rule}


def check_peers(engines: list[Engine], reference: np.ndarray, args, work: Path, when: str) -> list[dict]:
    return [check_logits(e, peer_logits(e, work / f"logits-{e.peer}-{e.order}.npy"), reference,
                         args.fp32_tolerance, args.min_agreement, when)
            for e in engines if e.kind == "peer"]


# ---------------------------------------------------------------------------------------------
# the loop

def round_robin(engines: list[Engine], repeat: int) -> None:
    for rep in range(repeat):
        start = rep % len(engines)
        for engine in engines[start:] + engines[:start]:
            engine.pass_()


def summarize(engine: Engine, sequences: int) -> dict:
    passes = engine.passes
    for p in passes:  # fcabert-bench's passes do not repeat the count: its description has it
        got = p.get("sequences", engine.process.info["sequences"])
        if got != sequences:
            fail(f"{engine.name} ran {got} sequences in a pass, the workload has {sequences}")
    med = lambda key: statistics.median(p[key] for p in passes)  # noqa: E731
    row = {"engine": engine.name, "kind": engine.kind, "precision": engine.precision, "peer": engine.peer,
           "order": engine.order, "runs": len(passes), "sequences_per_pass": [p.get("sequences", sequences)
                                                                             for p in passes],
           "pass_ms": med("pass_ms"), "latency_ms_median": med("batch_ms_median"),
           "latency_ms_p90": med("batch_ms_p90"), "examples_per_s": med("examples_per_s"),
           "pass_ms_all": [p["pass_ms"] for p in passes], "load_ms": engine.process.info["load_ms"]}
    if engine.kind == "fcabert":
        row.update(fcabert_facts(engine))
    else:
        info = engine.process.info
        row.update({"fingerprint": info["fingerprints"][engine.order],
                    "padded_tokens": info["padded_tokens"][engine.order],
                    "ct2_force_cpu_isa": info["ct2_force_cpu_isa"]})
    return row


def fcabert_facts(engine: Engine) -> dict:
    info, passes = engine.process.info, engine.passes
    linear = statistics.median(p["encoder_linear_gflops"] for p in passes)
    pass_ms = statistics.median(p["pass_ms"] for p in passes)
    return {"flops_per_pass": info["flops_per_pass"], "linear_flops_per_pass": info["linear_flops_per_pass"],
            "encoder_linear_flops_per_pass": info["encoder_linear_flops_per_pass"], "linear_gflops": linear,
            "gflops": info["flops_per_pass"] / (pass_ms * 1e6),
            "linear_share_of_time": info["encoder_linear_flops_per_pass"] / (linear * 1e6) / pass_ms if linear else 0,
            "schedule": info["schedule"], "fca": info["fca"], "model_file": info["model"],
            "forward_allocations": info["forward_allocations"],
            "forward_allocations_outside_onednn": info["forward_allocations_outside_onednn"],
            "batches": info["batches"], "run_allocations_per_batch": info["run_allocations_per_batch"],
            "peak_rss_bytes": max(p["peak_rss_bytes"] for p in passes),
            "weights_file_bytes": info["weights_file_bytes"]}


def close_all(engines: list[Engine]) -> None:
    for process in {id(e.process): e.process for e in engines}.values():
        process.close()
