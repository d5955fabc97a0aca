"""The benchmarked model files: the committed MiniLM pair (dense and FCA), and a random
BERT-base geometry model for speed at a larger size."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tools.bench.workloads import REPO, fail

DEFAULT_MODEL = REPO / "models" / "sst2-minilm-l6.fcab"
# The committed FCA model: the same MiniLM geometry, retrained with its stored schedule
# (models/README.md); fcabert-bench and fcabert classify run that schedule when given no
# schedule flag.
DEFAULT_FCA_MODEL = REPO / "models" / "sst2-minilm-l6-fca.fcab"
SECTIONS = ("config", "tokenizer", "head", "fca")


def read_metadata(path: Path) -> dict:
    from tools.fcabert_model import read_model_file
    if not Path(path).is_file():
        fail(f"no model file at {path}")
    metadata, _ = read_model_file(str(path))
    return {k: (json.loads(v) if isinstance(v, str) else v) for k, v in metadata.items() if k in SECTIONS}


def geometry(meta: dict) -> tuple:
    c = meta["config"]
    return c["num_layers"], c["hidden_size"], c["num_heads"], c["intermediate_size"], c["vocab_size"]


def write_random_bert_base(path: Path, template: Path, layers=12, hidden=768, heads=12, intermediate=3072,
                           seed=0, std=0.02, fca: dict | None = None) -> Path:
    """A model with random weights (speed only; N(0, std) matrices, BERT's initialization at
    the default), the template's tokenizer and head. `fca` stores a schedule in the file
    ({"keep_ratios", "clusters", "pooling"}; default none). Written once; reused when it exists."""
    from tools.fcabert_model import expected_tensors, write_model_file
    if path.exists():
        return path
    meta = read_metadata(template)
    meta["config"] = dict(meta["config"], num_layers=layers, hidden_size=hidden, num_heads=heads,
                          intermediate_size=intermediate)
    meta["fca"] = fca or {"keep_ratios": [], "clusters": 4, "pooling": "weighted"}
    meta["provenance"] = {"source": f"tools/bench: random weights, seed {seed}, std {std}"}
    rng = np.random.default_rng(seed)
    tensors = []
    for name, shape in expected_tensors(meta["config"], len(meta["head"]["labels"])):
        if name.endswith("LayerNorm.weight"):
            value = np.ones(shape, np.float32)
        elif name.endswith("bias"):
            value = np.zeros(shape, np.float32)
        else:
            value = (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)
        tensors.append((name, value, "F32"))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_model_file(path, meta, tensors)
    return path


def fca_model_for(model: Path, fca_option: str | None) -> Path | None:
    """The FCA model file benchmarked next to `model`: --fca-model, else the committed one
    with the default model; only when its geometry is the model's (same work per token)."""
    if fca_option == "none":
        return None
    if fca_option:
        candidate = Path(fca_option)
    elif Path(model).resolve() == DEFAULT_MODEL.resolve():
        candidate = DEFAULT_FCA_MODEL
    else:
        return None
    meta = read_metadata(candidate)
    if not meta["fca"].get("keep_ratios"):
        fail(f"--fca-model {candidate} stores no FCA schedule")
    return candidate if geometry(meta) == geometry(read_metadata(model)) else None
