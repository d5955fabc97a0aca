#!/usr/bin/env python3
"""Regenerates the FCA parity references in tests/data/parity/ (tests/python/test_fca_parity.py).

For each schedule in tests/data/parity/fca_schedules.json and each input set (single.txt on
the "single" MiniLM model, pairs.tsv on the "pairs" one; both built exactly as
tools/make_parity_data.py builds them: the pretrained all-MiniLM-L6-v2 with seeded random
heads), runs the PyTorch FCA reference (tools/fca_reference.py: the same load_model /
encode_line / fca_forward calls its CLI makes, so each row is what the CLI writes) and
writes tests/data/parity/fca_<schedule>_<kind>.ref.jsonl:

  {"line": 1, "input_ids": [...], "logits": [...],
   "layers": [{"tokens_in": n, "tokens_out": n2, "kept": [0, 3, "c1.0", ...],
               "margin": g}, ...]}

"margin" is the one addition to the CLI's rows: in a layer that reduces, the reference's
score gap at the cut, s(last fine row kept) - s(best row not kept) over rows 1..n-1 ordered
as docs/FCA.md §5 orders them (null when no row but [CLS] is kept, or the layer passes
through). The parity test uses it to tell a near-tie (a gap the two implementations' float
rounding can flip) from a real disagreement. The scores are taken from the reference as it
computes them (fca_reference.token_scores is wrapped to record its result; nothing else
changes).

  tools/make_fca_parity_data.py [--out tests/data/parity] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tools import fca_reference
from tools.make_parity_data import build_minilm_models

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "data" / "parity"
SCHEDULES = PARITY / "fca_schedules.json"
INPUTS = {"single": "single.txt", "pairs": "pairs.tsv"}


def load_schedules(path: Path = SCHEDULES) -> dict:
    """{name: {"keep_ratios": [...], "clusters": C, "pooling": "weighted"|"mean", ...}}."""
    return json.loads(path.read_text(encoding="utf-8"))["schedules"]


def cut_margin(scores: list[float], k: int):
    """s(last fine row) - s(first coarse row) among rows 1..n-1 in docs/FCA.md §5 order, or
    None when k - 1 is 0 (only [CLS] kept: nothing was chosen)."""
    order = sorted(range(1, len(scores)), key=lambda j: (-scores[j], j))
    if k - 1 < 1 or k - 1 >= len(order):
        return None
    return scores[order[k - 2]] - scores[order[k - 1]]


class ScoreRecorder:
    """Wraps fca_reference.token_scores (called once per reducing layer, in layer order)."""

    def __init__(self):
        self.original = fca_reference.token_scores
        self.calls: list[list[float]] = []

    def __enter__(self):
        def recording(probs):
            scores = self.original(probs)
            self.calls.append(scores.tolist())
            return scores

        fca_reference.token_scores = recording
        return self

    def __exit__(self, *exc):
        fca_reference.token_scores = self.original


def reference_rows(model_path: str, input_path: Path, schedule: dict, pair: bool):
    model, tokenizer, info = fca_reference.load_model(model_path)
    ratios = [float(r) for r in schedule["keep_ratios"]]
    clusters, pooling = int(schedule["clusters"]), schedule["pooling"]
    fca_reference.validate_schedule(ratios, len(model.bert.encoder.layer), clusters, pooling)
    rows = []
    with ScoreRecorder() as recorder:
        for number, line in enumerate(fca_reference.read_lines(str(input_path)), 1):
            enc = fca_reference.encode_line(tokenizer, line, pair, info["max_len"], f"{input_path}:{number}")
            recorder.calls.clear()
            result = fca_reference.fca_forward(model, enc["input_ids"], enc["token_type_ids"], ratios, clusters,
                                               pooling)
            n0 = len(enc["input_ids"])
            calls = iter(recorder.calls)
            for l, layer in enumerate(result["layers"]):
                k = fca_reference.keep_count(ratios[l], n0)
                reduced = fca_reference.layer_reduces(layer["tokens_in"], k, clusters)
                layer["margin"] = cut_margin(next(calls), k) if reduced else None
            if next(calls, None) is not None:
                raise RuntimeError(f"{input_path}:{number}: more scorings than reducing layers")
            rows.append({"line": number, "input_ids": enc["input_ids"], "logits": result["logits"],
                         "layers": result["layers"]})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(PARITY), help="where the inputs are and the references go")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--only", metavar="NAME", help="regenerate one schedule only")
    args = parser.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    schedules = load_schedules()
    if args.only and args.only not in schedules:
        parser.error(f"no schedule {args.only!r} in {SCHEDULES} (have {', '.join(schedules)})")
    with tempfile.TemporaryDirectory() as tmp:
        models = build_minilm_models(Path(tmp))
        for name, schedule in schedules.items():
            if args.only and name != args.only:
                continue
            for kind, inputs in INPUTS.items():
                start = time.monotonic()
                rows = reference_rows(models[kind], out / inputs, schedule, pair=kind == "pairs")
                target = out / f"fca_{name}_{kind}.ref.jsonl"
                target.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
                print(f"{target}: {len(rows)} rows in {time.monotonic() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
