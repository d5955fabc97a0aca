#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (committed; re-run
only to regenerate them). Every seed is small: tiny valid model files (a few KB, made with
tools/tiny_model.py), lines of the tokenizer edge cases, heads of the GLUE fixtures, and
schedules in the --keep-ratios/--clusters/--pooling form the schedule target reads.

    .venv/bin/python fuzz/make_corpus.py

(scripts/fuzz.sh does not run it: the fuzzers start from the committed corpora.)
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tools.tiny_model import tiny_metadata, write_tiny_model

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "fuzz" / "corpus"


def put(target: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def model_seeds(tmp: Path) -> None:
    variants = [  # layers, labels, pair, regression, keep ratios, storage of the 2-D matrices
        (1, ["neg", "pos"], False, False, [], "F32"),
        (1, ["neg", "pos"], False, False, [0.5], "BF16"),
        (2, ["a", "b", "c"], True, False, [1.0, 0.5], "F32"),
        (1, ["score"], True, True, [], "BF16"),
        (1, ["neg", "pos"], False, False, [], "I8"),  # int8 matrices with their "_scale" tensors
        (2, ["a", "b", "c"], True, False, [1.0, 0.5], "I8"),
    ]
    rng = np.random.default_rng(7)  # one generator for all variants: each file's weights differ
    for i, (layers, labels, pair, regression, ratios, matrix_dtype) in enumerate(variants):
        metadata = tiny_metadata(["the", "a", "good", "bad", "##s"], layers=layers, hidden_size=4, num_heads=2,
                                 intermediate_size=4, max_len=8, labels=labels, pair=pair, regression=regression,
                                 keep_ratios=ratios, clusters=1, pooling="mean",
                                 provenance={"source": "fuzz/make_corpus.py"})
        path = write_tiny_model(tmp / f"seed{i}.fcab", metadata, lambda name, shape: rng.standard_normal(shape),
                                matrix_dtype)
        put("model_file", path.read_bytes())
    # Headers alone: the reader must refuse each cleanly.
    for text in (b'{}', b'{"__metadata__":{"format":"pt"}}', b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'):
        put("model_file", len(text).to_bytes(8, "little") + text)


def tokenizer_seeds() -> None:
    lines = (REPO / "tests/data/tokenizer_edge_cases.txt").read_bytes().split(b"\n")
    lines += (REPO / "tests/data/tokenizer_edge_pairs.tsv").read_bytes().split(b"\n")[:20]
    for i, line in enumerate(lines[:60]):
        if line:
            put("tokenizer", bytes([i % 256]) + line[:512])
    for extra in (b"\xff\xfe invalid", b"a\xc3", b"x" * 300, "東京 naïve CAFÉ\u0301 ﬁ".encode(), b"\x00\x01\t\x7f"):
        put("tokenizer", b"\x03" + extra)


def glue_seeds() -> None:
    tasks = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"]  # all_tasks() order
    shared = REPO.parent / "shared" / "data" / "glue"
    for index, name in enumerate(tasks):
        folder = shared / name
        files = sorted(folder.glob("dev*.tsv")) if folder.is_dir() else []
        fixture = REPO / "tests/data/glue_fixtures" / name
        files += sorted(fixture.glob("*.tsv")) if fixture.is_dir() else []
        for path in files[:2]:
            head = b"\n".join(path.read_bytes().split(b"\n")[:6]) + b"\n"
            put("glue_reader", bytes([index]) + head)
            put("glue_reader", bytes([index | 0x80]) + head)
    bad = REPO / "tests/data/glue_fixtures/bad/sst2_bad.tsv"
    put("glue_reader", bytes([1 | 0x80]) + bad.read_bytes()[:2000])


def schedule_seeds() -> None:
    for text in ("1,0.9,0.8,0.7,0.6,0.5\n4\nweighted", "0.65,0.45,0.35,0.3,0.25,0.2\n2\nmean",
                 "1\n0\nweighted", " 0.5 , 0.5 \n3\nmean", "1e-3\n1\nweighted", "0.7,0.8\n1\nmean"):
        put("schedule", text.encode())


def main() -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        model_seeds(Path(tmp))
    tokenizer_seeds()
    glue_seeds()
    schedule_seeds()
    for folder in sorted(CORPUS.iterdir()):
        files = list(folder.iterdir())
        print(f"{folder.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
