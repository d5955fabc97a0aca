#!/usr/bin/env python3
"""fcabert against ONNX Runtime and PyTorch, side by side, in one invocation (docs/PERF.md).

Every engine runs the same weights (read from the fcabert model file), the same token ids
(tokenized once here with transformers' BertTokenizer built from the file's vocabulary,
which the engine's tokenizer matches exactly) and the same thread count:

  fcabert dense / FCA, each in fp32, bf16 and int8
      `fcabert-bench --serve` processes, one per configuration, each asked for one timed
      pass at a time; fcabert packs each batch without padding
  ONNX Runtime fp32
      torch.onnx export of BertForSequenceClassification, then
      onnxruntime.transformers.optimizer (model_type bert: attention, LayerNorm, GELU and
      bias fusions); each batch padded to its longest sequence, with an attention mask
  PyTorch eager fp32
      transformers BertForSequenceClassification under torch.inference_mode(), same padding

Workloads: each model x each dataset (SST-2 dev sentences, MRPC dev sentence pairs) x
batch 1 (latency: median and p90 ms per batch) and batch 32 (throughput: examples/s).
Each repetition runs one pass of every engine, round-robin (the starting engine rotates),
so drift on a shared machine hits all of them alike; every figure is the median over the
repetitions. FLOPs follow include/fcabert/flops.h (real tokens, no padding; the engine's
own traces), and GFLOP/s is compared with oneDNN's matmul peak measured in the same run
(`fcabert-bench --gemm`). fcabert-bench is the benchmark executable built next to fcabert
(build/fcabert-bench; --fcabert-bench overrides where it is).

  .venv/bin/python tools/bench/run_bench.py --markdown docs/PERF_RESULTS.md --json build/bench/results.json
  .venv/bin/python tools/bench/run_bench.py --quick     # a smoke run (seconds), numbers meaningless
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

DEFAULT_MODEL = REPO / "models" / "sst2-minilm-l6.fcab"
GLUE = REPO.parent / "shared" / "data" / "glue"
# FCA schedules for the benchmark (keep ratios per layer, clusters, pooling). The MiniLM one
# costs 0.6 points of SST-2 dev accuracy with the default model (88.07% vs 88.65%; the model
# was not fine-tuned with FCA) for 1.40x fewer FLOPs; the 12-layer one has the same shape
# stretched over 12 layers (random weights: speed only). --schedule replaces them.
SCHEDULES = {
    6: ("1,1,0.6,0.45,0.35,0.3", 2, "mean"),
    12: ("1,1,1,0.8,0.6,0.5,0.45,0.4,0.35,0.35,0.3,0.3", 2, "mean"),
}
FCABERT_CONFIGS = [  # name, fca, precision
    ("fcabert dense fp32", False, "fp32"),
    ("fcabert FCA fp32", True, "fp32"),
    ("fcabert dense bf16", False, "bf16"),
    ("fcabert FCA bf16", True, "bf16"),
    ("fcabert dense int8", False, "int8"),
    ("fcabert FCA int8", True, "int8"),
]


def log(message: str) -> None:
    print(f"[run_bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# inputs and models

def read_dataset(name: str, limit: int) -> list:
    """Texts (str) or pairs ((str, str)) of a GLUE dev set, in file order."""
    if name == "sst2":
        rows = (GLUE / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
        items = [r.split("\t")[0] for r in rows if r]
    elif name == "mrpc":
        rows = (GLUE / "MRPC" / "dev.tsv").read_text(encoding="utf-8-sig").splitlines()[1:]
        items = [(c[3], c[4]) for c in (r.split("\t") for r in rows if r)]
    elif name == "tiny":  # the smoke test's: a few lines from the parity data
        items = (REPO / "tests" / "data" / "parity" / "sst2_dev.txt").read_text(encoding="utf-8").splitlines()
    else:
        raise SystemExit(f"run_bench.py: error: unknown dataset {name!r} (sst2, mrpc)")
    return items[:limit] if limit > 0 else items


def tokenize(tokenizer, items: list, max_len: int) -> list[dict]:
    out = []
    for item in items:
        if isinstance(item, tuple):
            enc = tokenizer(item[0], item[1], truncation=True, max_length=max_len)
        else:
            enc = tokenizer(item, truncation=True, max_length=max_len)
        out.append({"ids": enc["input_ids"], "type_ids": enc["token_type_ids"]})
    return out


def write_random_bert_base(path: Path, template: Path, layers=12, hidden=768, heads=12, intermediate=3072,
                           seed=0) -> Path:
    """A BERT-base geometry model with random weights (speed only), the template's tokenizer
    and head. Written once; reused when it exists."""
    from tools.fcabert_model import expected_tensors, read_model_file, write_model_file
    if path.exists():
        return path
    metadata, _ = read_model_file(str(template))
    meta = {k: (json.loads(v) if isinstance(v, str) and k in ("config", "tokenizer", "head", "fca") else v)
            for k, v in metadata.items() if k in ("config", "tokenizer", "head", "fca")}
    config = dict(meta["config"], num_layers=layers, hidden_size=hidden, num_heads=heads,
                  intermediate_size=intermediate)
    meta["config"] = config
    meta["fca"] = {"keep_ratios": [], "clusters": 4, "pooling": "weighted"}
    meta["provenance"] = {"source": "tools/bench/run_bench.py: random BERT-base geometry, seed %d" % seed}
    rng = np.random.default_rng(seed)
    tensors = []
    for name, shape in expected_tensors(config, len(meta["head"]["labels"])):
        if name.endswith("LayerNorm.weight"):
            value = np.ones(shape, np.float32)
        elif name.endswith("bias"):
            value = np.zeros(shape, np.float32)
        else:
            value = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        tensors.append((name, value, "F32"))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_model_file(path, meta, tensors)
    return path


def padded_batches(tokens: list[dict], batch_size: int) -> list[dict]:
    """numpy int64 [B, longest] ids / mask / type ids per batch (ORT and PyTorch pad)."""
    out = []
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i:i + batch_size]
        longest = max(len(t["ids"]) for t in chunk)
        ids = np.zeros((len(chunk), longest), np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for r, t in enumerate(chunk):
            n = len(t["ids"])
            ids[r, :n] = t["ids"]
            mask[r, :n] = 1
            types[r, :n] = t["type_ids"]
        out.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    return out


# ---------------------------------------------------------------------------------------------
# engines: each has pass_() -> per-batch ms list, and logits for a sanity check

class FcabertEngine:
    def __init__(self, binary: str, model: Path, token_file: Path, batch_size: int, threads: int, fca: bool,
                 precision: str, schedule: tuple, name: str):
        self.name = name
        args = [binary, "--serve", "--warmup", "1", "-m", str(model), "--tokens",
                str(token_file), "-b", str(batch_size), "-t", str(threads), "--precision", precision]
        if fca:
            ratios, clusters, pooling = schedule
            args += ["--keep-ratios", ratios, "--clusters", str(clusters), "--pooling", pooling]
        else:
            args += ["--dense"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ))
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"run_bench.py: error: {name} failed to start (see its stderr above)")
        self.info = json.loads(line)

    def pass_(self) -> dict:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"run_bench.py: error: {self.name} stopped")
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=60)


class PyEngine:
    """Times each batch of a padded workload; run() is the engine's forward on one batch."""

    def __init__(self, name: str, batches: list[dict], run, sequences: int):
        self.name, self.batches, self.run, self.sequences = name, batches, run, sequences
        for b in batches[:1]:
            run(b)  # warm-up

    def pass_(self) -> dict:
        batch_ms = []
        start = time.perf_counter()
        for b in self.batches:
            t0 = time.perf_counter()
            self.run(b)
            batch_ms.append((time.perf_counter() - t0) * 1000)
        total = (time.perf_counter() - start) * 1000
        return {"pass_ms": total, "batch_ms_median": statistics.median(batch_ms),
                "batch_ms_p90": float(np.percentile(batch_ms, 90)),
                "examples_per_s": 1000 * self.sequences / total}

    def close(self):
        pass


def export_onnx(torch_model, config: dict, out_dir: Path, threads: int):
    """ONNX export + ORT's BERT optimizer; returns an InferenceSession and the fusions made."""
    import onnxruntime as ort
    import torch
    from onnxruntime.transformers import optimizer

    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "model.onnx"
    opt = out_dir / "model.opt.onnx"
    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.inference_mode():
        torch.onnx.export(torch_model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(raw),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in
                                        ("input_ids", "attention_mask", "token_type_ids")} | {"logits": {0: "batch"}},
                          opset_version=14, do_constant_folding=True)
    optimized = optimizer.optimize_model(str(raw), model_type="bert", num_heads=config["num_heads"],
                                         hidden_size=config["hidden_size"], use_gpu=False)
    fusions = optimized.get_fused_operator_statistics()
    optimized.save_model_to_file(str(opt))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(opt), so, providers=["CPUExecutionProvider"])
    return session, {k: v for k, v in fusions.items() if v}


# ---------------------------------------------------------------------------------------------
# the run

def bench_binary(fcabert: str, explicit: str | None) -> str:
    """The fcabert-bench executable: `explicit` (--fcabert-bench), or the one CMake builds and
    installs next to the fcabert binary."""
    path = Path(explicit) if explicit else Path(fcabert).with_name("fcabert-bench")
    if not path.is_file():
        where = "(--fcabert-bench)" if explicit else (f"next to {fcabert} (cmake --build builds both; "
                                                       f"or pass --fcabert-bench)")
        raise SystemExit(f"run_bench.py: error: no fcabert-bench binary at {path} {where}")
    return str(path)


def gemm_peak(binary: str, threads: int, quick: bool) -> dict:
    args = [binary, "--gemm", "-t", str(threads)] + (["--quick"] if quick else [])
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def summarize(name: str, passes: list[dict]) -> dict:
    med = lambda key: statistics.median(p[key] for p in passes)  # noqa: E731
    return {"engine": name, "runs": len(passes), "pass_ms": med("pass_ms"), "latency_ms_median": med("batch_ms_median"),
            "latency_ms_p90": med("batch_ms_p90"), "examples_per_s": med("examples_per_s"),
            "pass_ms_all": [p["pass_ms"] for p in passes],
            # fcabert only: the median GFLOP/s of its encoder's GEMMs (timed around each call)
            **({"linear_gflops": med("encoder_linear_gflops")} if all("encoder_linear_gflops" in p for p in passes)
               else {})}


def run_workload(args, model_path: Path, model_label: str, torch_model, tokenizer, config: dict, ort_session,
                 dataset: str, batch_size: int, work_dir: Path) -> dict:
    limit = args.latency_limit if batch_size == 1 else args.throughput_limit
    items = read_dataset(dataset, limit)
    tokens = tokenize(tokenizer, items, args.max_len)
    token_file = work_dir / f"{model_path.stem}-{dataset}-b{batch_size}.tokens.jsonl"
    token_file.write_text("".join(json.dumps(t) + "\n" for t in tokens), encoding="utf-8")
    batches = padded_batches(tokens, batch_size)
    real_tokens = sum(len(t["ids"]) for t in tokens)
    padded_tokens = sum(int(b["input_ids"].size) for b in batches)
    n = config["num_layers"]
    if args.schedule:
        ratios, clusters, pooling = args.schedule.split(":")
        schedule = (ratios, int(clusters), pooling)
    else:
        schedule = SCHEDULES.get(n, (",".join(["0.5"] * n), 2, "mean"))
    log(f"{model_label} {dataset} batch {batch_size}: {len(tokens)} sequences, {real_tokens} tokens "
        f"({padded_tokens} padded)")

    engines = []
    try:
        for name, fca, precision in FCABERT_CONFIGS:
            if precision not in args.precisions:
                continue
            engines.append(FcabertEngine(args.fcabert_bench, model_path, token_file, batch_size, args.threads, fca,
                                         precision, schedule, name))
        if "ort" in args.peers and ort_session is not None:
            engines.append(PyEngine("ONNX Runtime fp32", batches, lambda b: ort_session.run(None, b), len(tokens)))
        if "torch" in args.peers:
            import torch

            def torch_run(b):
                with torch.inference_mode():
                    return torch_model(input_ids=torch.from_numpy(b["input_ids"]),
                                       attention_mask=torch.from_numpy(b["attention_mask"]),
                                       token_type_ids=torch.from_numpy(b["token_type_ids"])).logits
            engines.append(PyEngine("PyTorch eager fp32", batches, torch_run, len(tokens)))

        passes = {e.name: [] for e in engines}
        for rep in range(args.repeat):
            order = engines[rep % len(engines):] + engines[:rep % len(engines)]
            for e in order:
                passes[e.name].append(e.pass_())
        results = [summarize(e.name, passes[e.name]) for e in engines]
        for e, r in zip(engines, results):
            if isinstance(e, FcabertEngine):
                info = e.info
                r.update({"flops_per_pass": info["flops_per_pass"], "linear_flops_per_pass": info["linear_flops_per_pass"],
                          "load_ms": info["load_ms"], "forward_allocations": info["forward_allocations"],
                          "forward_allocations_outside_onednn": info["forward_allocations_outside_onednn"],
                          "batches": info["batches"],
                          "run_allocations_per_batch": info["run_allocations_per_batch"],
                          "peak_rss_bytes": max(p["peak_rss_bytes"] for p in passes[e.name]),
                          "weights_file_bytes": info["weights_file_bytes"]})
                r["gflops"] = info["flops_per_pass"] / (r["pass_ms"] * 1e6)
                r["linear_share_of_time"] = (info["encoder_linear_flops_per_pass"] / (r["linear_gflops"] * 1e6)
                                             / r["pass_ms"])
        dense_flops = next((r["flops_per_pass"] for r in results if r["engine"] == "fcabert dense fp32"), None)
        if dense_flops:
            for r in results:  # peers do the dense model's work (plus padding, not counted)
                r.setdefault("gflops", dense_flops / (r["pass_ms"] * 1e6))
        return {"model": model_label, "dataset": dataset, "batch_size": batch_size, "sequences": len(tokens),
                "tokens": real_tokens, "padded_tokens": padded_tokens, "schedule": list(schedule), "engines": results}
    finally:
        for e in engines:
            e.close()


def ratio(results: list[dict], a: str, b: str, key: str, higher_is_better: bool):
    ra = next((r for r in results if r["engine"] == a), None)
    rb = next((r for r in results if r["engine"] == b), None)
    if not ra or not rb:
        return None
    return ra[key] / rb[key] if higher_is_better else rb[key] / ra[key]


def markdown(report: dict) -> str:
    peak = report["gemm"]["peak_gflops"]
    lines = [f"# fcabert benchmark results",
             "",
             f"- date (UTC): {report['date']}; load average at start / end: {report['load_start']} / {report['load_end']}",
             f"- machine: {report['machine']}",
             f"- versions: {report['versions']}",
             f"- threads: {report['threads']}; repetitions per figure: {report['repeat']} (median, round-robin)",
             f"- command: `{report['command']}`",
             "- oneDNN matmul peak measured in this run: "
             + ", ".join(f"{name} {value:.0f} GFLOP/s" for name, value in peak.items()),
             ""]
    lines += ["## Throughput and latency", "",
              "| model | data | batch | engine | ex/s | median ms/batch | p90 ms/batch | GFLOP/s | % fp32 peak | "
              "linear GFLOP/s | x ORT | x PyTorch |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in report["workloads"]:
        res = w["engines"]
        for r in res:
            better = w["batch_size"] != 1
            key = "examples_per_s" if better else "latency_ms_median"
            x_ort = ratio(res, r["engine"], "ONNX Runtime fp32", key, better)
            x_pt = ratio(res, r["engine"], "PyTorch eager fp32", key, better)
            fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
            fmt0 = lambda v: "" if v is None else f"{v:.0f}"  # noqa: E731
            lines.append(f"| {w['model']} | {w['dataset']} | {w['batch_size']} | {r['engine']} | "
                         f"{r['examples_per_s']:.1f} | {r['latency_ms_median']:.2f} | {r['latency_ms_p90']:.2f} | "
                         f"{r.get('gflops', 0):.0f} | {100 * r.get('gflops', 0) / peak['fp32']:.0f} | "
                         f"{fmt0(r.get('linear_gflops'))} | {fmt(x_ort)} | {fmt(x_pt)} |")
    lines += ["", "Ratios are ours/peer from the same run: throughput ratio at batch 32, latency ratio "
              "(peer ms / our ms) at batch 1; > 1 means fcabert is faster. GFLOP/s = the dense model's FLOPs "
              "(include/fcabert/flops.h, real tokens) per second for the peers and dense runs, the FCA run's own "
              "FLOPs for FCA runs. linear GFLOP/s (fcabert only) = the encoder GEMMs' FLOPs per second of the time "
              "spent in those GEMM calls (with int8: input quantization included).", ""]
    lines += ["## Targets", "", "| target | workload | measured | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['workload']} | {t['measured']} | {'yes' if t['met'] else 'no'} |")
    lines += ["", "## Engine facts", "",
              "| model | precision | load ms | weights file MB | peak RSS at batch 32 MB | heap allocations in the "
              "steady-state forwards (all batches) | of them outside oneDNN calls | allocations per Session::run |",
              "|---|---|---|---|---|---|---|---|"]
    for f in report["facts"]:
        lines.append(f"| {f['model']} | {f['precision']} | {f['load_ms']:.0f} | {f['weights_mb']:.1f} | "
                     f"{f['peak_rss_mb']:.1f} | {f['forward_allocations']} ({f['batches']} batches) | "
                     f"{f['forward_allocations_outside_onednn']} | {f['run_allocations_per_batch']:.1f} |")
    lines += ["", "## oneDNN matmul (GFLOP/s)", "", "| precision | M | K | N | primitive | implementation | GFLOP/s |",
              "|---|---|---|---|---|---|---|"]
    for g in report["gemm"]["gemm"]:
        lines.append(f"| {g['precision']} | {g['m']} | {g['k']} | {g['n']} | "
                     f"{'runtime M (engine Linear)' if g['runtime_rows'] else 'fixed shape'} | {g['implementation']} | "
                     f"{g['gflops']:.0f} |")
    return "\n".join(lines) + "\n"


def evaluate_targets(report: dict) -> list[dict]:
    out = []
    peak = report["gemm"]["peak_gflops"]["fp32"]

    def add(target, w, measured, met):
        out.append({"target": target, "workload": f"{w['model']} {w['dataset']} b{w['batch_size']}",
                    "measured": measured, "met": bool(met)})

    for w in report["workloads"]:
        res = w["engines"]
        get = lambda n: next((r for r in res if r["engine"] == n), None)  # noqa: E731
        dense, fca, ort_, pt = get("fcabert dense fp32"), get("fcabert FCA fp32"), get("ONNX Runtime fp32"), \
            get("PyTorch eager fp32")
        fca16, dense16 = get("fcabert FCA bf16"), get("fcabert dense bf16")
        fca8, dense8 = get("fcabert FCA int8"), get("fcabert dense int8")
        if w["batch_size"] == 1:
            if dense and ort_:
                add("dense fp32 latency <= ORT", w, f"{dense['latency_ms_median']:.2f} vs {ort_['latency_ms_median']:.2f} ms",
                    dense["latency_ms_median"] <= ort_["latency_ms_median"])
            continue
        if dense and ort_:
            r = dense["examples_per_s"] / ort_["examples_per_s"]
            add("dense fp32 >= 1.2x ORT throughput", w, f"{r:.2f}x", r >= 1.2)
        if dense and pt:
            r = dense["examples_per_s"] / pt["examples_per_s"]
            add("dense fp32 >= 2x PyTorch throughput", w, f"{r:.2f}x", r >= 2)
        if dense and fca:
            speed = fca["examples_per_s"] / dense["examples_per_s"]
            flops = dense["flops_per_pass"] / fca["flops_per_pass"]
            add("FCA speed-up >= 85% of FLOPs ratio", w, f"{speed:.2f}x time / {flops:.2f}x FLOPs = {speed / flops:.0%}",
                speed >= 0.85 * flops)
        if dense and dense16:
            r = dense16["examples_per_s"] / dense["examples_per_s"]
            add("bf16 >= 1.6x fp32 (dense)", w, f"{r:.2f}x", r >= 1.6)
        if dense and dense8:
            r = dense8["examples_per_s"] / dense["examples_per_s"]
            add("int8 vs fp32 (dense; 'if it pays')", w, f"{r:.2f}x", r > 1.0)
        fastest = max((e for e in (fca, fca16, fca8) if e), key=lambda e: e["examples_per_s"], default=None)
        if fastest and ort_:
            r = fastest["examples_per_s"] / ort_["examples_per_s"]
            add("FCA + fastest precision >= 3.5x ORT fp32", w, f"{r:.2f}x ({fastest['engine']})", r >= 3.5)
        if dense:
            frac = dense["linear_gflops"] / peak
            add("linear layers (encoder GEMMs, dense fp32) >= 70% of oneDNN fp32 peak", w,
                f"{dense['linear_gflops']:.0f} / {peak:.0f} = {frac:.0%} (whole model {dense['gflops']:.0f}; "
                f"GEMMs {dense['linear_share_of_time']:.0%} of the time)", frac >= 0.7)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fcabert", default=str(REPO / "build" / "fcabert"), help="the fcabert binary")
    parser.add_argument("--fcabert-bench", help="the fcabert-bench binary that runs the fcabert engines "
                        "(default: fcabert-bench next to --fcabert)")
    parser.add_argument("--model", action="append", default=None,
                        help="model file (repeatable); default: the MiniLM default model and a random BERT-base")
    parser.add_argument("--no-bert-base", action="store_true", help="do not add the random BERT-base model")
    parser.add_argument("--datasets", default="sst2,mrpc", help="comma list of sst2, mrpc")
    parser.add_argument("--batch-sizes", default="1,32", help="comma list")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5, help="passes per engine and workload (median)")
    parser.add_argument("--throughput-limit", type=int, default=256, help="sequences per pass at batch > 1")
    parser.add_argument("--latency-limit", type=int, default=64, help="sequences per pass at batch 1")
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--schedule", help="FCA schedule for every model, RATIOS:C:POOLING "
                        "(e.g. 0.65,0.45,0.35,0.3,0.25,0.2:2:mean); default: one per layer count, see SCHEDULES")
    parser.add_argument("--precisions", default="fp32,bf16,int8", help="fcabert precisions to run")
    parser.add_argument("--peers", default="ort,torch", help="comma list of ort, torch (empty: none)")
    parser.add_argument("--work-dir", default=str(REPO / "build" / "bench"), help="ONNX files, token files, models")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 repetitions, 8-16 sequences, short GEMM timing, no BERT-base")
    parser.add_argument("--markdown", help="write the results table here (e.g. docs/PERF_RESULTS.md)")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = min(args.repeat, 2)
        args.throughput_limit = min(args.throughput_limit, 16)
        args.latency_limit = min(args.latency_limit, 4)
        args.no_bert_base = True
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.peers = [p for p in args.peers.split(",") if p]
    if not Path(args.fcabert).is_file():
        raise SystemExit(f"run_bench.py: error: no fcabert binary at {args.fcabert} (build it, or pass --fcabert)")
    args.fcabert_bench = bench_binary(args.fcabert, args.fcabert_bench)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    import torch
    from tools.reference_logits import load_reference
    torch.set_num_threads(args.threads)

    load_start = os.getloadavg()[0]
    gemm = gemm_peak(args.fcabert_bench, args.threads, args.quick)
    log("oneDNN matmul peak: " + ", ".join(f"{k} {v:.0f}" for k, v in gemm["peak_gflops"].items()) + " GFLOP/s")
    models = [Path(m) for m in (args.model or [str(DEFAULT_MODEL)])]
    if not args.no_bert_base and args.model is None:
        models.append(write_random_bert_base(work / "bert-base-random.fcab", DEFAULT_MODEL))

    workloads = []
    facts = []
    ort_fusions = {}
    for model_path in models:
        torch_model, tokenizer, meta = load_reference(str(model_path))
        config = meta["config"]
        label = f"{model_path.stem} (L{config['num_layers']} d{config['hidden_size']})"
        ort_session = None
        if "ort" in args.peers:
            ort_session, fusions = export_onnx(torch_model, config, work / f"onnx-{model_path.stem}", args.threads)
            log(f"{label}: ONNX Runtime fusions {fusions}")
            ort_fusions[label] = fusions
        for dataset in args.datasets.split(","):
            for batch_size in (int(b) for b in args.batch_sizes.split(",")):
                w = run_workload(args, model_path, label, torch_model, tokenizer, config, ort_session, dataset,
                                 batch_size, work)
                workloads.append(w)
                for r in w["engines"]:
                    if r["engine"].startswith("fcabert dense") and batch_size != 1 and dataset == "sst2":
                        facts.append({"model": label, "precision": r["engine"].split()[-1], "load_ms": r["load_ms"],
                                      "weights_mb": r["weights_file_bytes"] / 2**20,
                                      "peak_rss_mb": r["peak_rss_bytes"] / 2**20,
                                      "forward_allocations": r["forward_allocations"],
                                      "forward_allocations_outside_onednn": r["forward_allocations_outside_onednn"],
                                      "batches": r["batches"],
                                      "run_allocations_per_batch": r["run_allocations_per_batch"]})
                for r in w["engines"]:
                    log(f"  {r['engine']:22s} {r['examples_per_s']:9.1f} ex/s  median {r['latency_ms_median']:8.2f} ms  "
                        f"p90 {r['latency_ms_p90']:8.2f} ms")

    import onnxruntime
    import transformers
    uname = os.uname()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    fcabert_version = subprocess.run([args.fcabert, "--version"], capture_output=True, text=True).stdout.strip()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_start": f"{load_start:.2f}", "load_end": f"{os.getloadavg()[0]:.2f}",
        "machine": f"{cpu}, {os.cpu_count()} CPUs, {uname.sysname} {uname.release}",
        "versions": f"{fcabert_version} ({gemm['dnnl']}), onnxruntime {onnxruntime.__version__}, "
                    f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}",
        "threads": args.threads, "repeat": args.repeat,
        "command": " ".join([".venv/bin/python", "tools/bench/run_bench.py"] + (argv if argv is not None else sys.argv[1:])),
        "gemm": gemm, "workloads": workloads, "facts": facts, "ort_fusions": ort_fusions,
    }
    report["targets"] = evaluate_targets(report)
    text = markdown(report)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
        log(f"wrote {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
        log(f"wrote {args.json}")
    if not args.markdown:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
