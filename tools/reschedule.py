#!/usr/bin/env python3
"""Search the keep-ratio schedule of a retrained FCA model on held-out train rows.

Retraining (tools/train_fca.py retrain) adapts the weights to the schedule it was given, and
the adapted weights may then do better with a slightly different one. This tool evaluates a
grid of schedules around the model's own with `fcabert eval` (the engine, not a training
script) on held-out rows of TRAIN that no training step saw, and writes a copy of the model
file with the chosen schedule. Dev is never read: it stays for the report.

The choice rule is fixed before any candidate is scored:
  1. only schedules with at least --min-reduction x fewer FLOPs than dense on the held-out
     rows are eligible;
  2. the highest GLUE score on the held-out rows wins;
  3. ties go to the larger FLOPs reduction, except that the model's own schedule wins every
     tie it is part of (a candidate must be strictly better to replace it).

The grid: each layer's ratio takes the model's ratio and up to --radius steps of --step either
side (clipped to [--min-ratio, 1]), or the values --grid lists; combinations whose ratios rise
with depth are left out (the engine needs non-increasing ratios). A grid larger than
--max-candidates is refused: with a few hundred held-out rows, the best of many noisy
candidates is chosen for its luck more than its worth.

Examples (from the repository root):
  # the SST-2 FCA model: held-out rows from train_fca.py heldout, at least 2x fewer FLOPs
  .venv/bin/python tools/reschedule.py -m models/sst2-minilm-l6-fca.fcab --task sst2 \\
      --data build/fca/sst2-heldout1000.tsv --min-reduction 2 \\
      --grid '1;0.6,0.65,0.7,0.75,0.8;0.2,0.25,0.3,0.35,0.4;0.05,0.1;0.05;0.05' \\
      -o build/models/sst2-fca-rescheduled.fcab --json build/fca/sst2-reschedule.json
  # around the model's own schedule, one step either side of each ratio
  .venv/bin/python tools/reschedule.py -m MODEL.fcab --task stsb --data HELDOUT.tsv --radius 1 -o OUT.fcab

Every problem is one line "reschedule.py: error: ..." on stderr and exit code 1.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.atomic_write import write_text_atomically
from tools.fca_schedule import ScheduleError, parse_keep_ratios, validate_keep_ratios
from tools.fcabert_model import ModelFileError, copy_with_metadata, parse_metadata, read_header

PROG = "reschedule.py"
REPO = Path(__file__).resolve().parents[1]
RATIO_DIGITS = 6  # ratios on the grid are rounded to this many decimals (0.05 * 7 = 0.35000000000000003)


class RescheduleError(Exception):
    """A problem with the options, the model or an evaluation; the message says what to do."""


@dataclass(frozen=True)
class Candidate:
    keep_ratios: tuple[float, ...]
    clusters: int

    def text(self) -> str:
        return ",".join(f"{r:g}" for r in self.keep_ratios)


@dataclass
class Scored:
    candidate: Candidate
    score: float  # the task's GLUE score on the held-out rows, as a fraction
    reduction: float  # dense FLOPs / FCA FLOPs on the held-out rows
    metrics: dict


# ---------------------------------------------------------------------------------------------
# the grid

def layer_values(ratio: float, radius: int, step: float, min_ratio: float) -> list[float]:
    """The ratio and up to `radius` steps either side, clipped to [min_ratio, 1], ascending."""
    values = {round(min(1.0, max(min_ratio, ratio + k * step)), RATIO_DIGITS) for k in range(-radius, radius + 1)}
    return sorted(values)


def parse_grid(text: str, num_layers: int) -> list[list[float]]:
    """'1;0.6,0.7;...' -> one list of candidate ratios per layer (semicolons between layers)."""
    layers = text.split(";")
    if len(layers) != num_layers:
        raise RescheduleError(f"--grid {text!r} lists {len(layers)} layers; the model has {num_layers} (one "
                              f"';'-separated list of ratios per layer)")
    grid = []
    for i, item in enumerate(layers):
        try:
            values = parse_keep_ratios(item)
            for v in values:
                validate_keep_ratios([v])
        except ScheduleError as e:
            raise RescheduleError(f"--grid, layer {i}: {e}") from None
        grid.append(sorted({round(v, RATIO_DIGITS) for v in values}))
    return grid


def neighbourhood(keep_ratios, radius: int, step: float, min_ratio: float) -> list[list[float]]:
    return [layer_values(r, radius, step, min_ratio) for r in keep_ratios]


def candidates(grid: list[list[float]], clusters: list[int]) -> list[Candidate]:
    """Every non-increasing combination of the grid's values, for each cluster count."""
    out = []
    for ratios in itertools.product(*grid):
        if all(a >= b for a, b in zip(ratios, ratios[1:])):
            out.extend(Candidate(tuple(ratios), c) for c in clusters)
    return out


# ---------------------------------------------------------------------------------------------
# the rule

def choose(scored: list[Scored], own: Candidate, min_reduction: float) -> Scored:
    """The rule of the module docstring. Raises RescheduleError when nothing is eligible."""
    eligible = [s for s in scored if s.reduction >= min_reduction]
    if not eligible:
        best = max(scored, key=lambda s: s.reduction)
        raise RescheduleError(f"no candidate reaches {min_reduction:g}x fewer FLOPs on the held-out rows (the most "
                              f"is {best.reduction:.3f}x, {best.candidate.text()} C={best.candidate.clusters}): "
                              f"lower --min-reduction or add lower ratios to the grid")
    best = max(eligible, key=lambda s: (s.score, s.reduction))
    mine = [s for s in eligible if s.candidate == own]
    if mine and mine[0].score >= best.score:
        return mine[0]
    return best


# ---------------------------------------------------------------------------------------------
# evaluation with the engine

class Evaluator:
    """`fcabert eval --json` of one schedule on the held-out rows."""

    def __init__(self, args):
        self.args = args
        if not Path(args.fcabert).is_file():
            raise RescheduleError(f"fcabert binary {args.fcabert} not found: build it (scripts/setup.sh) or pass "
                                  f"--fcabert PATH")
        self.workdir = Path(tempfile.mkdtemp(prefix="reschedule-"))

    def __call__(self, candidate: Candidate) -> Scored:
        report_path = self.workdir / "report.json"
        argv = [self.args.fcabert, "eval", "-q", "-m", self.args.model, "--data", self.args.data,
                "--task", self.args.task, "-t", str(self.args.threads), "--precision", self.args.precision,
                "--keep-ratios", candidate.text(), "--clusters", str(candidate.clusters),
                "--json", str(report_path)]
        # Only metrics and FLOPs are read, never times: passive waiting keeps a shared machine usable.
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "passive")}
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RescheduleError(f"{shlex.join(argv)} failed (exit {result.returncode}): "
                                  f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ''}")
        report = json.loads(report_path.read_text())
        if len(report["splits"]) != 1:
            raise RescheduleError(f"--data {self.args.data} gave {len(report['splits'])} splits; pass one .tsv file "
                                  f"of held-out rows (tools/train_fca.py heldout writes one)")
        fca = report["splits"][0]["fca"]
        return Scored(candidate, float(fca["glue_score"]), float(fca["flops"]["reduction_ratio"]), fca["metrics"])


def evaluate_all(cands: list[Candidate], evaluate, own: Candidate, min_reduction: float) -> list[Scored]:
    """Scores every candidate, with one progress line each on stderr."""
    scored: list[Scored] = []
    started = time.monotonic()
    for i, cand in enumerate(cands, 1):
        s = evaluate(cand)
        scored.append(s)
        eligible = [x for x in scored if x.reduction >= min_reduction]
        lead = max(eligible, key=lambda x: (x.score, x.reduction)) if eligible else None
        mark = " (the model's own)" if cand == own else ""
        lead_text = f"best so far {100 * lead.score:.2f} ({lead.candidate.text()})" if lead else "none eligible yet"
        print(f"{PROG}: [{i}/{len(cands)}] {cand.text()} C={cand.clusters}{mark}: score {100 * s.score:.2f}, "
              f"{s.reduction:.3f}x fewer FLOPs; {lead_text}; {time.monotonic() - started:.0f} s",
              file=sys.stderr, flush=True)
    return scored


# ---------------------------------------------------------------------------------------------
# command line

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", required=True, help="the FCA model file whose weights are kept")
    p.add_argument("--data", required=True,
                   help="held-out rows of TRAIN as a GLUE .tsv (tools/train_fca.py heldout); never dev")
    p.add_argument("--task", required=True, help="GLUE task of --data, e.g. sst2, mrpc, stsb, cola, rte")
    p.add_argument("--min-reduction", type=float, default=2.0,
                   help="fewest times fewer FLOPs than dense, on the held-out rows, a schedule must reach "
                        "(default 2)")
    p.add_argument("--radius", type=int, default=2,
                   help="steps either side of each of the model's ratios (default 2); ignored with --grid")
    p.add_argument("--step", type=float, default=0.05, help="grid step of the ratios (default 0.05)")
    p.add_argument("--min-ratio", type=float, default=0.05, help="lowest ratio a layer may get (default 0.05)")
    p.add_argument("--grid", help="the candidate ratios of each layer instead of the neighbourhood, layers "
                                  "separated by ';', e.g. '1;0.6,0.7;0.2,0.3;0.05;0.05;0.05'")
    p.add_argument("--clusters", help="cluster counts C to try, e.g. 2,3 (default: the model's)")
    p.add_argument("--max-candidates", type=int, default=400, help="refuse a larger grid (default 400)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8", "auto"),
                   help="the engine's arithmetic for the evaluations (default fp32, exact)")
    p.add_argument("-t", "--threads", type=int, default=2, help="fcabert eval threads (default 2)")
    p.add_argument("--fcabert", default=str(REPO / "build" / "fcabert"), help="the fcabert binary (default: %(default)s)")
    p.add_argument("-o", "--output", required=True, help="the model file to write (the input with the chosen schedule)")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.add_argument("--json", help="also write every candidate's scores and the choice as JSON to FILE")
    args = p.parse_args(argv)
    args.command_line = shlex.join([".venv/bin/python", "tools/reschedule.py",
                                    *(sys.argv[1:] if argv is None else argv)])
    if args.radius < 0:
        p.error(f"--radius must be >= 0, got {args.radius}")
    if not 0 < args.step <= 1:
        p.error(f"--step must be in (0, 1], got {args.step}")
    if not 0 < args.min_ratio <= 1:
        p.error(f"--min-ratio must be in (0, 1], got {args.min_ratio}")
    if args.min_reduction < 1:
        p.error(f"--min-reduction must be >= 1 (1 = any schedule), got {args.min_reduction}")
    if args.max_candidates < 1:
        p.error(f"--max-candidates must be >= 1, got {args.max_candidates}")
    return args


def model_schedule(path: str) -> tuple[dict, Candidate]:
    try:
        metadata = parse_metadata(path, read_header(path)[0])
    except (ModelFileError, OSError) as e:
        raise RescheduleError(str(e)) from None
    fca = metadata["fca"]
    if not fca.get("keep_ratios"):
        raise RescheduleError(f"{path} has no FCA schedule (a dense model): use `fcabert calibrate` to find one, "
                              f"or tools/train_fca.py to train one")
    return metadata, Candidate(tuple(round(float(r), RATIO_DIGITS) for r in fca["keep_ratios"]), int(fca["clusters"]))


def parse_clusters(text: str | None, own: int) -> list[int]:
    if text is None:
        return [own]
    try:
        values = sorted({int(v) for v in text.split(",")})
    except ValueError:
        raise RescheduleError(f"--clusters {text!r}: expected comma-separated integers >= 0, e.g. 2,3") from None
    if any(v < 0 for v in values):
        raise RescheduleError(f"--clusters {text!r}: cluster counts must be >= 0")
    return values


def check_heldout_data(path: str) -> None:
    """Refuse what would choose the schedule on dev: `fcabert eval` reads a GLUE directory's dev
    split, and GLUE names its dev files dev*.tsv. The choice must come from held-out train rows."""
    data = Path(path)
    if data.is_dir():
        raise RescheduleError(f"--data {path} is a directory (fcabert eval would score its dev split); pass the "
                              f"held-out train rows as one .tsv file (tools/train_fca.py heldout -o FILE)")
    if data.name.lower().startswith("dev"):
        raise RescheduleError(f"--data {path} looks like a dev set ({data.name}); choose on held-out train rows "
                              f"(tools/train_fca.py heldout -o FILE) and keep dev for the report")
    if not data.is_file():
        raise RescheduleError(f"--data {path} does not exist; write it with tools/train_fca.py heldout -o FILE")


def run(args) -> dict:
    check_heldout_data(args.data)
    if Path(args.output).exists() and not args.force:
        raise RescheduleError(f"{args.output} already exists; choose another --output or pass --force")
    if Path(args.output).resolve() == Path(args.model).resolve():
        raise RescheduleError(f"--output is the input model {args.model}; write a new file")
    metadata, own = model_schedule(args.model)
    num_layers = len(own.keep_ratios)
    grid = (parse_grid(args.grid, num_layers) if args.grid
            else neighbourhood(own.keep_ratios, args.radius, args.step, args.min_ratio))
    cands = candidates(grid, parse_clusters(args.clusters, own.clusters))
    if own not in cands:  # the model's own schedule is always scored: it is what a candidate must beat
        cands.insert(0, own)
    if len(cands) > args.max_candidates:
        raise RescheduleError(f"the grid has {len(cands)} schedules, more than --max-candidates "
                              f"{args.max_candidates}: narrow --grid or --radius (the best of many noisy "
                              f"candidates is chosen for its luck), or raise --max-candidates")
    print(f"{PROG}: {len(cands)} schedules of {args.model} on {args.data}, eligible from "
          f"{args.min_reduction:g}x fewer FLOPs; the model's own: {own.text()} C={own.clusters}",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    scored = evaluate_all(cands, Evaluator(args), own, args.min_reduction)
    chosen = choose(scored, own, args.min_reduction)
    own_scored = next(s for s in scored if s.candidate == own)
    note = {"tool": "tools/reschedule.py", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "from_schedule": list(own.keep_ratios), "from_clusters": own.clusters, "data": args.data,
            "candidates": len(scored), "min_reduction": args.min_reduction,
            "heldout_score": chosen.score, "heldout_reduction": chosen.reduction,
            "own_heldout_score": own_scored.score, "own_heldout_reduction": own_scored.reduction,
            "command": args.command_line}
    fca = {**metadata["fca"], "keep_ratios": list(chosen.candidate.keep_ratios), "clusters": chosen.candidate.clusters}
    provenance = {**metadata["provenance"], "schedule_search": note}
    try:
        copy_with_metadata(args.model, args.output, {"fca": fca, "provenance": provenance})
    except (ModelFileError, OSError) as e:
        raise RescheduleError(str(e)) from None
    summary = {"model": args.model, "output": args.output, "chosen": _row(chosen), "own": _row(own_scored),
               "changed": chosen.candidate != own, "seconds": round(time.monotonic() - started, 1), **note,
               "scored": [_row(s) for s in sorted(scored, key=lambda s: (-s.score, -s.reduction))]}
    if args.json:
        write_text_atomically(Path(args.json), json.dumps(summary, indent=2) + "\n", parents=True)
    verdict = "kept the model's own schedule" if chosen.candidate == own else f"changed it from {own.text()}"
    print(f"{PROG}: chose {chosen.candidate.text()} C={chosen.candidate.clusters} ({verdict}): held-out score "
          f"{100 * chosen.score:.2f} against {100 * own_scored.score:.2f}, {chosen.reduction:.3f}x fewer FLOPs; "
          f"wrote {args.output}", file=sys.stderr)
    return summary


def _row(s: Scored) -> dict:
    return {"keep_ratios": list(s.candidate.keep_ratios), "clusters": s.candidate.clusters, "score": s.score,
            "reduction": s.reduction, "metrics": s.metrics}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except RescheduleError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
