"""The whole job: classify a text file of real sentences, one process per engine, from
process start to exit (model load, tokenization and output included), in sentences per
second of wall-clock time. What a user of each engine waits for.

  fcabert   `fcabert classify FILE -m MODEL --precision P -t T -b 32 -q` (dense model with
            --dense; the FCA model with the schedule stored in its file)
  peers     `python -m tools.bench.classify_peer FILE --peer KEY ...` (Hugging Face fast
            tokenizer, length-sorted batches of 32, labels in file order)

Runs round-robin like the timed workloads (--whole-job-repeat times, the first engine
rotating; the median). Each engine's labels are compared line by line with fcabert dense
fp32's (the FCA model's engines: with the FCA model in fp32, a retrained model of its own),
and with the gold labels when the file is the SST-2 dev set.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.bench.engines import peer_env
from tools.bench.peer_runtime import PEERS
from tools.bench.workloads import fail, sst2_dev

REFERENCE_PRECISION = "fp32"
REFERENCE = f"fcabert dense {REFERENCE_PRECISION}"


@dataclass
class Job:
    name: str
    argv: list[str]
    env: dict
    kind: str
    precision: str                # fcabert's; "" for peers (OpenVINO's default depends on the CPU)
    parse: str                    # "fcabert" (label<TAB>probability) or "labels"
    walls: list = field(default_factory=list)
    labels: list | None = None


def input_file(args, work: Path, limit: int) -> tuple[Path, list[int] | None]:
    """--whole-job-file, or the SST-2 dev sentences (with their gold labels), cut to `limit`."""
    if args.whole_job_file:
        lines = Path(args.whole_job_file).read_text(encoding="utf-8").splitlines()
        gold = None
    else:
        lines, gold = sst2_dev()
    if limit > 0:
        lines, gold = lines[:limit], (gold[:limit] if gold else None)
    if not lines:
        fail("the whole-job file has no lines")
    path = work / "whole-job.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, gold


def fcabert_jobs(args, text: Path, dense: Path, fca: Path | None) -> list[Job]:
    jobs = []
    for model, label, flags in ((dense, "dense", ["--dense"]), (fca, "FCA model", [])):
        if model is None:
            continue
        for p in args.precisions:
            argv = [args.fcabert, "classify", str(text), "-m", str(model), "--precision", p, "-t", str(args.threads),
                    "-b", str(args.whole_job_batch), "-q", *flags]
            jobs.append(Job(f"fcabert {label} {p}", argv, dict(os.environ), "fcabert", p, "fcabert"))
    return jobs


def peer_jobs(args, text: Path, artefacts: Path) -> list[Job]:
    jobs = []
    for peer in args.peers:
        env = peer_env(args, peer)
        # the fast tokenizer's encode_batch uses a thread pool as wide as the machine: hold
        # it to --threads like every engine
        env["RAYON_NUM_THREADS"] = str(args.threads)
        argv = [sys.executable, "-m", "tools.bench.classify_peer", str(text), "--peer", peer, "--artefacts",
                str(artefacts), "-t", str(args.threads), "-b", str(args.whole_job_batch)]
        jobs.append(Job(PEERS[peer][0], argv, env, "peer", "", "labels"))
    return jobs


def run_once(job: Job, lines: int) -> None:
    start = time.perf_counter()
    result = subprocess.run(job.argv, env=job.env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        fail(f"whole job: {job.name} exited {result.returncode}: {' '.join(job.argv)}\n{result.stderr[-2000:]}")
    out = result.stdout.splitlines()
    labels = [line.split("\t")[0] for line in out] if job.parse == "fcabert" else out
    if len(labels) != lines:
        fail(f"whole job: {job.name} printed {len(labels)} labels for {lines} lines")
    if job.labels is not None and labels != job.labels:
        fail(f"whole job: {job.name} printed other labels in another repetition")
    job.labels = labels
    job.walls.append(wall)


def run(args, work: Path, dense: Path, fca: Path | None, artefacts: Path, labels: list[str], repeat: int,
        limit: int) -> dict:
    text, gold = input_file(args, work, limit)
    lines = len(text.read_text(encoding="utf-8").splitlines())
    jobs = fcabert_jobs(args, text, dense, fca) + peer_jobs(args, text, artefacts)
    for rep in range(repeat):
        start = rep % len(jobs)
        for job in jobs[start:] + jobs[:start]:
            run_once(job, lines)
    # Labels are compared within one model file: the FCA model is a retrained model, its
    # fp32 labels are its engines' reference; everything else is compared with dense fp32.
    references = {"fcabert FCA model": f"fcabert FCA model {REFERENCE_PRECISION}", "": REFERENCE}
    by_name = {j.name: j for j in jobs}
    results = []
    for job in jobs:
        prefix = "fcabert FCA model" if job.name.startswith("fcabert FCA model") else ""
        ref = by_name.get(references[prefix], jobs[0])
        results.append(summarize(job, lines, ref, [labels[g] for g in gold] if gold else None))
    return {"file": str(args.whole_job_file or "SST-2 dev sentences"), "lines": lines,
            "batch_size": args.whole_job_batch, "repeat": repeat, "engines": results}


def summarize(job: Job, lines: int, reference: Job, gold: list[str] | None) -> dict:
    wall = statistics.median(job.walls)
    agree = sum(a == b for a, b in zip(job.labels, reference.labels)) / lines
    row = {"engine": job.name, "kind": job.kind, "precision": job.precision, "wall_s": wall,
           "wall_s_all": job.walls, "sentences_per_s": lines / wall, "agreement": agree,
           "agreement_with": reference.name, "runs": len(job.walls)}
    if gold:
        row["accuracy"] = sum(a == b for a, b in zip(job.labels, gold)) / lines
    return row


def check_agreement(whole: dict, min_agreement: float) -> None:
    """Every engine's labels agree with fcabert fp32's on most lines: a broken engine (or a
    tokenizer that differs) must not post a fast figure."""
    for r in whole["engines"]:
        if r["agreement"] < min_agreement:
            fail(f"whole job: {r['engine']} agrees with {r['agreement_with']} on only "
                 f"{r['agreement']:.1%} of the lines (--min-agreement {min_agreement:.0%})")
