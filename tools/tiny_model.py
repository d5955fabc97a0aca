"""Tiny random fcabert model files (a few KB) for tests and fuzz seeds.

Three callers need such models and differ only in their sizes, vocabulary, head, schedule and
how they draw the weights (the fuzz seed corpus, the CLI robustness tests and the calibrate /
trade-off tests), so the metadata is spelled out once, here:

  metadata = tiny_metadata(["good", "bad"], layers=1, hidden_size=8, num_heads=2, intermediate_size=16,
                           max_len=64, clusters=1, pooling="weighted", provenance={"source": "me"})
  write_tiny_model(path, metadata, lambda name, shape: rng.normal(0.0, 0.5, shape))

The vocabulary is BERT's five special tokens followed by the given words; the tokenizer
lowercases and splits CJK characters, like the BERT uncased tokenizers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tools.fcabert_model import expected_tensors, write_model_file

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# (tensor name, shape) -> values of that shape; called once per tensor, in the order of
# expected_tensors(), so a caller drawing from one seeded generator gets reproducible files.
WeightSampler = Callable[[str, tuple], np.ndarray]


def tiny_metadata(words: Sequence[str], *, layers: int, hidden_size: int, num_heads: int,
                  intermediate_size: int, max_len: int, labels: Sequence[str] = ("negative", "positive"),
                  pair: bool = False, regression: bool = False, task: str = "",
                  keep_ratios: Sequence[float] = (), clusters: int, pooling: str, provenance: dict) -> dict:
    """The metadata of a tiny BERT: max_len is both its position count and its truncation
    length; keep_ratios () is dense."""
    vocab = [*SPECIAL_TOKENS, *words]
    return {
        "config": {"vocab_size": len(vocab), "hidden_size": hidden_size, "num_layers": layers, "num_heads": num_heads,
                   "intermediate_size": intermediate_size, "max_position_embeddings": max_len, "type_vocab_size": 2,
                   "layer_norm_eps": 1e-12, "hidden_act": "gelu"},
        "tokenizer": {"lowercase": True, "strip_accents": None, "tokenize_chinese_chars": True, "max_len": max_len,
                      "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                      "vocab": vocab},
        "head": {"kind": "regression" if regression else "classification", "labels": list(labels),
                 "pair_input": pair, "task": task},
        "fca": {"keep_ratios": list(keep_ratios), "clusters": clusters, "pooling": pooling},
        "provenance": provenance,
    }


def write_tiny_model(path: Path, metadata: dict, weights: WeightSampler, matrix_dtype: str = "F32") -> Path:
    """Writes the model file of `metadata` with every tensor drawn from `weights`; the 2-D
    matrices are stored as matrix_dtype ("F32", "BF16" or "I8"), the rest as F32."""
    tensors = []
    for name, shape in expected_tensors(metadata["config"], len(metadata["head"]["labels"])):
        dtype = matrix_dtype if len(shape) == 2 else "F32"
        tensors.append((name, np.asarray(weights(name, shape), dtype=np.float32), dtype))
    write_model_file(path, metadata, tensors)
    return path
