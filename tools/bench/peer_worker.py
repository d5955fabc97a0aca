"""One peer engine as a served process, the counterpart of `fcabert-bench --serve`, so that
tools/bench/run_bench.py times every engine the same way: pass by pass, round-robin.

  python -m tools.bench.peer_worker --peer ort-int8 --artefacts DIR --tokens T.jsonl -b 32 -t 2

It reads the token file every engine of the workload reads, cuts it into padded batches in
each --orders order (sorted: length-sorted; file: file order), builds the engine's inputs,
runs one untimed warm-up pass per order, then prints one JSON line describing itself. Then,
one command per stdin line, one JSON line back:

  run ORDER           one timed pass over every batch; the outputs are put back in file
                      order inside the timed region (a user needs them in that order)
  logits ORDER FILE   np.save the last pass's file-order logits there (the driver checks them)
  quit

Its own process: environment variables that an engine reads at import (CT2_FORCE_CPU_ISA)
take effect, and no other engine's thread pool lives in the same process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from tools.bench.peer_runtime import PEERS, load_runtime
from tools.bench.workloads import ORDERS, fingerprint, padded_tokens, plan_batches, read_token_file, \
    restore_order, unpadded


class Worker:
    def __init__(self, args):
        start = time.perf_counter()
        self.runtime = load_runtime(args.peer, Path(args.artefacts), args.threads, args.batch_size)
        self.load_ms = (time.perf_counter() - start) * 1000
        self.tokens = read_token_file(Path(args.tokens))
        self.batches = {o: plan_batches(self.tokens, args.batch_size, o) for o in args.orders}
        self.feeds = {o: [self.runtime.feed(b) for b in bs] for o, bs in self.batches.items()}
        self.last = {}
        for order in args.orders:
            self.run(order)  # warm-up: also gives the driver logits to check before timing

    def describe(self, peer: str) -> dict:
        n = len(self.tokens)
        return {"peer": peer, "name": PEERS[peer][0], "load_ms": self.load_ms,
                "inference_precision": self.runtime.inference_precision, "sequences": n,
                "tokens": sum(len(t["ids"]) for t in self.tokens),
                # computed from the padded batches themselves: proves they hold the token file
                "fingerprints": {o: fingerprint(unpadded(bs, n)) for o, bs in self.batches.items()},
                "padded_tokens": {o: padded_tokens(bs) for o, bs in self.batches.items()},
                "batches": {o: len(bs) for o, bs in self.batches.items()},
                # what this process was given (run_bench.py --ct2-isa): read by CTranslate2 at load
                "ct2_force_cpu_isa": os.environ.get("CT2_FORCE_CPU_ISA")}

    def run(self, order: str) -> dict:
        start = time.perf_counter()
        outputs, batch_ms = self.runtime.infer_all(self.feeds[order])
        logits = restore_order(self.batches[order], outputs, len(self.tokens))
        total = (time.perf_counter() - start) * 1000
        self.last[order] = logits
        return {"pass_ms": total, "batch_ms_median": statistics.median(batch_ms),
                "batch_ms_p90": float(np.percentile(batch_ms, 90)),
                "examples_per_s": 1000 * len(self.tokens) / total,
                "sequences": int(sum(o.shape[0] for o in outputs)),  # rows the engine really returned
                "batches": len(outputs)}

    def save_logits(self, order: str, path: str) -> dict:
        np.save(path, self.last[order])
        return {"saved": path}


def serve(worker: Worker, peer: str, orders: list[str]) -> None:
    print(json.dumps(worker.describe(peer)), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            break
        if len(words) == 2 and words[0] == "run" and words[1] in orders:
            reply = worker.run(words[1])
        elif len(words) == 3 and words[0] == "logits" and words[1] in orders:
            reply = worker.save_logits(words[1], words[2])
        else:
            raise SystemExit(f"peer_worker: unknown command {line.strip()!r} (run ORDER, logits ORDER FILE, quit; "
                             f"orders: {', '.join(orders)})")
        print(json.dumps(reply), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", required=True, choices=list(PEERS), help="which peer engine")
    parser.add_argument("--artefacts", required=True, help="the directory tools/bench/peer_models.py wrote")
    parser.add_argument("--tokens", required=True, help="JSONL token file ({\"ids\", \"type_ids\"} per line)")
    parser.add_argument("-b", "--batch-size", type=int, required=True, help="sequences per batch")
    parser.add_argument("-t", "--threads", type=int, required=True, help="the engine's intra-op threads")
    parser.add_argument("--orders", default="sorted,file",
                        help="comma list of batch orders to serve: sorted (length-sorted) and/or file")
    args = parser.parse_args(argv)
    args.orders = [o for o in args.orders.split(",") if o]
    if not args.orders or any(o not in ORDERS for o in args.orders):
        parser.error(f"--orders: a comma list of {', '.join(ORDERS)}")
    serve(Worker(args), args.peer, args.orders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
