"""The whole job for a peer engine: classify a text file, one label per line in file order,
as a user's script would (tools/bench/run_bench.py times this process from start to exit,
against `fcabert classify FILE`):

  python -m tools.bench.classify_peer --peer ort-int8 --artefacts DIR -t 2 FILE

Load the engine, tokenize every line with the Hugging Face fast tokenizer (tokenizers'
Tokenizer, from tokenizer.json: our vocabulary; truncation at the model's length), cut
length-sorted batches of --batch-size, pad each to its longest row, run them, put the
outputs back in file order and print the argmax label of each line. Pair models take two
tab-separated columns per line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tools.bench.peer_runtime import PEERS, load_runtime, read_labels
from tools.bench.workloads import plan_batches, restore_order


def read_lines(path: str) -> list[str]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def tokenize(artefacts: Path, lines: list[str], pair: bool, max_len: int) -> list[dict]:
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(artefacts / "hf" / "tokenizer.json"))
    tokenizer.enable_truncation(max_len)
    inputs = [tuple(line.split("\t", 1)) if pair else line for line in lines]
    return [{"ids": e.ids, "type_ids": e.type_ids} for e in tokenizer.encode_batch(inputs)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="text file, one example per line ('-': stdin)")
    parser.add_argument("--peer", required=True, choices=list(PEERS), help="which peer engine")
    parser.add_argument("--artefacts", required=True, help="the directory tools/bench/peer_models.py wrote")
    parser.add_argument("-t", "--threads", type=int, default=2, help="the engine's intra-op threads")
    parser.add_argument("-b", "--batch-size", type=int, default=32, help="sequences per length-sorted batch")
    args = parser.parse_args(argv)
    artefacts = Path(args.artefacts)
    info = read_labels(artefacts)
    runtime = load_runtime(args.peer, artefacts, args.threads, args.batch_size)
    lines = read_lines(args.input)
    if not lines:
        return 0
    tokens = tokenize(artefacts, lines, info["pair_input"], info["max_len"])
    batches = plan_batches(tokens, args.batch_size, "sorted")
    outputs, _ = runtime.infer_all([runtime.feed(b) for b in batches])
    logits = restore_order(batches, outputs, len(tokens))
    labels = info["labels"]
    sys.stdout.write("".join(labels[int(i)] + "\n" for i in np.argmax(logits, axis=1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
