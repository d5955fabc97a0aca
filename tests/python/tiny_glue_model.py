"""A tiny random 6-layer BERT model file with a small word vocabulary, and tiny SST-2-style
GLUE folders built from that vocabulary: fast inputs for the calibrate and trade-off tests
(a real fcabert model file, written with tools/tiny_model.py)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from tools.tiny_model import tiny_metadata, write_tiny_model

WORDS = ("the a movie film good bad great awful plot actors story boring funny sad long short "
         "best worst very not quite really music scenes ending script director fun dull smart").split()


def tiny_model(path: Path, *, seed: int = 7, layers: int = 6, schedule=None, clusters: int = 2,
               pooling: str = "weighted", task: str = "sst2") -> Path:
    metadata = tiny_metadata(WORDS, layers=layers, hidden_size=32, num_heads=4, intermediate_size=64, max_len=64,
                             task=task, keep_ratios=schedule or [], clusters=clusters, pooling=pooling,
                             provenance={"source": "tests/python/tiny_glue_model.py", "seed": seed})
    rng = np.random.default_rng(seed)

    def weights(name, shape):
        if name.endswith("LayerNorm.weight"):
            return 1.0 + rng.uniform(-0.2, 0.2, shape)
        if name.endswith("bias") or "LayerNorm" in name:
            return rng.uniform(-0.1, 0.1, shape)
        if "embeddings" in name:
            return rng.uniform(-1.0, 1.0, shape)
        # [out, in] linear weights, scaled so activations stay O(1)
        return rng.uniform(-1.7, 1.7, shape) / np.sqrt(shape[-1])

    return write_tiny_model(path, metadata, weights)


def tiny_sst2(root: Path, *, train: int = 60, dev: int = 30, seed: int = 3) -> Path:
    """root/SST-2/{train,dev}.tsv with random sentences of 4..30 words and random labels."""
    rng = random.Random(seed)
    folder = root / "SST-2"
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", train), ("dev", dev)):
        rows = ["sentence\tlabel"]
        for _ in range(count):
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 30))]
            rows.append(f"{' '.join(words)}\t{rng.randint(0, 1)}")
        (folder / f"{name}.tsv").write_text("\n".join(rows) + "\n")
    return folder
