#!/usr/bin/env python3
"""PyTorch reference implementation of FCA token reduction (docs/FCA.md; FLOPs as in docs/PROFILE.md).

Runs a Hugging Face BertForSequenceClassification one unpadded sequence at a time, with
every encoder layer computed here from the HF module's weights (so the attention
probabilities are at hand), and applies the FCA step of docs/FCA.md between the attention
sub-layer's LayerNorm and the feed-forward. It is the reference the C++ engine's FCA parity
tests compare against, and its tensor functions are reused by training (they are
differentiable where that makes sense: the attention, the scores and the cluster pooling;
the top-k selection itself is discrete).

CLI (one JSON object per input line, the shape `fcabert classify --explain --format jsonl`
prints):

  tools/fca_reference.py --model MODEL --input texts.txt -o ref.jsonl
  tools/fca_reference.py --model hf_checkpoint_dir --input pairs.tsv --pairs \\
      --keep-ratios 1,0.9,0.8,0.7,0.6,0.5 --clusters 4 --pooling weighted -o ref.jsonl

  {"line": 1, "input_ids": [...], "logits": [...],
   "layers": [{"tokens_in": n, "tokens_out": n2, "kept": [0, 3, "c1.0", ...]}, ...]}

MODEL is an fcabert model file (its tokenizer, max length, pair flag and FCA schedule come
from the file; --keep-ratios/--clusters/--pooling override the schedule, --dense turns FCA
off) or a Hugging Face checkpoint directory (BertForSequenceClassification; a plain
BertModel gets a randomly initialised head; no schedule, so dense unless --keep-ratios).

Semantics (docs/FCA.md), for a sequence of n0 tokens entering layer l with n rows:
  k_l = max(1, ceil(r_l * n0 - 1e-9)) in double precision; m = n - k_l;
  the layer reduces iff m > C (C > 0) or m > 0 (C = 0), otherwise it passes through;
  s_j = (1/H) * sum_h sum_{i != j} A_h[i, j], accumulated in float64 from the fp32
  softmax probabilities; fine rows = row 0 + the k_l - 1 best of rows 1..n-1 ordered by
  (-s_j, j) (ties: the lower row wins), output in row order; the other m rows, in row order,
  split into c = min(C, m) contiguous groups (sizes differ by at most one, earlier groups
  larger); cluster = sum_j w_j x_j with w = softmax(s over the group) (computed in float64,
  rounded to float32, then the weighted sum in float32) or w_j = 1/|group| (mean); C = 0
  drops them. Output: fine rows, then the c cluster rows.
"kept" lists the row identities of the fine rows in a reducing layer and of all rows in a
pass-through layer (dense: every layer passes through). Identities: ints 0..n0-1 for
original tokens, "c<l>.<g>" for the cluster of group g made at layer l (both 0-based).

FLOPs convention (docs/PROFILE.md; fca_flops()): a multiply-add is 2 FLOPs. Per sequence and
layer with n rows in, n' rows out, hidden d, intermediate f, H heads, and, in a layer that
reduces, m = n - k coarse rows pooled into c clusters:
  linear_qkvo       = 2*n*d*4d  (= 8*n*d*d)
  ffn               = 2*n'*d*f*2 (= 4*n'*d*f)
  attention_scores  = 2*n*n*d
  attention_context = 2*n*n*d
  fca_scoring       = H*n*n     one add per attention probability (the column sums; the
                                diagonal is counted too, the 1/H scale and the top-k
                                comparisons are not); only in layers that reduce (whether a
                                layer reduces is known from n, k_l and C before attention,
                                so a pass-through layer needs no scores); 0 when dense
  fca_pooling       weighted: 2*m*d + 3*m  (sum_j w_j x_j: one multiply-add per member
                                element; the weights: exp, accumulate, divide = 3 per member;
                                the max subtraction for a stable softmax is not counted)
                    mean:     m*d + c*d    (one add per member element, one multiply by
                                1/|group| per cluster element)
                    0 when C = 0 (dropped rows are not pooled) or the layer passes through
Elementwise work (softmax, LayerNorm, GELU, residual adds) is not counted. MACs are the
multiply-adds of the matrix products only: (linear_qkvo + ffn + attention_scores +
attention_context) / 2; the FCA step is reported in FLOPs only. Embeddings, pooler and
classifier are not counted (per layer, like the paper's numbers).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Iterable, Sequence

from tools.fca_schedule import POOLINGS, ScheduleError, parse_keep_ratios, validate_schedule
from tools.fcabert_model import parse_metadata, read_header
from tools.reference_logits import load_reference

PROG = "fca_reference.py"


# ---------------------------------------------------------------------------------------
# The schedule (parsed and validated by tools/fca_schedule.py)
# ---------------------------------------------------------------------------------------

def keep_count(ratio: float, n0: int) -> int:
    """k_l = max(1, ceil(r_l * n0 - 1e-9)), in double precision (docs/FCA.md step 2)."""
    return max(1, math.ceil(float(ratio) * float(n0) - 1e-9))


def layer_reduces(n: int, k: int, clusters: int) -> bool:
    """docs/FCA.md step 3: with m = n - k, reduce iff m > C (C > 0) or m > 0 (C = 0)."""
    m = n - k
    return m > clusters if clusters > 0 else m > 0


# ---------------------------------------------------------------------------------------
# The FCA step (tensor functions)
# ---------------------------------------------------------------------------------------

def token_scores(probs):
    """s_j = (1/H) * sum_h sum_{i != j} A_h[i, j] for probs [..., H, n, n] (rows = queries).

    Accumulated in float64 (differentiable; cast the result for training if you like)."""
    import torch

    p = probs.to(torch.float64)
    n = p.shape[-1]
    heads = p.shape[-3]
    eye = torch.eye(n, dtype=torch.bool, device=p.device)
    return p.masked_fill(eye, 0.0).sum(dim=(-3, -2)) / heads


def select_fine(scores: Sequence[float], k: int) -> list[int]:
    """Row 0 plus the k-1 rows among 1..n-1 with the highest score, ties to the lower row,
    returned in row order. The order is an explicit sort on (-score, row)."""
    n = len(scores)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    others = sorted(range(1, n), key=lambda j: (-float(scores[j]), j))
    return sorted([0] + others[:k - 1])


def group_sizes(m: int, c: int) -> list[int]:
    """Sizes of c contiguous groups over m rows: differ by at most one, earlier larger."""
    if c <= 0:
        return []
    if c > m:
        raise ValueError(f"cannot split {m} rows into {c} non-empty groups")
    base, extra = divmod(m, c)
    return [base + 1 if g < extra else base for g in range(c)]


def pooling_weights(group_scores, pooling: str):
    """The weights of one group (scores [m]) or of one group per sequence ([B, m]): softmax of
    the float64 scores over the group (weighted) or 1/|group| (mean). Returned in float64;
    they sum to 1 over the last dimension."""
    import torch

    s = group_scores.to(torch.float64)
    if pooling == "weighted":
        return torch.softmax(s, dim=-1)
    if pooling == "mean":
        return torch.full_like(s, 1.0 / s.shape[-1])
    raise ScheduleError(f"pooling is {pooling!r}; expected 'weighted' or 'mean'")


def pool_groups(x, scores, sizes: Sequence[int], pooling: str):
    """Cluster rows [c, d] from the coarse rows x [m, d] (row order), their float64 scores
    [m] and the group sizes. Returns (clusters, [weights per group, float64])."""
    import torch

    rows, weights, start = [], [], 0
    for size in sizes:
        w = pooling_weights(scores[start:start + size], pooling)
        weights.append(w)
        rows.append(w.to(x.dtype) @ x[start:start + size])
        start += size
    if not rows:
        return x.new_zeros((0, x.shape[-1])), weights
    return torch.stack(rows), weights


def fca_reduce(x, scores, ids: list, k: int, clusters: int, pooling: str, layer_index: int):
    """The FCA step for one sequence: x [n, d] (post-attention LayerNorm), float64 scores
    [n], the row identities `ids`. Returns (x', ids', kept identities, per-group weights);
    a pass-through layer returns x unchanged and kept = ids."""
    import torch

    n = x.shape[0]
    if not layer_reduces(n, k, clusters):
        return x, list(ids), list(ids), []
    fine = select_fine(scores.tolist(), k)
    fine_set = set(fine)
    coarse = [j for j in range(n) if j not in fine_set]
    sizes = group_sizes(len(coarse), min(clusters, len(coarse)))
    index = torch.tensor(fine, dtype=torch.long, device=x.device)
    coarse_index = torch.tensor(coarse, dtype=torch.long, device=x.device)
    pooled, weights = pool_groups(x.index_select(0, coarse_index), scores.index_select(0, coarse_index),
                                  sizes, pooling)
    kept = [ids[j] for j in fine]
    new_ids = kept + [f"c{layer_index}.{g}" for g in range(len(sizes))]
    return torch.cat([x.index_select(0, index), pooled], dim=0), new_ids, kept, weights


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------

def _check_architecture(config) -> None:
    if getattr(config, "hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act is {config.hidden_act!r}; fcabert implements 'gelu' (erf) only")
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"position_embedding_type {config.position_embedding_type!r} is not supported "
                         f"(absolute only)")


def attention_sublayer(layer, x):
    """One BERT attention sub-layer on x [n, d] or a batch of equal-length sequences
    [B, n, d]: returns (LN(attn(x) + x) of x's shape, the softmax probabilities [H, n, n]
    or [B, H, n, n] before dropout)."""
    import torch
    import torch.nn.functional as F

    att = layer.attention.self
    heads, head_dim = att.num_attention_heads, att.attention_head_size
    lead, n = x.shape[:-2], x.shape[-2]

    def split(t):
        return t.view(*lead, n, heads, head_dim).transpose(-3, -2)  # [..., H, n, dh]

    q, k, v = split(att.query(x)), split(att.key(x)), split(att.value(x))
    probs = F.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim), dim=-1)
    context = torch.matmul(att.dropout(probs), v).transpose(-3, -2).reshape(*lead, n, heads * head_dim)
    out = layer.attention.output
    h = out.LayerNorm(out.dropout(out.dense(context)) + x)
    return h, probs


def feed_forward_sublayer(layer, h):
    """LN(FFN(h) + h) with GELU (erf)."""
    import torch.nn.functional as F

    inter = F.gelu(layer.intermediate.dense(h))
    return layer.output.LayerNorm(layer.output.dropout(layer.output.dense(inter)) + h)


def _checked_layers(model, keep_ratios, clusters: int, pooling: str, soft_extract):
    """The encoder layers, after checking the architecture and the schedule (both forwards)."""
    _check_architecture(model.config)
    layers = model.bert.encoder.layer
    validate_schedule(keep_ratios, len(layers), clusters, pooling)
    if soft_extract is not None and keep_ratios is not None:
        raise ScheduleError("soft_extract replaces the hard FCA step; pass keep_ratios=None with it")
    return layers


def fca_encode(model, input_ids, token_type_ids, keep_ratios: Sequence[float] | None = None,
               clusters: int = 0, pooling: str = "weighted", return_weights: bool = False,
               soft_extract=None):
    """Tensor-level FCA forward of one unpadded sequence (1-D LongTensors). Returns
    (logits [num_labels] tensor, per-layer stats). Differentiable when grad is enabled; the
    model's dropouts apply in train mode (scores use the probabilities before dropout).
    With return_weights each layer's stats also has "weights": the per-group float64
    pooling weights.

    soft_extract (training, tools/train_fca.py's configuration search): a callable
    (layer_index, h [n, d], scores float64 [n], n0) -> h' [n, d] applied at the FCA step's
    place (after the attention sub-layer's LayerNorm, before the feed-forward) instead of the
    hard reduction; it must keep the row count, so keep_ratios must be None with it."""
    import torch

    config = model.config
    layers = _checked_layers(model, keep_ratios, clusters, pooling, soft_extract)
    device = model.bert.embeddings.word_embeddings.weight.device
    ids_t = torch.as_tensor(input_ids, dtype=torch.long, device=device)
    types_t = torch.as_tensor(token_type_ids, dtype=torch.long, device=device)
    if ids_t.dim() != 1 or types_t.shape != ids_t.shape:
        raise ValueError(f"input_ids and token_type_ids must be 1-D of one length, got {tuple(ids_t.shape)} "
                         f"and {tuple(types_t.shape)}")
    n0 = ids_t.shape[0]
    if n0 < 1:
        raise ValueError("empty sequence")
    if n0 > config.max_position_embeddings:
        raise ValueError(f"sequence of {n0} tokens exceeds max_position_embeddings {config.max_position_embeddings}")

    x = model.bert.embeddings(input_ids=ids_t[None], token_type_ids=types_t[None])[0]
    rows: list = list(range(n0))
    stats = []
    for l, layer in enumerate(layers):
        n = x.shape[0]
        h, probs = attention_sublayer(layer, x)
        weights = []
        if soft_extract is not None:
            h = soft_extract(l, h, token_scores(probs), n0)
            kept = list(rows)
        elif keep_ratios is None:
            kept = list(rows)
        else:
            k = keep_count(keep_ratios[l], n0)
            if layer_reduces(n, k, clusters):
                h, rows, kept, weights = fca_reduce(h, token_scores(probs), rows, k, clusters, pooling, l)
            else:
                kept = list(rows)
        x = feed_forward_sublayer(layer, h)
        entry = {"tokens_in": n, "tokens_out": x.shape[0], "kept": kept}
        if return_weights:
            entry["weights"] = weights
        stats.append(entry)

    pooled = model.bert.pooler(x[None])
    logits = model.classifier(model.dropout(pooled))[0]
    return logits, stats


def fca_reduce_batch(x, scores, k: int, clusters: int, pooling: str):
    """fca_reduce for B sequences of one length at once: x [B, n, d], float64 scores [B, n].
    Every sequence has the same n and k, so the same m and group sizes, and the step is a
    gather: the fine rows (row 0 + the k-1 best of rows 1..n-1, ties to the lower row, in row
    order), then the c clusters of the coarse rows. Returns (x' [B, k + c, d], fine [B, k]
    row indices). The caller checks layer_reduces first."""
    import torch

    batch, n, d = x.shape
    # A stable ascending sort of -s ranks rows by (-s_j, j): equal scores keep row order.
    ranked = torch.sort(-scores[:, 1:], dim=1, stable=True).indices + 1
    head = torch.zeros((batch, 1), dtype=torch.long, device=x.device)
    fine = torch.cat([head, torch.sort(ranked[:, :k - 1], dim=1).values], dim=1)
    coarse = torch.sort(ranked[:, k - 1:], dim=1).values
    rows = x.gather(1, fine[:, :, None].expand(-1, -1, d))
    members = x.gather(1, coarse[:, :, None].expand(-1, -1, d))
    member_scores = scores.gather(1, coarse)
    pooled, start = [], 0
    for size in group_sizes(n - k, min(clusters, n - k)):
        w = pooling_weights(member_scores[:, start:start + size], pooling)
        pooled.append(torch.matmul(w.to(x.dtype)[:, None, :], members[:, start:start + size])[:, 0])
        start += size
    if pooled:
        rows = torch.cat([rows, torch.stack(pooled, dim=1)], dim=1)
    return rows, fine


def fca_encode_batch(model, input_ids, token_type_ids, keep_ratios: Sequence[float] | None = None,
                     clusters: int = 0, pooling: str = "weighted", soft_extract=None, return_hidden: bool = False):
    """fca_encode for B unpadded sequences of ONE length n0 at once (LongTensors [B, n0] on
    the model's device): logits [B, num_labels]. Sequences of one length have the same keep
    counts and the same row counts in every layer, so no padding and no mask are needed and
    each sequence gets exactly what fca_encode gives it alone (training groups its batches
    by length to run this). soft_extract takes (layer, h [B, n, d], scores [B, n], n0).

    With return_hidden, returns (logits, hidden): one (x [B, n, d], positions [B, n]) per
    layer, its output rows and the original token position of each row, -1 for a cluster
    row (a cluster made in an earlier layer can later be kept as a fine row, so -1 can
    appear anywhere). Training's hidden-state distillation matches the rows of original
    tokens against the dense teacher's rows at the same positions."""
    import torch

    config = model.config
    layers = _checked_layers(model, keep_ratios, clusters, pooling, soft_extract)
    if input_ids.dim() != 2 or token_type_ids.shape != input_ids.shape:
        raise ValueError(f"input_ids and token_type_ids must be [batch, length] of one shape, got "
                         f"{tuple(input_ids.shape)} and {tuple(token_type_ids.shape)}")
    n0 = input_ids.shape[1]
    if n0 < 1 or n0 > config.max_position_embeddings:
        raise ValueError(f"sequence length {n0} is outside 1..{config.max_position_embeddings}")
    x = model.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    positions = torch.arange(n0, device=input_ids.device).expand(input_ids.shape[0], n0)
    hidden = []
    for l, layer in enumerate(layers):
        h, probs = attention_sublayer(layer, x)
        if soft_extract is not None:
            h = soft_extract(l, h, token_scores(probs), n0)
        elif keep_ratios is not None:
            k = keep_count(keep_ratios[l], n0)
            if layer_reduces(x.shape[1], k, clusters):
                h, fine = fca_reduce_batch(h, token_scores(probs), k, clusters, pooling)
                clustered = positions.new_full((positions.shape[0], h.shape[1] - k), -1)
                positions = torch.cat([positions.gather(1, fine), clustered], dim=1)
        x = feed_forward_sublayer(layer, h)
        if return_hidden:
            hidden.append((x, positions))
    logits = model.classifier(model.dropout(model.bert.pooler(x)))
    return (logits, hidden) if return_hidden else logits


def fca_forward(model, input_ids: Sequence[int], token_type_ids: Sequence[int] | None,
                keep_ratios: Sequence[float] | None = None, clusters: int = 0,
                pooling: str = "weighted") -> dict:
    """FCA inference of ONE unpadded sequence. keep_ratios None = dense. Returns
    {"logits": [...], "layers": [{"tokens_in", "tokens_out", "kept"} per layer]}."""
    import torch

    if token_type_ids is None:
        token_type_ids = [0] * len(input_ids)
    with torch.no_grad():
        logits, stats = fca_encode(model, list(input_ids), list(token_type_ids), keep_ratios, clusters, pooling)
    return {"logits": logits.tolist(), "layers": stats}


# ---------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------

def _config_value(config, *names):
    for name in names:
        if isinstance(config, dict) and name in config:
            return int(config[name])
        if not isinstance(config, dict) and hasattr(config, name):
            return int(getattr(config, name))
    raise KeyError(f"config lacks {names[0]}")


def fca_flops(config, layers_stats: Iterable[dict], pooling: str = "weighted") -> list[dict]:
    """Per-layer FLOPs (convention in the module docstring) from fca_forward's "layers".

    config: a BertConfig or a dict (hidden_size, intermediate_size, num_attention_heads;
    the fcabert metadata names num_heads are accepted too). A layer reduces iff
    tokens_out < tokens_in; then k = len(kept), c = tokens_out - k, m = tokens_in - k."""
    if pooling not in POOLINGS:
        raise ScheduleError(f"pooling is {pooling!r}; expected 'weighted' or 'mean'")
    d = _config_value(config, "hidden_size")
    f = _config_value(config, "intermediate_size")
    heads = _config_value(config, "num_attention_heads", "num_heads")
    result = []
    for l, layer in enumerate(layers_stats):
        n, n_out = int(layer["tokens_in"]), int(layer["tokens_out"])
        reduced = n_out < n
        k = len(layer["kept"]) if reduced else n
        m = n - k
        c = n_out - k if reduced else 0
        row = {"layer": l, "tokens_in": n, "tokens_out": n_out, "coarse": m, "clusters": c,
               "linear_qkvo": 8 * n * d * d, "ffn": 4 * n_out * d * f,
               "attention_scores": 2 * n * n * d, "attention_context": 2 * n * n * d,
               "fca_scoring": heads * n * n if reduced else 0, "fca_pooling": 0}
        if c > 0:
            row["fca_pooling"] = 2 * m * d + 3 * m if pooling == "weighted" else m * d + c * d
        row["linear"] = row["linear_qkvo"] + row["ffn"]
        row["attention"] = row["attention_scores"] + row["attention_context"]
        row["fca"] = row["fca_scoring"] + row["fca_pooling"]
        row["total"] = row["linear"] + row["attention"] + row["fca"]
        row["macs"] = (row["linear"] + row["attention"]) // 2
        result.append(row)
    return result


def flops_totals(per_layer: Iterable[dict]) -> dict:
    """Sums of fca_flops() rows over the layers (all numeric keys except the counts)."""
    keys = ("linear_qkvo", "ffn", "attention_scores", "attention_context", "fca_scoring", "fca_pooling",
            "linear", "attention", "fca", "total", "macs")
    totals = dict.fromkeys(keys, 0)
    for row in per_layer:
        for key in keys:
            totals[key] += row[key]
    return totals


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------

def _as_dict(value):
    return json.loads(value) if isinstance(value, str) else value


def load_model(path: str):
    """(model in eval mode, tokenizer, info) for an fcabert model file or a Hugging Face
    checkpoint directory. info: {"kind": "fcabert"|"huggingface", "max_len", "pair_input",
    "fca": {"keep_ratios": list|None, "clusters", "pooling"}}."""
    p = Path(path)
    if p.is_dir():
        return _load_huggingface(p)
    if p.is_file():
        return _load_fcabert(p)
    raise FileNotFoundError(f"model {path} does not exist (expected an fcabert model file or a Hugging Face "
                            f"checkpoint directory)")


def _load_huggingface(path: Path):
    from transformers import BertForSequenceClassification, BertTokenizer
    from transformers.utils import logging as hf_logging

    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is a directory without config.json, not a Hugging Face checkpoint")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a BertModel checkpoint gets a new head: that warning is expected
    try:
        model = BertForSequenceClassification.from_pretrained(str(path))
    finally:
        hf_logging.set_verbosity(verbosity)
    tokenizer = BertTokenizer.from_pretrained(str(path))
    model.eval()
    max_len = min(int(tokenizer.model_max_length), int(model.config.max_position_embeddings))
    info = {"kind": "huggingface", "max_len": max_len, "pair_input": False,
            "fca": {"keep_ratios": None, "clusters": 0, "pooling": "weighted"}}
    return model, tokenizer, info


def _load_fcabert(path: Path):
    model, tokenizer, meta = load_reference(str(path))
    metadata = parse_metadata(str(path), read_header(str(path))[0])  # the header only: the FCA schedule
    fca = _as_dict(metadata.get("fca")) or {}
    ratios = fca.get("keep_ratios") or None
    info = {"kind": "fcabert", "max_len": int(meta["tokenizer"]["max_len"]),
            "pair_input": bool(meta["head"]["pair_input"]),
            "fca": {"keep_ratios": [float(r) for r in ratios] if ratios else None,
                    "clusters": int(fca.get("clusters", 0)), "pooling": fca.get("pooling", "weighted")}}
    return model, tokenizer, info


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------

class InputError(Exception):
    pass


def read_lines(path: str) -> list[str]:
    """The input file's lines (a final newline does not make an extra empty line)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: invalid UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def encode_line(tokenizer, line: str, pair: bool, max_len: int, where: str) -> dict:
    if pair:
        columns = line.split("\t")
        if len(columns) != 2:
            raise InputError(f"{where}: expected two tab-separated columns, got {len(columns)}")
        return tokenizer(columns[0], columns[1], truncation=True, max_length=max_len)
    return tokenizer(line, truncation=True, max_length=max_len)


def resolve_schedule(args, info: dict, num_layers: int):
    """(keep_ratios or None, clusters, pooling) from the model's schedule and the flags."""
    fca = info["fca"]
    if args.dense and args.keep_ratios is not None:
        raise ScheduleError("--dense and --keep-ratios contradict each other")
    ratios = parse_keep_ratios(args.keep_ratios) if args.keep_ratios is not None else fca["keep_ratios"]
    if args.dense:
        ratios = None
    clusters = args.clusters if args.clusters is not None else fca["clusters"]
    pooling = args.pooling if args.pooling is not None else fca["pooling"]
    validate_schedule(ratios, num_layers, clusters, pooling)
    return ratios, clusters, pooling


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="fcabert model file or Hugging Face checkpoint directory")
    parser.add_argument("--input", required=True, help="one text per line (--pairs: two tab-separated columns)")
    parser.add_argument("-o", "--output", required=True, help="JSON-lines output file ('-' = stdout)")
    parser.add_argument("--pairs", action="store_true",
                        help="sentence-pair input (default: the model file's pair_input; single for a HF directory)")
    parser.add_argument("--keep-ratios", metavar="R1,R2,...",
                        help="one keep ratio per layer in (0, 1], non-increasing (overrides the model's schedule)")
    parser.add_argument("--clusters", type=int, metavar="C", help="clusters C >= 0 (0 drops the coarse tokens)")
    parser.add_argument("--pooling", choices=POOLINGS, help="cluster pooling (default: the model's, else weighted)")
    parser.add_argument("--dense", action="store_true", help="turn FCA off")
    parser.add_argument("--max-len", type=int, default=0, metavar="N",
                        help="truncation length in tokens (default: the model's)")
    parser.add_argument("--flops", action="store_true",
                        help="add per-layer FLOPs (\"flops\": fca_flops() rows) to every output line")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)

    if args.max_len < 0:
        parser.error(f"--max-len must be >= 2 (or 0 for the model's), got {args.max_len}")
    if 0 < args.max_len < 2:
        parser.error(f"--max-len must be >= 2 to hold [CLS] and [SEP], got {args.max_len}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.clusters is not None and args.clusters < 0:
        parser.error(f"--clusters must be >= 0, got {args.clusters}")
    if args.keep_ratios is not None:
        try:
            parse_keep_ratios(args.keep_ratios)
        except ScheduleError as error:
            parser.error(str(error))
    if not Path(args.model).exists():
        parser.error(f"model {args.model} does not exist")
    if not Path(args.input).is_file():
        parser.error(f"input file {args.input} does not exist")

    import torch
    torch.set_num_threads(args.threads)
    try:
        model, tokenizer, info = load_model(args.model)
    except (FileNotFoundError, RuntimeError, OSError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except SystemExit as error:  # reference_logits.load_reference reports a bad file this way
        print(error.code if isinstance(error.code, str) else f"{PROG}: error: cannot load {args.model}",
              file=sys.stderr)
        return 1
    except Exception as error:  # a model file reader's own error type: name the file, no traceback
        print(f"{PROG}: error: cannot load {args.model}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    try:
        ratios, clusters, pooling = resolve_schedule(args, info, len(model.bert.encoder.layer))
        _check_architecture(model.config)
    except (ScheduleError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    max_len = args.max_len or info["max_len"]
    if max_len > model.config.max_position_embeddings:
        print(f"{PROG}: error: --max-len {max_len} exceeds the model's {model.config.max_position_embeddings} "
              f"positions", file=sys.stderr)
        return 2
    pair = args.pairs or info["pair_input"]

    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    count = 0
    try:
        for number, line in enumerate(read_lines(args.input), 1):
            enc = encode_line(tokenizer, line, pair, max_len, f"{args.input}:{number}")
            result = fca_forward(model, enc["input_ids"], enc["token_type_ids"], ratios, clusters, pooling)
            row = {"line": number, "input_ids": enc["input_ids"], "logits": result["logits"],
                   "layers": result["layers"]}
            if args.flops:
                row["flops"] = fca_flops(model.config, result["layers"], pooling)
            out.write(json.dumps(row) + "\n")
            count += 1
    except InputError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    finally:
        if out is not sys.stdout:
            out.close()
    schedule = "dense" if ratios is None else f"keep {','.join(f'{r:g}' for r in ratios)}, C={clusters}, {pooling}"
    print(f"{PROG}: wrote {count} rows ({schedule}) to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
