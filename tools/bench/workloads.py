"""The benchmark's inputs: GLUE dev sets, the long-input set, token files and batch plans.

Every engine of a workload reads the same token file (one JSON object per sequence, in file
order): fcabert-bench packs it into ragged batches in file order; a peer worker cuts it into
padded batches, either length-sorted (what a knowledgeable user does: each batch padded only
to its own longest row, the outputs put back in file order afterwards) or in file order (to
show what padding costs). fingerprint() lets the driver check that a peer's batches hold
exactly the sequences of the token file.

This module needs only numpy: the peer workers and the whole-job scripts import it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
GLUE = REPO.parent / "shared" / "data" / "glue"
ORDERS = ("sorted", "file")
DATASETS = ("sst2", "mrpc", "long", "tiny")


def fail(message: str):
    raise SystemExit(f"run_bench.py: error: {message}")


# ---------------------------------------------------------------------------------------------
# texts

def sst2_dev(glue: Path = GLUE) -> tuple[list[str], list[int]]:
    """SST-2 dev sentences and their labels (0 negative, 1 positive), in file order."""
    path = glue / "SST-2" / "dev.tsv"
    if not path.is_file():
        fail(f"no SST-2 dev set at {path} (the GLUE data lives in ../shared/data/glue)")
    rows = [r.split("\t") for r in path.read_text(encoding="utf-8").splitlines()[1:] if r]
    return [r[0].strip() for r in rows], [int(r[1]) for r in rows]


def read_dataset(name: str, limit: int, glue: Path = GLUE) -> list:
    """Texts (str) or pairs ((str, str)) of a GLUE dev set, in file order ("long": see long_texts)."""
    if name == "sst2":
        items = sst2_dev(glue)[0]
    elif name == "mrpc":
        path = glue / "MRPC" / "dev.tsv"
        if not path.is_file():
            fail(f"no MRPC dev set at {path}")
        rows = path.read_text(encoding="utf-8-sig").splitlines()[1:]
        items = [(c[3], c[4]) for c in (r.split("\t") for r in rows if r)]
    elif name == "tiny":  # a few lines from the parity data (smoke runs without ../shared)
        items = (REPO / "tests" / "data" / "parity" / "sst2_dev.txt").read_text(encoding="utf-8").splitlines()
    else:
        fail(f"unknown dataset {name!r} (one of {', '.join(DATASETS)})")
    return items[:limit] if limit > 0 else items


def long_texts(tokenizer, count: int, max_len: int, min_len: int = 128, glue: Path = GLUE) -> list[str]:
    """`count` texts of min_len..max_len tokens: consecutive SST-2 dev sentences joined until
    each reaches its target length (targets spread evenly over the range, so batches mix
    lengths as real long inputs do). Attention's cost grows with the square of the length,
    so at these lengths it weighs far more than at SST-2's 25 tokens."""
    if max_len < min_len:
        fail(f"--long-max-len {max_len} is below the long inputs' minimum of {min_len} tokens")
    sentences = sst2_dev(glue)[0]
    pieces = [len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in sentences]
    texts, at = [], 0
    for i in range(count):
        # a fixed stride through the range: deterministic, and every length band is hit
        target = min_len + (i * 149) % (max_len - min_len + 1)
        words, length = [], 2  # [CLS] and [SEP]
        while length < target:
            words.append(sentences[at % len(sentences)])
            length += pieces[at % len(sentences)]
            at += 1
        texts.append(" ".join(words))
    return texts


def tokenize(tokenizer, items: list, max_len: int) -> list[dict]:
    """{"ids", "type_ids"} per text or pair: what every engine sees."""
    out = []
    for item in items:
        first, second = item if isinstance(item, tuple) else (item, None)
        enc = tokenizer(first, second, truncation=True, max_length=max_len)
        out.append({"ids": list(enc["input_ids"]), "type_ids": list(enc["token_type_ids"])})
    return out


def write_token_file(path: Path, tokens: list[dict]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in tokens), encoding="utf-8")
    return path


def read_token_file(path: Path) -> list[dict]:
    tokens = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
    for t in tokens:
        t.setdefault("type_ids", [0] * len(t["ids"]))
    return tokens


def fingerprint(tokens: list[dict]) -> str:
    """A hash of the sequences in file order: equal fingerprints mean the same inputs."""
    h = hashlib.sha256()
    for t in tokens:
        h.update(json.dumps([t["ids"], t["type_ids"]]).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# padded batches

@dataclass
class Batch:
    """Rows `index` of the token file, padded to the batch's longest row (int64, like HF)."""
    index: np.ndarray
    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    def feed(self) -> dict:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids}

    def lengths(self) -> np.ndarray:
        return self.attention_mask.sum(axis=1)


def batch_order(tokens: list[dict], order: str) -> list[int]:
    if order == "file":
        return list(range(len(tokens)))
    if order == "sorted":  # stable: equal lengths keep their file order
        return sorted(range(len(tokens)), key=lambda i: len(tokens[i]["ids"]))
    fail(f"unknown batch order {order!r} (sorted or file)")


def plan_batches(tokens: list[dict], batch_size: int, order: str) -> list[Batch]:
    """Batches of `batch_size` rows in `order`, each padded to its own longest row."""
    if batch_size < 1:
        fail("the batch size must be at least 1")
    rows = batch_order(tokens, order)
    out = []
    for start in range(0, len(rows), batch_size):
        index = np.array(rows[start:start + batch_size], dtype=np.int64)
        longest = max(len(tokens[i]["ids"]) for i in index)
        ids = np.zeros((len(index), longest), np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for r, i in enumerate(index):
            n = len(tokens[i]["ids"])
            ids[r, :n] = tokens[i]["ids"]
            mask[r, :n] = 1
            types[r, :n] = tokens[i]["type_ids"]
        out.append(Batch(index, ids, mask, types))
    return out


def restore_order(batches: list[Batch], outputs: list[np.ndarray], count: int) -> np.ndarray:
    """The per-batch outputs put back in file order (row i = sequence i of the token file)."""
    width = outputs[0].shape[1]
    restored = np.full((count, width), np.nan, np.float32)
    for batch, out in zip(batches, outputs):
        restored[batch.index] = out
    return restored


def unpadded(batches: list[Batch], count: int) -> list[dict]:
    """The sequences that `batches` really hold, in file order (for fingerprint())."""
    tokens: list = [None] * count
    for b in batches:
        for r, i in enumerate(b.index):
            n = int(b.attention_mask[r].sum())
            tokens[i] = {"ids": b.input_ids[r, :n].tolist(), "type_ids": b.token_type_ids[r, :n].tolist()}
    if any(t is None for t in tokens):
        fail("a batch plan lost sequences")
    return tokens


def padded_tokens(batches: list[Batch]) -> int:
    return sum(int(b.input_ids.size) for b in batches)
