#!/usr/bin/env python3
"""The accuracy-FLOPs trade-off of FCA, measured with `fcabert eval` (issue 5, part 4).

For each task (SST-2, MRPC, STS-B, CoLA and RTE by default) this evaluates on the GLUE dev
set, every number coming from `fcabert eval --json` (never from a training script):

  dense          the dense fine-tuned model (eval --dense)
  hand           an untrained hand-written schedule on the dense model (C=2 mean), and C=0
  learned        each learned FCA model of the task in build/models/MANIFEST.json (written by
                 tools/train_fca.py) plus any --learned model, with its own schedule, and the
                 same schedule with C=0 (eval --clusters 0: PoWER-BERT-style dropping)
  calibrated     `fcabert calibrate` on a seeded slice of train.tsv (never dev) at each
                 --targets FLOPs share, C=2 weighted; the same schedule with C=0; and a
                 schedule calibrated for C=0 itself (--calibrate-c0)

and writes a markdown report (a table per task, the exact command, the date) and one SVG
plot per task (metric vs encoder FLOPs share of dense). A model that does not exist yet is
not an error: it is listed under "missing" with the command that makes it.

Results are cached in --workdir (keyed by the command and the contents of its input files),
so re-running after new models appear only evaluates the new points; --rerun ignores the
cache.

  .venv/bin/python tools/tradeoff.py                       # everything, docs/TRADEOFF.md
  .venv/bin/python tools/tradeoff.py --tasks sst2 --targets 0.5
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

from tools.atomic_write import write_text_atomically

REPO = Path(__file__).resolve().parents[1]
HAND_SCHEDULE = "0.65,0.45,0.35,0.3,0.25,0.2"


def _pipeline_task(task: str, folder: str, metric: str, learned: tuple[str, ...] = ()) -> dict:
    """A task whose dense and FCA models both come from one `train_fca.py pipeline` run
    (docs/TRAINING.md has the command; models/README.md the cards)."""
    return {"dir": folder, "metric": metric, "dense": f"build/models/{task}-minilm-l6.fcab", "learned": list(learned),
            "min_tokens": 0,
            "dense_command": (f".venv/bin/python tools/train_fca.py pipeline --task {task} "
                              f"--train ../shared/data/glue/{folder}/train.tsv ... "
                              f"--dense-output build/models/{task}-minilm-l6.fcab (docs/TRAINING.md)")}


# What we know about each task. `dense_command` makes the dense model when it is missing.
TASKS = {
    "sst2": {
        "dir": "SST-2",
        "metric": "accuracy",
        "dense": "models/sst2-minilm-l6.fcab",
        "learned": ["models/sst2-minilm-l6-fca.fcab"],
        "min_tokens": 10,
        "dense_command": "see models/README.md (tools/train_classifier.py --task sst2 ... then tools/convert.py)",
    },
    "mrpc": _pipeline_task("mrpc", "MRPC", "GLUE score (mean of F1 and accuracy)", ("models/mrpc-minilm-l6-fca.fcab",)),
    "stsb": _pipeline_task("stsb", "STS-B", "GLUE score (mean of Pearson and Spearman)"),
    "cola": _pipeline_task("cola", "CoLA", "GLUE score (Matthews correlation)"),
    "rte": _pipeline_task("rte", "RTE", "accuracy"),
}
TRAIN_FCA_HINT = ("the FCA training pipeline, tools/train_fca.py (issue 5 part 2), which writes the models "
                  "and build/models/MANIFEST.json")

SERIES_STYLE = {  # name -> (colour, marker)
    "dense": ("#222222", "square"),
    "learned FCA": ("#1f77b4", "circle"),
    "learned, C=0 (drop)": ("#9ecae1", "circle"),
    "calibrated FCA": ("#d62728", "diamond"),
    "calibrated, C=0 (same schedule)": ("#ff9896", "diamond"),
    "calibrated for C=0": ("#e377c2", "triangle"),
    "hand schedule (untrained)": ("#2ca02c", "triangle"),
    "hand schedule, C=0": ("#98df8a", "triangle"),
}


class ToolError(Exception):
    pass


def log(message: str) -> None:
    print(f"[tradeoff] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Measure dev metric vs FLOPs for dense, learned, C=0, calibrated and hand schedules with "
                    "`fcabert eval`; write a markdown table and SVG plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    p.add_argument("--fcabert", default=str(REPO / "build" / "fcabert"), help="the fcabert binary")
    p.add_argument("--glue", default=str(REPO.parent / "shared" / "data" / "glue"), help="GLUE data folder")
    p.add_argument("--manifest", default=str(REPO / "build" / "models" / "MANIFEST.json"),
                   help="learned models: JSON list of {path, task, lambda, schedule, clusters, pooling, command}")
    p.add_argument("--dense-model", action="append", default=[], metavar="TASK=PATH",
                   help="the dense model of a task (default: " +
                        ", ".join(f"{t}={c['dense']}" for t, c in TASKS.items()) + ")")
    p.add_argument("--learned", action="append", default=[], metavar="TASK=PATH",
                   help="an extra learned FCA model (besides the manifest's)")
    p.add_argument("--no-default-learned", action="store_true",
                   help="do not look for the default learned models (" +
                        ", ".join(m for c in TASKS.values() for m in c["learned"]) + ")")
    p.add_argument("--targets", default="0.6,0.5,0.4", help="FLOPs targets for fcabert calibrate")
    p.add_argument("--calibrate-c0", action=argparse.BooleanOptionalAction, default=True,
                   help="also calibrate a schedule for C=0 at each target")
    p.add_argument("--hand", default=HAND_SCHEDULE,
                   help="an untrained hand schedule to show on the dense model ('' = none)")
    p.add_argument("--calib-split", default="train", help="split calibrate reads (never dev)")
    p.add_argument("--calib-limit", type=int, default=500, help="calibration examples (seeded sample)")
    p.add_argument("--calib-seed", type=int, default=1)
    p.add_argument("--calib-min-tokens", action="append", default=[], metavar="TASK=N",
                   help="calibrate only on examples of >= N tokens (default: " +
                        ", ".join(f"{t}={c['min_tokens']}" for t, c in TASKS.items()) + ")")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N dev examples (0 = all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default=str(REPO / "build" / "tradeoff"),
                   help="calibrated models, eval reports and the cache")
    p.add_argument("--out", default=str(REPO / "docs" / "TRADEOFF.md"), help="the markdown report")
    p.add_argument("--svg-dir", default=str(REPO / "docs"), help="where tradeoff_<task>.svg go")
    p.add_argument("--rerun", action="store_true", help="ignore cached results")
    p.add_argument("--nice", type=int, default=10, help="run fcabert under `nice -n N` (0 = not)")
    args = p.parse_args(argv)
    args.tasks = [t.strip().lower() for t in args.tasks.split(",") if t.strip()]
    for t in args.tasks:
        if t not in TASKS:
            p.error(f"unknown task {t!r}; known: {', '.join(TASKS)}")
    try:
        args.targets = [float(x) for x in args.targets.split(",") if x.strip()]
    except ValueError:
        p.error(f"--targets: not a list of numbers: {args.targets!r}")
    for x in args.targets:
        if not 0 < x <= 1:
            p.error(f"--targets: {x} is not in (0, 1]")

    def pairs(items, name, convert=str):
        out = {}
        for item in items:
            task, sep, value = item.partition("=")
            if not sep or task.lower() not in TASKS:
                p.error(f"{name} {item!r}: expected TASK=VALUE with TASK one of {', '.join(TASKS)}")
            out.setdefault(task.lower(), []).append(convert(value))
        return out
    args.dense_model = {k: v[-1] for k, v in pairs(args.dense_model, "--dense-model").items()}
    args.learned = pairs(args.learned, "--learned")
    args.calib_min_tokens = {k: v[-1] for k, v in pairs(args.calib_min_tokens, "--calib-min-tokens", int).items()}
    return args


def resolve(path: str) -> Path:
    q = Path(path)
    return q if q.is_absolute() else REPO / q


def shown(path) -> str:
    """A path as the report shows it: relative to the repository when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------------------------
# running fcabert, with a cache

class Runner:
    def __init__(self, args):
        self.args = args
        self.binary = args.fcabert
        if not Path(self.binary).is_file():
            raise ToolError(f"fcabert binary {self.binary} not found: build it first (cmake --build build)")
        self.workdir = Path(args.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.evals = 0
        self.calibrations = 0
        self.cached = 0
        self._hashes: dict[str, str] = {}

    def _command(self, argv):
        prefix = ["nice", "-n", str(self.args.nice)] if self.args.nice else []
        return prefix + [self.binary, *argv]

    def _key(self, argv, inputs) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(argv).encode())
        for path in inputs:
            h.update(f"{path}:{self._content_hash(Path(path))}".encode())
        return h.hexdigest()[:16]

    def _content_hash(self, path: Path) -> str:
        """sha256 of the file's bytes, once per file and run. Content, not size and mtime: the
        shared data folder is provisioned anew with fresh mtimes, which missed every entry."""
        resolved = str(path.resolve())
        if resolved not in self._hashes:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self._hashes[resolved] = h.hexdigest()
        return self._hashes[resolved]

    def _run(self, argv, what):
        log(f"{what}: fcabert {' '.join(shlex.quote(a) for a in argv)}")
        start = time.monotonic()
        env = dict(os.environ)
        # On a shared machine, spinning OpenMP threads slow everything down many times over;
        # only FLOPs and metrics are reported here, never times.
        env.setdefault("OMP_WAIT_POLICY", "passive")
        result = subprocess.run(self._command(argv), capture_output=True, text=True, env=env)
        seconds = time.monotonic() - start
        if result.returncode != 0:
            raise ToolError(f"fcabert {' '.join(argv)} failed (exit {result.returncode}):\n{result.stderr.strip()}")
        return result, seconds

    def eval(self, task: str, model: Path, extra, name: str) -> dict:
        """`fcabert eval --json` on the task's dev set; returns the parsed report (cached)."""
        data = Path(self.args.glue) / TASKS[task]["dir"]
        argv = ["eval", "-q", "-m", str(model), "--data", str(data), "--threads", str(self.args.threads), *extra]
        if self.args.limit:
            argv += ["--limit", str(self.args.limit)]
        key = self._key(argv, [model, data / "dev.tsv"])
        out = self.workdir / task / f"eval-{name}-{key}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_file() and not self.args.rerun:
            self.cached += 1
            log(f"{task} {name}: cached {shown(out)}")
            return json.loads(out.read_text())
        self._run(argv + ["--json", str(out)], f"{task} {name}")
        self.evals += 1
        return json.loads(out.read_text())

    def calibrate(self, task: str, dense: Path, targets, clusters: int) -> dict:
        """`fcabert calibrate` on a train slice, all targets in one search; returns
        {target: (model path, search report)} (cached)."""
        data = Path(self.args.glue) / TASKS[task]["dir"]
        min_tokens = self.args.calib_min_tokens.get(task, TASKS[task]["min_tokens"])
        argv = ["calibrate", "-m", str(dense), "--data", str(data), "--split", self.args.calib_split,
                "--limit", str(self.args.calib_limit), "--seed", str(self.args.calib_seed),
                "--min-tokens", str(min_tokens), "--flops-target", ",".join(f"{t:g}" for t in targets),
                "--clusters", str(clusters), "--threads", str(self.args.threads)]
        split_file = data / f"{self.args.calib_split}.tsv"
        key = self._key(argv, [dense] + ([split_file] if split_file.is_file() else []))
        stem = self.workdir / task / f"calibrated-c{clusters}-{key}-t{{target}}"
        paths = {t: (Path(str(stem).replace("{target}", f"{t:g}") + ".fcab"),
                     Path(str(stem).replace("{target}", f"{t:g}") + ".json")) for t in targets}
        stem.parent.mkdir(parents=True, exist_ok=True)
        if all(m.is_file() and r.is_file() for m, r in paths.values()) and not self.args.rerun:
            self.cached += 1
            log(f"{task} calibrate C={clusters}: cached {shown(stem.parent)}")
        else:
            self._run(argv + ["--out", f"{stem}.fcab", "--force", "--json", f"{stem}.json"],
                      f"{task} calibrate targets {','.join(f'{t:g}' for t in targets)} C={clusters}")
            self.calibrations += 1
        return {t: (m, json.loads(r.read_text())) for t, (m, r) in paths.items()}


# ---------------------------------------------------------------------------------------------
# points

def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB pieces (model files are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def point_from_report(series: str, label: str, report: dict, **extra) -> dict:
    split = report["splits"][0]
    fca = split["fca"]
    flops = fca["flops"]
    return {
        "series": series,
        "label": label,
        "schedule": report["schedule"]["description"],
        "metric": 100.0 * fca["glue_score"],
        "metrics": {k: 100.0 * v for k, v in fca["metrics"].items()},
        "flops_share": flops["total"] / flops["dense_total"] if flops["dense_total"] else 1.0,
        "reduction": flops["reduction_ratio"],
        "mflops_per_example": flops["per_example"] / 1e6,
        "examples": fca["examples"],
        "model": shown(report["model"]),
        **extra,
    }


def read_manifest(path: Path):
    """The learned models (a JSON list, or {"models": [...]}); None when the file is missing."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ToolError(f"{path}: not valid JSON ({e})")
    entries = data.get("models", data.get("entries")) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ToolError(f"{path}: expected a list of model entries (or {{\"models\": [...]}})")
    return entries


def collect_task(task: str, args, runner: Runner, manifest):
    info = TASKS[task]
    points, missing = [], []
    dense_path = resolve(args.dense_model.get(task, info["dense"]))
    entries = [e for e in (manifest or []) if str(e.get("task", "")).lower().replace("-", "") == task]
    if task not in args.dense_model and not dense_path.is_file():
        # the manifest may list the task's dense model under another name: no schedule, no λ
        for e in entries:
            p = resolve(str(e.get("path", "")))
            if not e.get("schedule") and not e.get("lambda") and p.is_file():
                log(f"{task}: dense model from the manifest: {shown(p)}")
                dense_path = p
                break

    # learned models: the manifest's, the defaults, --learned
    learned = []
    for e in entries:
        p = resolve(str(e.get("path", "")))
        if dense_path.resolve() == p.resolve() or not e.get("schedule", True):
            continue  # the task's dense model may be listed too
        learned.append((p, e))
    known = {p.resolve() for p, _ in learned}
    extra = ([] if args.no_default_learned else info["learned"]) + args.learned.get(task, [])
    for path in extra:
        p = resolve(path)
        if p.resolve() not in known:
            learned.append((p, {}))
            known.add(p.resolve())

    if not dense_path.is_file():
        command = next((e.get("command") for e in entries
                        if resolve(str(e.get("path", ""))).resolve() == dense_path.resolve() and e.get("command")),
                       info["dense_command"])
        missing.append({"what": f"dense {task} model {shown(dense_path)}", "command": command,
                        "consequence": "no dense, hand or calibrated points for this task"})
    else:
        points.append(point_from_report("dense", "dense", runner.eval(task, dense_path, ["--dense"], "dense")))
        if args.hand:
            base = ["--keep-ratios", args.hand]
            points.append(point_from_report("hand schedule (untrained)", "hand C=2 mean",
                                            runner.eval(task, dense_path, base + ["--clusters", "2", "--pooling",
                                                                                  "mean"], "hand-c2-mean")))
            points.append(point_from_report("hand schedule, C=0", "hand C=0",
                                            runner.eval(task, dense_path, base + ["--clusters", "0"], "hand-c0")))
        calibrated = runner.calibrate(task, dense_path, args.targets, 2) if args.targets else {}
        calibrated0 = runner.calibrate(task, dense_path, args.targets, 0) if args.targets and args.calibrate_c0 else {}

        def calib_info(target, search):
            return {"target": target, "calibration_seconds": search.get("seconds"),
                    "calibration_flops_share": search.get("result", {}).get("flops_ratio"),
                    "calibration_model_runs": search.get("model_runs")}
        for target in args.targets:
            model, search = calibrated[target]
            points.append(point_from_report("calibrated FCA", f"calibrated {target:g}",
                                            runner.eval(task, model, [], f"calibrated-t{target:g}"),
                                            **calib_info(target, search)))
            if search.get("result", {}).get("keep_ratios"):
                points.append(point_from_report("calibrated, C=0 (same schedule)", f"calibrated {target:g} C=0",
                                                runner.eval(task, model, ["--clusters", "0"],
                                                            f"calibrated-t{target:g}-c0"), target=target))
            if calibrated0:
                model0, search0 = calibrated0[target]
                points.append(point_from_report("calibrated for C=0", f"calibrated-for-C=0 {target:g}",
                                                runner.eval(task, model0, [], f"calibrated0-t{target:g}"),
                                                **calib_info(target, search0)))

    if manifest is None:
        missing.append({"what": f"learned FCA models for {task} (λ sweep): {shown(args.manifest)} does not exist",
                        "command": TRAIN_FCA_HINT, "consequence": "no learned or learned C=0 points from the manifest"})
    elif not entries:
        missing.append({"what": f"learned FCA models for {task}: none listed in {shown(args.manifest)}",
                        "command": TRAIN_FCA_HINT, "consequence": "no learned points from the manifest"})
    seen_contents = {}  # a model copied under another name (e.g. into models/) is one point
    for path, entry in learned:
        lam = entry.get("lambda")
        label = f"λ={lam:g} ({path.stem})" if isinstance(lam, (int, float)) else path.stem
        if path.is_file():
            digest = file_digest(path)
            if digest in seen_contents:
                log(f"{task}: {shown(path)} is byte-identical to {shown(seen_contents[digest])}: shown once")
                continue
            seen_contents[digest] = path
        if not path.is_file():
            missing.append({"what": f"learned model {shown(path)}" + (f" (λ={lam})" if lam is not None else ""),
                            "command": entry.get("command") or TRAIN_FCA_HINT,
                            "consequence": "no learned / learned C=0 point"})
            continue
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
        extra_info = {"lambda": lam}
        points.append(point_from_report("learned FCA", label, runner.eval(task, path, [], f"learned-{name}"),
                                        **extra_info))
        report0 = runner.eval(task, path, ["--clusters", "0"], f"learned-{name}-c0")
        points.append(point_from_report("learned, C=0 (drop)", label + " C=0", report0, **extra_info))
    return points, missing


# ---------------------------------------------------------------------------------------------
# the SVG plot (written by hand: no plotting library)

def ticks(start: float, stop: float, step: float) -> list[float]:
    """start, start + step, ... up to stop (rounded so that 0.1 steps stay 0.1, 0.2, ...)."""
    values, value = [], start
    while value <= stop + 1e-9:
        values.append(value)
        value = round(value + step, 10)
    return values


def nice_step(span: float, count: int = 6) -> float:
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def marker(shape: str, x: float, y: float, colour: str, tooltip: str, attrs: str, cls: str = "point") -> str:
    title = f"<title>{escape(tooltip)}</title>"
    if shape == "square":
        return (f'<rect class="{cls}" {attrs} x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" '
                f'fill="{colour}">{title}</rect>')
    if shape == "diamond":
        pts = f"{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} {x:.1f},{y + 6:.1f} {x - 6:.1f},{y:.1f}"
        return f'<polygon class="{cls}" {attrs} points="{pts}" fill="{colour}">{title}</polygon>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - 6:.1f} {x + 6:.1f},{y + 5:.1f} {x - 6:.1f},{y + 5:.1f}"
        return f'<polygon class="{cls}" {attrs} points="{pts}" fill="{colour}">{title}</polygon>'
    return f'<circle class="{cls}" {attrs} cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}">{title}</circle>'


def render_svg(task: str, points, metric_name: str, subtitle: str) -> str:
    width, height = 820, 520
    left, right, top, bottom = 70, 250, 60, 60
    pw, ph = width - left - right, height - top - bottom
    title = f"{TASKS[task]['dir']} dev: {metric_name} vs FLOPs"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
           f'<text x="{left}" y="42" fill="#555">{escape(subtitle)}</text>']
    if not points:
        out.append(f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" fill="#a00">'
                   f'no points measured yet (see the missing models in TRADEOFF.md)</text></svg>')
        return "\n".join(out) + "\n"
    xs = [p["flops_share"] for p in points]
    ys = [p["metric"] for p in points]
    x0, x1 = min(0.2, math.floor(min(xs) * 10) / 10), 1.05
    ylo, yhi = min(ys), max(ys)
    pad = max(1.0, (yhi - ylo) * 0.08)
    ystep = nice_step(yhi - ylo + 2 * pad)
    y0 = math.floor((ylo - pad) / ystep) * ystep
    y1 = math.ceil((yhi + pad) / ystep) * ystep

    def sx(v):
        return left + (v - x0) / (x1 - x0) * pw

    def sy(v):
        return top + (y1 - v) / (y1 - y0) * ph

    xticks = ticks(math.ceil(x0 * 10) / 10, x1, 0.1)
    yticks = ticks(y0, y1, ystep)
    out.append('<g class="axes" stroke="#ccc">')
    out += [f'<line x1="{sx(xt):.1f}" y1="{top}" x2="{sx(xt):.1f}" y2="{top + ph}"/>' for xt in xticks]
    out += [f'<line x1="{left}" y1="{sy(yt):.1f}" x2="{left + pw}" y2="{sy(yt):.1f}"/>' for yt in yticks]
    out.append("</g>")
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out += [f'<text x="{sx(xt):.1f}" y="{top + ph + 16}" text-anchor="middle">{xt:.1f}</text>' for xt in xticks]
    out += [f'<text x="{left - 6}" y="{sy(yt) + 4:.1f}" text-anchor="end">{yt:g}</text>' for yt in yticks]
    out.append(f'<text x="{left + pw / 2}" y="{height - 18}" text-anchor="middle">'
               f'FLOPs as a share of dense (fcabert eval; real token counts, no padding)</text>')
    out.append(f'<text transform="translate(18 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(metric_name)} (%)</text>')
    dense = [p for p in points if p["series"] == "dense"]
    if dense:
        d = dense[0]["metric"]
        out.append(f'<line class="dense-line" x1="{left}" y1="{sy(d):.1f}" x2="{left + pw}" y2="{sy(d):.1f}" '
                   f'stroke="#222" stroke-dasharray="2 3"/>')
        if d - 1 >= y0:
            out.append(f'<line class="one-point-line" x1="{left}" y1="{sy(d - 1):.1f}" x2="{left + pw}" '
                       f'y2="{sy(d - 1):.1f}" stroke="#888" stroke-dasharray="6 4"/>')
            out.append(f'<text x="{left + 4}" y="{sy(d - 1) + 14:.1f}" fill="#666">dense − 1 point</text>')
        out.append(f'<line x1="{sx(0.5):.1f}" y1="{top}" x2="{sx(0.5):.1f}" y2="{top + ph}" stroke="#888" '
                   f'stroke-dasharray="6 4"/>')
        out.append(f'<text x="{sx(0.5) + 4:.1f}" y="{top + 14}" fill="#666">2x fewer FLOPs</text>')
    series_order = [s for s in SERIES_STYLE if any(p["series"] == s for p in points)]
    for s in series_order:
        colour, shape = SERIES_STYLE[s]
        pts = sorted((p for p in points if p["series"] == s), key=lambda p: p["flops_share"])
        out.append(f'<g class="series" data-series="{escape(s)}">')
        if len(pts) > 1:
            path = " ".join(f"{sx(p['flops_share']):.1f},{sy(p['metric']):.1f}" for p in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for p in pts:
            tip = (f"{s}: {p['label']} — {p['schedule']} — {p['metric']:.2f}% at "
                   f"{p['flops_share']:.3f} of dense FLOPs ({p['reduction']:.2f}x fewer)")
            attrs = (f'data-series="{escape(s)}" data-label="{escape(p["label"])}" '
                     f'data-flops-share="{p["flops_share"]:.6f}" data-metric="{p["metric"]:.4f}"')
            out.append(marker(shape, sx(p["flops_share"]), sy(p["metric"]), colour, tip, attrs))
        out.append("</g>")
    ly = top + 6
    for s in series_order:
        colour, shape = SERIES_STYLE[s]
        out.append(marker(shape, left + pw + 22, ly, colour, s, 'data-legend="1"', "legend"))
        out.append(f'<text x="{left + pw + 34}" y="{ly + 4}">{escape(s)}</text>')
        ly += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# the markdown report

def fmt(v, digits=2):
    return "" if v is None else f"{v:.{digits}f}"


def summary_lines(points, dense) -> list[str]:
    """Per series, the best point with at least 2x fewer FLOPs, and the paper's claim checked."""
    lines = ["At 2x fewer FLOPs or better (FLOPs share <= 0.5), the best point of each series:", ""]
    any_row = False
    for series in SERIES_STYLE:
        cands = [p for p in points if p["series"] == series and p["flops_share"] <= 0.5]
        if not cands:
            continue
        best = max(cands, key=lambda p: (p["metric"], -p["flops_share"]))
        any_row = True
        lines.append(f"- {series}: {best['metric']:.2f} ({best['metric'] - dense['metric']:+.2f} vs dense) at "
                     f"{best['flops_share']:.3f} of the dense FLOPs ({best['label']})")
    if not any_row:
        lines.append("- no point reaches 2x fewer FLOPs")
    fca = [p for p in points if p["series"] in ("learned FCA", "calibrated FCA") and p["flops_share"] <= 0.5]
    within = [p for p in fca if p["metric"] >= dense["metric"] - 1.0]
    lines += ["", "The paper's claim (FCA within 1 point of dense at 2x fewer FLOPs): " +
              (f"**met** by {', '.join(p['label'] for p in within)}." if within else
               "**not met** by any measured FCA point" + (" (no learned model measured yet)."
                                                            if not any(p["series"] == "learned FCA" for p in points)
                                                            else "."))]
    return lines + [""]


def task_markdown(task: str, points, missing, svg_name: str, args) -> list[str]:
    info = TASKS[task]
    lines = [f"## {task.upper()} ({info['dir']} dev)", ""]
    dense = next((p for p in points if p["series"] == "dense"), None)
    if points:
        n = points[0]["examples"]
        lines += [f"Metric: {info['metric']} in %, on {n} dev examples. FLOPs: `fcabert eval`'s headline "
                  "(multiply-add = 2, real token counts, no padding), as a share of the same examples run dense.",
                  "", f"![{task} trade-off]({svg_name})", ""]
        head = ("| series | point | schedule | metric | vs dense | FLOPs share | reduction | MFLOPs/example "
                "| calibration |")
        lines += [head, "|---|---|---|---:|---:|---:|---:|---:|---|"]
        order = list(SERIES_STYLE)
        for p in sorted(points, key=lambda p: (order.index(p["series"]), -p["flops_share"])):
            delta = "" if dense is None or p is dense else f"{p['metric'] - dense['metric']:+.2f}"
            calib = ""
            if p.get("calibration_seconds") is not None:
                calib = (f"{p['calibration_seconds']:.0f} s, {p['calibration_model_runs']} passes, "
                         f"{p['calibration_flops_share']:.3f} on the train slice")
            lines.append(f"| {p['series']} | {p['label']} | `{p['schedule']}` | {p['metric']:.2f} | {delta} | "
                         f"{p['flops_share']:.3f} | {p['reduction']:.3f}x | {p['mflops_per_example']:.1f} | {calib} |")
        lines.append("")
    else:
        lines += ["No point could be measured yet (see below).", ""]
    if points and dense is not None:
        lines += summary_lines(points, dense)
    if missing:
        lines += ["**Missing** (not measured; re-run the command above once they exist):", ""]
        for m in missing:
            lines.append(f"- {m['what']} — {m['consequence']}. Made by: `{m['command']}`"
                         if not m["command"].startswith("the ") else
                         f"- {m['what']} — {m['consequence']}. Made by {m['command']}.")
        lines.append("")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "python tools/tradeoff.py" + ("" if argv is None and len(sys.argv) <= 1 else
                                            " " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                                                     else argv)))
    try:
        runner = Runner(args)
        manifest = read_manifest(Path(args.manifest))
        version = subprocess.run([args.fcabert, "--version"], capture_output=True, text=True).stdout.strip()
        started = time.monotonic()
        md = ["# The accuracy–FLOPs trade-off, measured", "",
              "Generated by one command (every number below comes from `fcabert eval --json` on the GLUE dev "
              "set; calibrated schedules from `fcabert calibrate` on a seeded slice of train.tsv, never dev):", "",
              "```sh", command, "```", "",
              f"Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; {version}; "
              f"{args.threads} threads; calibration: {args.calib_limit} examples of `{args.calib_split}.tsv`, "
              f"seed {args.calib_seed}, at least "
              f"{', '.join(str(args.calib_min_tokens.get(t, TASKS[t]['min_tokens'])) + ' tokens (' + t + ')' for t in args.tasks)}"
              f", targets {', '.join(f'{t:g}' for t in args.targets)}. "
              f"Manifest: `{shown(args.manifest)}`" + ("" if manifest is not None else " (missing)") + ".", "",
              "Series: **dense**: the dense fine-tuned model. **hand schedule**: the untrained schedule "
              f"`{args.hand}` on the dense model (C=2 mean, and C=0). **learned FCA**: models trained with FCA "
              "(tools/train_fca.py) at several λ, with their own schedule; **learned, C=0**: the same model and "
              "schedule with `--clusters 0` (PoWER-BERT-style dropping instead of pooling). **calibrated FCA**: "
              "`fcabert calibrate` (training-free, C=2 weighted) on the dense model; **calibrated, C=0 (same "
              "schedule)**: that schedule with `--clusters 0`; **calibrated for C=0**: a schedule calibrated with "
              "`--clusters 0` for the same FLOPs target (dropping at equal FLOPs). See docs/CALIBRATE.md.", ""]
        all_missing = []
        for task in args.tasks:
            points, missing = collect_task(task, args, runner, manifest)
            all_missing += missing
            svg = Path(args.svg_dir) / f"tradeoff_{task}.svg"
            subtitle = f"{len(points)} points; fcabert eval on GLUE dev; generated {dt.date.today().isoformat()}"
            plot = render_svg(task, points, TASKS[task]["metric"].split(" (")[0], subtitle)
            write_text_atomically(svg, plot, parents=True)
            out_dir = Path(args.out).resolve().parent
            try:
                svg_link = os.path.relpath(svg.resolve(), out_dir)
            except ValueError:
                svg_link = str(svg)
            md += task_markdown(task, points, missing, svg_link, args)
            json_out = Path(args.workdir) / f"tradeoff_{task}.json"
            summary = json.dumps({"task": task, "points": points, "missing": missing}, indent=2)
            write_text_atomically(json_out, summary, parents=True)
            log(f"{task}: {len(points)} points, {len(missing)} missing; wrote {shown(svg)}")
        md += [f"Run: {runner.evals} evaluations and {runner.calibrations} calibrations run, {runner.cached} "
               f"cached, {time.monotonic() - started:.0f} s.", ""]
        write_text_atomically(Path(args.out), "\n".join(md), parents=True)
        log(f"wrote {shown(args.out)}")
        if all_missing:
            log(f"{len(all_missing)} missing item(s), listed in {shown(args.out)}:")
            for m in all_missing:
                log(f"  missing: {m['what']}")
    except ToolError as e:
        print(f"tradeoff.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
