#!/usr/bin/env python3
"""fcabert against the engines users pick, each in its best configuration, side by side in one
invocation (docs/PERF.md). Same weights (read from the fcabert model file), same token ids
(tokenized once, with transformers' BertTokenizer built from the file's vocabulary, which the
engine's tokenizer matches exactly), same thread count:

  fcabert     dense (the model run --dense), FCA (a benchmark schedule on the same model) and
              the committed FCA model file with the schedule stored in it, each in fp32, bf16
              and int8: `fcabert-bench --serve` processes, ragged batches, no padding
  peers       ONNX Runtime fp32 (BERT-fused graph) and int8 (quantize_dynamic, per channel);
              OpenVINO at its default precision and with an f32 hint; CTranslate2 int8 and
              float32; PyTorch eager fp32 (tools/bench/peer_runtime.py). Each in its own
              `python -m tools.bench.peer_worker` process, on length-sorted batches padded to
              their own longest row (outputs restored to file order), and on file-order
              batches as a second row "(file order)" to show what padding costs

Workloads: each model x each dataset (SST-2 dev sentences, MRPC dev pairs, long inputs of
128-512 tokens made of consecutive SST-2 dev sentences) x each batch size (1: latency, median
and p90 ms per batch; 32: throughput, examples/s). Each repetition runs one pass of every
engine, round-robin with a rotating start; every figure is the median. Every peer's logits
are checked against PyTorch fp32 (fp32 peers within --fp32-tolerance, int8/bf16 peers by
argmax agreement) before and after the timed passes: a broken peer stops the run.

The whole job (tools/bench/whole_job.py): classify a file of real sentences (SST-2 dev by
default) as one process per engine, load and tokenization included, sentences/s of wall time.

  .venv/bin/python tools/bench/run_bench.py --markdown docs/PERF_RESULTS.md --json build/bench/results.json
  .venv/bin/python tools/bench/run_bench.py --quick     # a smoke run (about a minute), numbers meaningless

Every engine process inherits this environment: on a machine busy with other jobs, set
OMP_WAIT_POLICY=passive, or OpenMP threads that spin while they wait can stall each other
(CTranslate2 fp32 took 350 ms instead of 0.5 ms per tiny batch that way).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tools.bench import engines as eng
from tools.bench import peer_models, report as rep, whole_job
from tools.bench.models import DEFAULT_MODEL, fca_model_for, write_random_bert_base
from tools.bench.peer_runtime import PEER_GROUPS, PEERS, expand_peers
from tools.bench.workloads import REPO, fail, fingerprint, long_texts, plan_batches, read_dataset, restore_order, \
    tokenize, write_token_file

# FCA schedules run on the dense model (keep ratios per layer, clusters, pooling). The MiniLM
# one costs 0.6 points of SST-2 dev accuracy with the default model (88.07% vs 88.65%; that
# model was not fine-tuned with FCA) for 1.40x fewer FLOPs; the 12-layer one has the same
# shape stretched over 12 layers (random weights: speed only). --schedule replaces them.
SCHEDULES = {
    6: ("1,1,0.6,0.45,0.35,0.3", 2, "mean"),
    12: ("1,1,1,0.8,0.6,0.5,0.45,0.4,0.35,0.35,0.3,0.3", 2, "mean"),
}
PRECISIONS = ("fp32", "bf16", "int8")


def log(message: str) -> None:
    print(f"[run_bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# fcabert binaries

def bench_binary(fcabert: str, explicit: str | None) -> str:
    """The fcabert-bench executable: `explicit` (--fcabert-bench), or the one CMake builds and
    installs next to the fcabert binary."""
    path = Path(explicit) if explicit else Path(fcabert).with_name("fcabert-bench")
    if not path.is_file():
        where = "(--fcabert-bench)" if explicit else (f"next to {fcabert} (cmake --build builds both; "
                                                       f"or pass --fcabert-bench)")
        fail(f"no fcabert-bench binary at {path} {where}")
    return str(path)


def gemm_peak(binary: str, threads: int, quick: bool) -> dict:
    """oneDNN matmul GFLOP/s per precision (fcabert-bench --gemm): the peaks of this run."""
    args = [binary, "--gemm", "-t", str(threads)] + (["--quick"] if quick else [])
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------
# one workload

def schedule_for(args, layers: int) -> tuple:
    if args.schedule:
        ratios, clusters, pooling = args.schedule.split(":")
        return ratios, int(clusters), pooling
    return SCHEDULES.get(layers, (",".join(["0.5"] * layers), 2, "mean"))


def fcabert_configs(args, model: Path, fca_model: Path | None, schedule: tuple) -> list[tuple]:
    """(name, model file, schedule flags, precision, runs FCA) per fcabert engine."""
    ratios, clusters, pooling = schedule
    configs = []
    for p in args.precisions:
        configs.append((f"fcabert dense {p}", model, ["--dense"], p, False))
        if "schedule" in args.fca:
            configs.append((f"fcabert FCA {p}", model, ["--keep-ratios", ratios, "--clusters", str(clusters),
                                                        "--pooling", pooling], p, True))
        if fca_model and "model" in args.fca:
            configs.append((f"fcabert FCA model {p}", fca_model, [], p, True))  # its stored schedule
    return configs


def workload_tokens(args, ctx: dict, dataset: str, batch_size: int) -> list[dict]:
    limit = args.latency_limit if batch_size == 1 else args.throughput_limit
    tokenizer = ctx["tokenizer"]
    if dataset == "long":
        count = min(limit, args.long_limit) if limit > 0 else args.long_limit
        positions = ctx["config"]["max_position_embeddings"]
        if args.long_max_len > positions:
            fail(f"--long-max-len {args.long_max_len} is longer than {ctx['path']}'s {positions} positions")
        return tokenize(tokenizer, long_texts(tokenizer, count, args.long_max_len), args.long_max_len)
    return tokenize(tokenizer, read_dataset(dataset, limit), args.max_len)


def reference_logits(torch_model, tokens: list[dict]) -> np.ndarray:
    """PyTorch fp32 logits in file order: what every peer's logits are checked against."""
    import torch
    batches = plan_batches(tokens, 32, "sorted")
    with torch.inference_mode():
        outputs = [torch_model(**{k: torch.from_numpy(v) for k, v in b.feed().items()}).logits.numpy()
                   for b in batches]
    return restore_order(batches, outputs, len(tokens))


def run_workload(args, ctx: dict, dataset: str, batch_size: int, work: Path) -> dict:
    tokens = workload_tokens(args, ctx, dataset, batch_size)
    token_file = write_token_file(work / f"{ctx['path'].stem}-{dataset}-b{batch_size}.tokens.jsonl", tokens)
    real_tokens = sum(len(t["ids"]) for t in tokens)
    log(f"{ctx['label']} {dataset} batch {batch_size}: {len(tokens)} sequences, {real_tokens} tokens, "
        f"longest {max(len(t['ids']) for t in tokens)}")
    reference = reference_logits(ctx["torch_model"], tokens)
    schedule = schedule_for(args, ctx["config"]["num_layers"])
    configs = fcabert_configs(args, ctx["path"], ctx["fca_model"], schedule)
    engines: list[eng.Engine] = []
    try:
        eng.fcabert_engines(args, configs, token_file, batch_size, engines)
        eng.check_schedules(engines, configs)
        eng.peer_engines(args, ctx["artefacts"], token_file, batch_size, engines)
        eng.check_fingerprints(engines, fingerprint(tokens))
        eng.check_peers(engines, reference, args, work, "after the warm-up")
        eng.round_robin(engines, args.repeat)
        checks = eng.check_peers(engines, reference, args, work, "after the timed passes")
        rows = [eng.summarize(e, len(tokens)) for e in engines]
    finally:
        eng.close_all(engines)
    dense_flops = next((r["flops_per_pass"] for r in rows if r["engine"].startswith("fcabert dense")), None)
    for r in rows:  # peers do the dense model's work (plus padding, not counted)
        if dense_flops and "gflops" not in r:
            r["gflops"] = dense_flops / (r["pass_ms"] * 1e6)
    for r in rows:
        log(f"  {r['engine']:36s} {r['examples_per_s']:9.1f} ex/s  median {r['latency_ms_median']:8.2f} ms  "
            f"p90 {r['latency_ms_p90']:8.2f} ms")
    return {"model": ctx["label"], "dataset": dataset, "batch_size": batch_size, "sequences": len(tokens),
            "tokens": real_tokens, "fingerprint": fingerprint(tokens), "schedule": list(schedule),
            "engines": rows, "checks": checks}


def engine_facts(label: str, w: dict) -> list[dict]:
    """Load time, memory and allocation counts of the dense fcabert engines of a workload."""
    keys = ("engine", "load_ms", "forward_allocations", "forward_allocations_outside_onednn", "batches",
            "run_allocations_per_batch")
    return [{"model": label, **{k: r[k] for k in keys}, "weights_mb": r["weights_file_bytes"] / 2**20,
             "peak_rss_mb": r["peak_rss_bytes"] / 2**20}
            for r in w["engines"] if r["kind"] == "fcabert" and r["engine"].startswith("fcabert dense ")]


# ---------------------------------------------------------------------------------------------
# models

def load_model(args, path: Path, work: Path) -> dict:
    """The reference model, the tokenizer, and the peers' artefacts for one model file."""
    from tools.reference_logits import load_reference
    torch_model, tokenizer, meta = load_reference(str(path))
    config = meta["config"]
    label = f"{path.stem} (L{config['num_layers']} d{config['hidden_size']})"
    artefacts = work / f"peers-{path.stem}"
    start = time.perf_counter()
    facts = peer_models.prepare(torch_model, meta, artefacts, args.peers)
    log(f"{label}: peer model files in {artefacts} ({time.perf_counter() - start:.1f} s); "
        f"ONNX Runtime fusions {facts.get('ort_fusions')}")
    fca_model = fca_model_for(path, args.fca_model) if "model" in args.fca else None
    return {"path": path, "label": label, "torch_model": torch_model, "tokenizer": tokenizer, "meta": meta,
            "config": config, "artefacts": artefacts, "fca_model": fca_model, "facts": facts}


def models_to_run(args, work: Path) -> list[Path]:
    models = [Path(m) for m in (args.model or [str(DEFAULT_MODEL)])]
    if not args.no_bert_base and args.model is None:
        models.append(write_random_bert_base(work / "bert-base-random.fcab", DEFAULT_MODEL))
    return models


def run_whole_job(args, ctx: dict, work: Path) -> dict | None:
    if ctx["meta"]["head"]["pair_input"] or ctx["meta"]["head"]["kind"] != "classification":
        log(f"whole job skipped: {ctx['path']} is not a single-text classifier")
        return None
    log(f"whole job: {ctx['path'].name}" + (f" and {ctx['fca_model'].name}" if ctx["fca_model"] else ""))
    whole = whole_job.run(args, work, ctx["path"], ctx["fca_model"], ctx["artefacts"], ctx["meta"]["head"]["labels"],
                          args.whole_job_repeat, args.whole_job_limit)
    for r in whole["engines"]:
        log(f"  {r['engine']:36s} {r['sentences_per_s']:9.1f} sentences/s  {r['wall_s']:7.2f} s  "
            f"agreement {r['agreement']:.1%}" + (f"  accuracy {r['accuracy']:.2%}" if "accuracy" in r else ""))
    whole_job.check_agreement(whole, args.min_agreement)
    return whole


# ---------------------------------------------------------------------------------------------
# command line

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fcabert", default=str(REPO / "build" / "fcabert"),
                   help="the fcabert binary (its classify command runs the whole job; default: %(default)s)")
    p.add_argument("--fcabert-bench", help="the fcabert-bench binary that runs the timed fcabert engines "
                   "(default: fcabert-bench next to --fcabert)")
    p.add_argument("--model", action="append", default=None, help="fcabert model file (repeatable); default: "
                   "models/sst2-minilm-l6.fcab and a random BERT-base (L12 d768) written to --work-dir")
    p.add_argument("--no-bert-base", action="store_true", help="do not add the random BERT-base model")
    p.add_argument("--fca-model", help="an FCA model file run as 'fcabert FCA model P' with the schedule stored "
                   "in it, next to every --model of its geometry (default: models/sst2-minilm-l6-fca.fcab with "
                   "the default model; 'none': not run)")
    p.add_argument("--fca", default="schedule,model", help="comma list of the FCA engines: 'schedule' (--schedule "
                   "on the dense model) and 'model' (--fca-model); empty: dense only (default: %(default)s)")
    p.add_argument("--schedule", help="FCA schedule run on every model, RATIOS:C:POOLING (e.g. "
                   "0.65,0.45,0.35,0.3,0.25,0.2:2:mean); default: one per layer count, see SCHEDULES")
    p.add_argument("--datasets", default="sst2,mrpc,long", help="comma list of sst2 (SST-2 dev sentences), mrpc "
                   "(MRPC dev pairs), long (128 to --long-max-len tokens, joined SST-2 dev sentences), tiny "
                   "(tests/data/parity lines) (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1,32", help="comma list; 1 is the latency workload (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="threads of every engine (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="timed passes per engine and workload, median "
                   "(default: %(default)s)")
    p.add_argument("--throughput-limit", type=int, default=256, help="sequences per pass at batch > 1 (0: all; "
                   "default: %(default)s)")
    p.add_argument("--latency-limit", type=int, default=64, help="sequences per pass at batch 1 (default: %(default)s)")
    p.add_argument("--long-limit", type=int, default=64, help="at most this many sequences per pass in the long "
                   "workload (default: %(default)s)")
    p.add_argument("--max-len", type=int, default=128, help="truncation of sst2 and mrpc (default: %(default)s)")
    p.add_argument("--long-max-len", type=int, default=512, help="the long inputs' longest length and truncation; "
                   "at most the model's positions (default: %(default)s)")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="fcabert precisions to run "
                   "(default: %(default)s)")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma list of {', '.join(PEERS)}, or the groups "
                   f"{', '.join(PEER_GROUPS)}; empty: none (default: all)")
    p.add_argument("--no-file-order", action="store_true", help="peers: skip the file-order rows (length-sorted only)")
    p.add_argument("--ct2-isa", help="set CT2_FORCE_CPU_ISA for the CTranslate2 processes: GENERIC, AVX, AVX2 or "
                   "AVX512 (default: CTranslate2's own choice, which is AVX2 on AMD CPUs even with AVX-512; "
                   "CT2_VERBOSE=1 logs it). An earlier run on an AMD EPYC (Zen 5) found AVX512 its fastest")
    p.add_argument("--fp32-tolerance", type=float, default=1e-3, help="fp32 peers: largest |logit - PyTorch fp32 "
                   "logit| accepted (default: %(default)s)")
    p.add_argument("--min-agreement", type=float, default=0.9, help="int8 / bf16 peers: smallest share of sequences "
                   "with the reference's argmax; whole job: of lines with fcabert fp32's label (default: %(default)s)")
    p.add_argument("--no-whole-job", action="store_true", help="skip the whole-job workload")
    p.add_argument("--whole-job-file", help="whole job: a text file, one sentence per line (default: the SST-2 dev "
                   "sentences, with accuracy against their labels)")
    p.add_argument("--whole-job-limit", type=int, default=0, help="whole job: only the first N lines (0: all)")
    p.add_argument("--whole-job-repeat", type=int, default=3, help="whole job: runs per engine, median "
                   "(default: %(default)s)")
    p.add_argument("--whole-job-batch", type=int, default=32, help="whole job: batch size of every engine "
                   "(default: %(default)s)")
    p.add_argument("--work-dir", default=str(REPO / "build" / "bench"), help="token files, peer model files, "
                   "models (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 repetitions, 16 sequences at batch > 1, 4 at "
                   "batch 1 and in the long workload, 64 whole-job lines run once, short GEMM timing, no BERT-base")
    p.add_argument("--markdown", help="write the report here (e.g. docs/PERF_RESULTS.md); default: stdout")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat = min(args.repeat, 2)
        args.throughput_limit = min(args.throughput_limit or 16, 16)
        args.latency_limit = min(args.latency_limit or 4, 4)
        args.long_limit = min(args.long_limit, 4)
        args.whole_job_limit = min(args.whole_job_limit or 64, 64)
        args.whole_job_repeat = 1
        args.no_bert_base = True
    args.precisions = [x for x in args.precisions.split(",") if x]
    if bad := [x for x in args.precisions if x not in PRECISIONS]:
        p.error(f"--precisions: unknown {', '.join(bad)} (of {', '.join(PRECISIONS)})")
    args.peers = expand_peers(args.peers)
    args.fca = [x for x in args.fca.split(",") if x]
    if bad := [x for x in args.fca if x not in ("schedule", "model")]:
        p.error(f"--fca: unknown {', '.join(bad)} (schedule, model)")
    if args.repeat < 1 or args.whole_job_repeat < 1 or args.threads < 1:
        p.error("--repeat, --whole-job-repeat and --threads must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not Path(args.fcabert).is_file():
        fail(f"no fcabert binary at {args.fcabert} (build it, or pass --fcabert)")
    args.fcabert_bench = bench_binary(args.fcabert, args.fcabert_bench)
    if args.whole_job_file and not Path(args.whole_job_file).is_file():
        fail(f"--whole-job-file {args.whole_job_file} does not exist")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    import torch
    torch.set_num_threads(args.threads)  # the reference logits, computed here (untimed)
    load_start = os.getloadavg()[0]
    gemm = gemm_peak(args.fcabert_bench, args.threads, args.quick)
    log("oneDNN matmul peak: " + ", ".join(f"{k} {v:.0f}" for k, v in gemm["peak_gflops"].items()) + " GFLOP/s")

    workloads, facts, peer_facts, whole = [], [], {}, None
    for index, path in enumerate(models_to_run(args, work)):
        ctx = load_model(args, path, work)
        peer_facts[ctx["label"]] = ctx["facts"]
        for dataset in (d for d in args.datasets.split(",") if d):
            for batch_size in (int(b) for b in args.batch_sizes.split(",") if b):
                w = run_workload(args, ctx, dataset, batch_size, work)
                workloads.append(w)
                if batch_size != 1 and dataset == args.datasets.split(",")[0]:
                    facts += engine_facts(ctx["label"], w)
        if index == 0 and not args.no_whole_job:
            whole = run_whole_job(args, ctx, work)

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_start": f"{load_start:.2f}", "load_end": f"{os.getloadavg()[0]:.2f}",
        "machine": rep.machine(), "versions": rep.versions(),
        "fcabert_version": subprocess.run([args.fcabert, "--version"], capture_output=True, text=True).stdout.strip(),
        "threads": args.threads, "repeat": args.repeat, "ct2_isa": args.ct2_isa,
        "command": " ".join([".venv/bin/python", "tools/bench/run_bench.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "gemm": gemm, "workloads": workloads, "facts": facts, "peer_facts": peer_facts, "whole_job": whole,
    }
    report["targets"] = rep.evaluate_targets(report)
    text = rep.markdown(report)
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
