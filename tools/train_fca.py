#!/usr/bin/env python3
"""Learn an FCA keep-ratio schedule for a BERT classifier and write an fcabert model file.

The method (docs/TRAINING.md has the details and the measured runs):
  1. finetune  dense fine-tuning of the pretrained BERT on the task (tools/train_classifier.py);
  2. search    configuration search: a soft-extract step after every layer's attention scales
               each token by a learnable retention weight chosen by its significance rank (the
               FCA score of docs/FCA.md), with an L1 penalty lambda*l on layer l; the keep ratio
               of layer l is the mass of its weights, made non-increasing with depth;
               --flops-target R instead bisects lambda on short searches until the schedule's
               FLOPs on a held-out slice of TRAIN are <= R x dense;
  3. retrain   the hard FCA layers (fine tokens + C weighted clusters) with the found schedule,
               starting from the search's weights;
  4. export    tools/convert.py writes one model file carrying the schedule, C and pooling.
  5. (--reschedule R) tools/reschedule.py searches the schedule again on the retrained weights,
               scored by `fcabert eval` on the held-out rows (R: the fewest times fewer FLOPs).
  pipeline     all of it; a finished step is skipped, an interrupted one resumes.
  heldout      writes the held-out slice of TRAIN (never trained on) as a GLUE .tsv, so that
               `fcabert eval --data FILE` can compare candidate models without dev labels.

Every step saves a checkpoint (--save-every steps, and on Ctrl-C) into its output directory
and resumes from it when run again with the same options; seeds are fixed, so an interrupted
and resumed run gives the same weights as an uninterrupted one. The FCA forward is the one of
tools/fca_reference.py, unpadded, as the engine runs it: the rows of a batch that have one
length run together (fca_encode_batch), each getting what fca_encode gives it alone. With
--distill the dense teacher's logits are computed once and cached in the output directory.
--model and --teacher take a Hugging Face checkpoint directory or an fcabert model file.

Examples (from the repository root):
  # the committed SST-2 FCA model (models/README.md): the calibrated schedule, 5 epochs with distillation
  .venv/bin/python tools/train_fca.py retrain --task sst2 --train ../shared/data/glue/SST-2/train.tsv \\
      --model models/sst2-minilm-l6.fcab --schedule 1,0.65,0.3,0.05,0.05,0.05 --clusters 2 --heldout 1000 \\
      --min-tokens 12 --batch-size 32 --epochs 5 --lr 3e-5 --distill 0.8 --out build/fca/sst2-2x-e5
  # a learned schedule: search lambda for 0.48 of the dense FLOPs, then retrain and export
  .venv/bin/python tools/train_fca.py pipeline --task sst2 --train ../shared/data/glue/SST-2/train.tsv \\
      --finetuned build/sst2-minilm --flops-target 0.48 --lambda-min 0.02 --lambda-max 0.5 --probes 3 \\
      --search-steps 40 --retrain-epochs 3 --min-tokens 12 --distill 0.8 \\
      --clusters 2 --work build/fca/sst2-target0.48 -o 'build/models/sst2-fca-lambda{lambda}.fcab'
  # a pair task, all steps (dense fine-tuning included), lambda searched for half the FLOPs
  .venv/bin/python tools/train_fca.py pipeline --task mrpc --train ../shared/data/glue/MRPC/train.tsv \\
      --max-len 128 --flops-target 0.5 --work build/fca/mrpc -o build/models/mrpc-fca.fcab
  # the steps one by one
  .venv/bin/python tools/train_fca.py search --task sst2 --train ../shared/data/glue/SST-2/train.tsv \\
      --model build/sst2-minilm --lambda 0.02 --out build/fca/s
  .venv/bin/python tools/train_fca.py retrain --task sst2 --train ../shared/data/glue/SST-2/train.tsv \\
      --model build/fca/s --out build/fca/r
  .venv/bin/python tools/train_fca.py export build/fca/r -o sst2-fca.fcab --dtype bf16
  # choose between candidates on held-out train rows, not on dev
  .venv/bin/python tools/train_fca.py heldout --task sst2 --train ../shared/data/glue/SST-2/train.tsv \
      --heldout 500 --min-tokens 12 --model build/sst2-minilm -o build/sst2-heldout500.tsv

Errors are one line "train_fca.py: error: ..." and exit code 1 (2 for usage errors).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools import convert
from tools import fca_reference as fr
from tools import train_classifier as tc
from tools.atomic_write import atomic_output, write_text_atomically
from tools.glue_data import TASKS, read_glue_tsv

PROG = "train_fca.py"
STATE_FILE = "train_state.pt"
SEARCH_RESULT = "fca_search.json"
RETRAIN_RESULT = "fca_retrain.json"
FINETUNE_RESULT = "training_summary.json"
DEFAULT_TASK_MAX_LEN = {"sst2": 66, "cola": 66}
THREADS_DEFAULT = 2


class TrainError(Exception):
    """A problem the user can fix: printed as one line, exit code 1."""


# Training stopped on purpose (--stop-after) or by Ctrl-C after saving a checkpoint: one class
# for both tools, since finetune runs train_classifier's loop.
Interrupted = tc.Interrupted


# ---------------------------------------------------------------------------------------
# Soft extract (configuration search)
# ---------------------------------------------------------------------------------------

def rank_buckets(scores, buckets: int):
    """Bucket index of each row 1..n-1 of a sequence (scores [n], or [B, n] for B sequences
    of one length): the rows are ranked by FCA score (highest first, ties to the lower row, as
    fca_reference.select_fine), and rank r of the n-1 candidates falls into bucket
    floor((r + 0.5) / (n - 1) * B). Bucket b therefore always holds the b-th 1/B-slice of the
    ranking whatever the length, so a bucket weight is a length-free 'keep this fraction' and
    the mean of a layer's weights is a keep RATIO."""
    import torch

    n = scores.shape[-1]
    candidates = scores[..., 1:]
    order = torch.sort(-candidates, dim=-1, stable=True).indices  # rank -> row-1
    ranks = torch.arange(n - 1, device=scores.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(-1, order, ranks)
    position = (rank.to(torch.float64) + 0.5) / (n - 1)
    return torch.clamp((position * buckets).floor().to(torch.long), max=buckets - 1)


class SoftExtract:
    """Learnable retention weights w[l, b] in [0, 1] over rank buckets (init 1). At layer l
    every row j >= 1 of a sequence is scaled by w[l, bucket(j)]; row 0 ([CLS]) is always
    kept (scale 1). mass_l = mean_b w[l, b] is the fraction of the ranked tokens the layer
    keeps; the penalty is lambda * sum_l (l+1) * mass_l (layers counted from 1)."""

    def __init__(self, num_layers: int, buckets: int, device="cpu"):
        import torch
        if buckets < 1:
            raise TrainError(f"--buckets must be >= 1, got {buckets}")
        self.buckets = buckets
        self.weight = torch.nn.Parameter(torch.ones(num_layers, buckets, device=device))

    def __call__(self, layer: int, h, scores, n0: int):
        """h [n, d] or [B, n, d]; scores [n] or [B, n]."""
        import torch
        if h.shape[-2] < 2:
            return h
        ranked = self.weight[layer][rank_buckets(scores, self.buckets)]
        scale = torch.cat([ranked.new_ones(*ranked.shape[:-1], 1), ranked], dim=-1)
        return h * scale[..., None].to(h.dtype)

    def masses(self):
        return self.weight.mean(dim=1)

    def penalty(self, lam: float):
        import torch
        depth = torch.arange(1, self.weight.shape[0] + 1, dtype=self.weight.dtype, device=self.weight.device)
        return lam * (depth * self.masses()).sum()

    def clamp_(self):
        import torch
        with torch.no_grad():
            self.weight.clamp_(0.0, 1.0)


def schedule_from_masses(masses, min_ratio: float, digits: int = 4) -> list[float]:
    """Keep ratios from the layers' retention masses: a running minimum over depth (so the
    schedule is non-increasing), rounded, then clipped into [min_ratio, 1]. Rounding and
    clipping are monotone, so the result stays non-increasing and within (0, 1]."""
    if not 0 < min_ratio <= 1:
        raise TrainError(f"--min-ratio must be in (0, 1], got {min_ratio}")
    ratios, running = [], 1.0
    for m in masses:
        running = min(running, float(m))
        ratios.append(min(1.0, max(min_ratio, round(running, digits))))
    return ratios


# ---------------------------------------------------------------------------------------
# FLOPs of a schedule on real lengths (the FLOPs convention of docs/PROFILE.md, fca_reference.fca_flops)
# ---------------------------------------------------------------------------------------

def schedule_token_stats(n0: int, ratios, clusters: int) -> list[dict]:
    """The per-layer token counts the engine runs for a sequence of n0 tokens (docs/FCA.md)."""
    stats, n = [], n0
    for r in ratios:
        k = fr.keep_count(r, n0)
        if ratios is not None and fr.layer_reduces(n, k, clusters):
            out, kept = k + min(clusters, n - k), k
        else:
            out, kept = n, n
        stats.append({"tokens_in": n, "tokens_out": out, "kept": [0] * kept})
        n = out
    return stats


def flops_ratio(config, lengths, ratios, clusters: int, pooling: str) -> float:
    """Total FCA FLOPs / total dense FLOPs over sequences of the given lengths."""
    fca = dense = 0
    layers = config.num_hidden_layers
    for n0 in lengths:
        fca += fr.flops_totals(fr.fca_flops(config, schedule_token_stats(n0, ratios, clusters), pooling))["total"]
        dense += fr.flops_totals(fr.fca_flops(config, schedule_token_stats(n0, [1.0] * layers, clusters),
                                              pooling))["total"]
    return fca / dense if dense else 1.0


# ---------------------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------------------

def split_heldout(n_rows: int, args) -> tuple[list[int], list[int]]:
    """Row numbers of TRAIN (0 = the first data row) held out and kept for training, drawn
    by the seed; every step (and the pipeline's dense fine-tuning) draws the same split."""
    if args.heldout < 0 or args.heldout >= n_rows:
        raise TrainError(f"--heldout {args.heldout} must be >= 0 and below the {n_rows} rows of {args.train}")
    order = list(range(n_rows))
    random.Random(args.seed).shuffle(order)
    return order[:args.heldout], order[args.heldout:]


def write_train_lines(train: str, task: str, row_numbers, out: Path):
    """The header (if the task's files have one) and the chosen data lines of TRAIN, in file
    order and byte for byte, as a GLUE .tsv that every reader here and in fcabert accepts."""
    raw = Path(train).read_bytes().decode("utf-8")
    lines = raw[1:].split("\n") if raw.startswith("\ufeff") else raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = lines[:1] if TASKS[task].has_header else []
    body = lines[len(header):]
    rows = header + [body[i] for i in sorted(row_numbers)]
    write_text_atomically(out, "".join(line + "\n" for line in rows), parents=True)


class TaskData:
    """The training rows and the held-out slice of TRAIN (never dev), tokenized."""

    def __init__(self, args, tokenizer):
        if args.task not in TASKS:
            raise TrainError(f"unknown task {args.task!r}; one of {', '.join(sorted(TASKS))}")
        if not Path(args.train).is_file():
            raise TrainError(f"training file {args.train} does not exist")
        rows = read_glue_tsv(args.train, args.task)
        self.regression = not TASKS[args.task].labels
        held, rest = split_heldout(len(rows), args)
        if args.max_examples:
            rest = rest[:args.max_examples]
        self.train = [rows[i] for i in rest]
        self.heldout = [rows[i] for i in held]
        self.heldout_rows = list(held)  # row numbers in the file (0 = the first data row)
        if args.min_tokens:
            self.train = self._long_enough(tokenizer, self.train, args)
            long_enough = {id(row) for row in self._long_enough(tokenizer, self.heldout, args)}
            self.heldout_rows = [i for i, row in zip(held, self.heldout) if id(row) in long_enough]
            self.heldout = [rows[i] for i in self.heldout_rows]
            if not self.train:
                raise TrainError(f"no training row has --min-tokens {args.min_tokens} tokens")
        self.ids, self.types = tc.encode(tokenizer, self.train, args.max_len)
        self.labels = [e.label for e in self.train]
        if self.heldout:
            self.held_ids, self.held_types = tc.encode(tokenizer, self.heldout, args.max_len)
        else:
            self.held_ids, self.held_types = [], []
        self.held_labels = [e.label for e in self.heldout]

    @staticmethod
    def _long_enough(tokenizer, rows, args):
        if not rows:
            return rows
        ids, _ = tc.encode(tokenizer, rows, args.max_len)
        return [row for row, i in zip(rows, ids) if len(i) >= args.min_tokens]

    def batch_plan(self, steps: int, batch_size: int, seed: int, skip: int = 0) -> list[list[int]]:
        """All batches of the run, fixed by the seed (so a resumed run sees the same ones).
        skip drops the first batches of the seed's sequence, so that a continuation run
        (--skip-batches) trains on the batches an earlier run with the same seed did not draw."""
        rng = random.Random(seed + 1)
        plan, lengths = [], [len(i) for i in self.ids]
        while len(plan) < skip + steps:
            plan += tc.length_bucketed_batches(lengths, batch_size, rng)
        return plan[skip:skip + steps]


def load_checkpoint_dir(path: str, device: str = "cpu"):
    """(BertForSequenceClassification in train mode on `device`, fast tokenizer) from a Hugging
    Face checkpoint directory or an fcabert model file (its bf16/fp32 weights upcast to fp32,
    its vocabulary and lower-casing)."""
    p = Path(path)
    from transformers import BertForSequenceClassification, BertTokenizerFast
    if p.is_file():
        import tempfile
        model, slow, _ = fr.load_model(str(p))
        from tools.fcabert_model import parse_metadata, read_header
        labels = parse_metadata(str(p), read_header(str(p))[0])["head"]["labels"]
        model.config.id2label = dict(enumerate(labels))  # so that an export names the classes as the file does
        model.config.label2id = {label: i for i, label in enumerate(labels)}
        with tempfile.TemporaryDirectory() as directory:  # the file's vocabulary and casing, as a fast tokenizer
            slow.save_pretrained(directory)
            tokenizer = BertTokenizerFast.from_pretrained(directory)
        model.train()
    elif Path(path, "config.json").is_file():
        model = BertForSequenceClassification.from_pretrained(path)
        tokenizer = BertTokenizerFast.from_pretrained(path)
    else:
        raise TrainError(f"{path} is neither an fcabert model file nor a Hugging Face checkpoint directory "
                         f"(no config.json)")
    fr._check_architecture(model.config)
    return model.to(device), tokenizer


def length_groups(data_ids, index) -> dict[int, list[int]]:
    """The positions in `index` of each sequence length (insertion-ordered)."""
    groups: dict[int, list[int]] = {}
    for position, i in enumerate(index):
        groups.setdefault(len(data_ids[i]), []).append(position)
    return groups


def _length_batches(model, ids, types, index):
    """(positions in `index`, ids [b, n], types [b, n]) for each sequence length in `index`,
    as tensors on the model's device."""
    import torch
    device = model.bert.embeddings.word_embeddings.weight.device
    for positions in length_groups(ids, index).values():
        rows = [index[p] for p in positions]
        yield (positions, torch.tensor([ids[i] for i in rows], dtype=torch.long, device=device),
               torch.tensor([types[i] for i in rows], dtype=torch.long, device=device))


def _in_index_order(parts, order):
    import torch
    logits = torch.cat(parts)
    return logits[torch.argsort(torch.tensor(order, device=logits.device))]


def forward_rows(model, ids, types, index, schedule, clusters, pooling, soft):
    """Logits [len(index), labels] of the unpadded sequences ids[i], types[i] for i in index,
    in index order. Rows of one length run as one batch (fca_reference.fca_encode_batch: each
    gets exactly what it would alone, so the batch changes speed, not results)."""
    parts, order = [], []
    for positions, batch_ids, batch_types in _length_batches(model, ids, types, index):
        parts.append(fr.fca_encode_batch(model, batch_ids, batch_types, schedule, clusters, pooling,
                                         soft_extract=soft))
        order += positions
    return _in_index_order(parts, order)


def hidden_distillation_loss(student_hidden, teacher_hidden):
    """Mean over layers of the mean squared distance between each of the student's rows that
    stands for an original token (positions >= 0: the fine rows; clusters have no dense
    counterpart) and the dense teacher's row of that token in the same layer. Zero when the
    student reproduces the teacher on every token it keeps."""
    import torch
    total = 0.0
    for (x, positions), (dense, _) in zip(student_hidden, teacher_hidden):
        original = positions >= 0
        target = dense.gather(1, positions.clamp(min=0)[:, :, None].expand(-1, -1, dense.shape[-1]))
        squared = (x - target).pow(2).mean(dim=-1)
        total = total + (squared * original).sum() / original.sum()
    return total / len(student_hidden)


def forward_rows_distilled(model, teacher, ids, types, index, schedule, clusters, pooling):
    """forward_rows with hidden-state distillation: (logits in index order, the mean over the
    rows of hidden_distillation_loss against `teacher`, the dense model in eval mode, run
    here without gradients on the same rows)."""
    import torch
    parts, order, weighted = [], [], 0.0
    for positions, batch_ids, batch_types in _length_batches(model, ids, types, index):
        logits, hidden = fr.fca_encode_batch(model, batch_ids, batch_types, schedule, clusters, pooling,
                                             return_hidden=True)
        with torch.no_grad():
            _, dense = fr.fca_encode_batch(teacher, batch_ids, batch_types, None, 0, pooling, return_hidden=True)
        weighted = weighted + hidden_distillation_loss(hidden, dense) * len(positions)
        parts.append(logits)
        order += positions
    return _in_index_order(parts, order), weighted / len(index)


def forward_batch(model, data: TaskData, index, schedule, clusters, pooling, soft):
    """Logits [batch, labels] of the training rows `index`."""
    return forward_rows(model, data.ids, data.types, index, schedule, clusters, pooling, soft)


def task_loss(logits, labels, regression: bool):
    import torch
    import torch.nn.functional as F
    if regression:
        return F.mse_loss(logits.squeeze(-1), torch.tensor(labels, dtype=logits.dtype, device=logits.device))
    return F.cross_entropy(logits, torch.tensor([int(y) for y in labels], dtype=torch.long, device=logits.device))


def distillation_loss(student, teacher, temperature: float, regression: bool):
    """Knowledge distillation from the dense model (Hinton et al.): the KL divergence of the
    student's temperature-softened distribution from the teacher's, scaled by T^2 so its
    gradient keeps the magnitude of the task loss; for regression, the squared distance to
    the teacher's output. Zero when the student reproduces the teacher."""
    import torch.nn.functional as F
    if regression:
        return F.mse_loss(student, teacher)
    t = temperature
    return F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                    log_target=True, reduction="batchmean") * (t * t)


TEACHER_CACHE = "teacher_logits.pt"
TEACHER_CHUNK = 256  # rows per no-grad pass when filling the cache


def teacher_logits(teacher, data: TaskData, out: Path, teacher_path: str):
    """The dense teacher's logits for every training row [rows, labels], computed once (eval
    mode, no dropout, no gradient) and cached in out/teacher_logits.pt, keyed by the teacher
    file and the tokenized rows, so that retraining reads them instead of running the
    teacher at every step and a resumed run reads the same numbers."""
    import hashlib
    import torch
    digest = hashlib.sha256(json.dumps([data.ids, data.types]).encode()).hexdigest()
    key = {"teacher": str(Path(teacher_path).resolve()), "rows": len(data.ids), "sha256": digest}
    path = out / TEACHER_CACHE
    if path.is_file():
        cached = torch.load(path)
        if cached.get("key") == key:
            print(f"{PROG}: teacher logits for {len(data.ids)} rows read from {path}", file=sys.stderr, flush=True)
            return cached["logits"].to(teacher.bert.embeddings.word_embeddings.weight.device)
    started, parts = time.time(), []
    everything = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))  # few lengths per chunk
    with torch.no_grad():
        for start in range(0, len(everything), TEACHER_CHUNK):
            chunk = everything[start:start + TEACHER_CHUNK]
            parts.append(forward_rows(teacher, data.ids, data.types, chunk, None, 0, "weighted", None))
            if (start // TEACHER_CHUNK) % 20 == 19:
                print(f"{PROG}: teacher logits {start + len(chunk)}/{len(everything)} rows", file=sys.stderr,
                      flush=True)
    logits = torch.empty((len(everything), parts[0].shape[1]), dtype=parts[0].dtype, device=parts[0].device)
    logits[torch.tensor(everything, device=logits.device)] = torch.cat(parts)
    save_state(path, {"key": key, "logits": logits.cpu()})
    print(f"{PROG}: teacher logits for {len(everything)} rows in {time.time() - started:.0f} s, cached in {path}",
          file=sys.stderr, flush=True)
    return logits


def heldout_metric(model, data: TaskData, schedule, clusters, pooling) -> dict:
    """Accuracy (or Pearson r for regression) on the held-out slice of train, hard FCA."""
    import torch
    if not data.heldout:
        return {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        everything = list(range(len(data.held_ids)))
        predictions = forward_rows(model, data.held_ids, data.held_types, everything, schedule, clusters,
                                   pooling, None).tolist()
    model.train(was_training)
    if data.regression:
        xs = [p[0] for p in predictions]
        ys = data.held_labels
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
        sxx = sum((x - mx) ** 2 for x in xs)
        syy = sum((y - my) ** 2 for y in ys)
        return {"examples": len(xs), "pearson": sxy / math.sqrt(sxx * syy) if sxx and syy else 0.0}
    correct = sum(int(max(range(len(p)), key=p.__getitem__) == int(y)) for p, y in zip(predictions, data.held_labels))
    return {"examples": len(predictions), "accuracy": correct / len(predictions)}


# ---------------------------------------------------------------------------------------
# The training loop (search and retrain), with resumable checkpoints
# ---------------------------------------------------------------------------------------

def identity_of(args, mode: str, extra: dict) -> dict:
    """The options that must match for a checkpoint to be resumed."""
    keys = ("task", "train", "model", "steps", "batch_size", "lr", "lr_retention", "max_len", "max_examples",
            "heldout", "seed", "buckets", "train_word_embeddings", "warmup", "min_tokens", "distill",
            "temperature", "teacher", "skip_batches", "distill_hidden")
    ident = {k: getattr(args, k, None) for k in keys}
    ident["model"] = str(Path(args.model).resolve())
    ident["mode"] = mode
    ident.update(extra)
    return ident


def save_state(path: Path, state: dict):
    import torch
    with atomic_output(path) as out:
        torch.save(state, out)


def train_loop(args, mode: str, model, data: TaskData, out: Path, *, soft=None, lam: float = 0.0,
               schedule=None, clusters: int = 0, pooling: str = "weighted", identity: dict, targets=None,
               teacher=None):
    """Runs args.steps steps (resuming from out/train_state.pt when it exists). Returns the
    per-step log rows. With the teacher's logits for every training row (`targets`), the loss
    is (1 - a) * task loss + a * distillation loss, a = args.distill; with the dense
    `teacher` itself, b * the hidden-state distillation loss is added, b = args.distill_hidden."""
    import torch
    from transformers import get_linear_schedule_with_warmup  # noqa: F401  (schedule below is the same shape)

    torch.manual_seed(args.seed)
    if not args.train_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": params, "lr": args.lr, "weight_decay": 0.01}])
    # The retention weights take plain gradient steps (no momentum, no Adam scaling): an
    # adaptive optimizer turns tiny, noisy task gradients into lr-sized steps, so even
    # lambda = 0 would erode the mass; with SGD the weights settle where the task gradient
    # balances the penalty lambda * l / B, which is what lambda is meant to trade.
    retention_opt = torch.optim.SGD([soft.weight], lr=args.lr_retention) if soft is not None else None
    warm = int(args.warmup * args.steps)

    def model_lr(step):  # linear warm-up then linear decay, as train_classifier
        if step < warm:
            return step / max(1, warm)
        return max(0.0, (args.steps - step) / max(1, args.steps - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, model_lr)  # retention lr: constant
    plan = data.batch_plan(args.steps, args.batch_size, args.seed, getattr(args, "skip_batches", 0))

    state_path = out / STATE_FILE
    step, log, elapsed_before = 0, [], 0.0
    if state_path.is_file():
        state = torch.load(state_path, map_location=args.device)
        if state["identity"] != identity:
            diff = sorted(k for k in set(identity) | set(state["identity"])
                          if identity.get(k) != state["identity"].get(k))
            raise TrainError(f"{state_path} was saved by a run with other options ({', '.join(diff)}); use a new "
                             f"--out directory or delete the checkpoint to start over")
        model.load_state_dict(state["model"])
        if soft is not None:
            with torch.no_grad():
                soft.weight.copy_(state["soft"])
        optimizer.load_state_dict(state["optimizer"])
        if retention_opt is not None:
            retention_opt.load_state_dict(state["retention_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda_rng"]])
        step, log, elapsed_before = state["step"], state["log"], state["elapsed"]
        print(f"{PROG}: resuming {mode} from step {step}/{args.steps} ({state_path})", file=sys.stderr, flush=True)

    def checkpoint():
        save_state(state_path, {"identity": identity, "step": step, "model": model.state_dict(),
                                "soft": soft.weight.detach().clone() if soft is not None else None,
                                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                "retention_optimizer": retention_opt.state_dict() if retention_opt else None,
                                "torch_rng": torch.get_rng_state(), "log": log,
                                "cuda_rng": torch.cuda.get_rng_state_all() if args.device == "cuda" else None,
                                "elapsed": elapsed_before + time.time() - started})

    model.train()
    started, first_step, done_here = time.time(), step, 0
    try:
        while step < args.steps:
            index = plan[step]
            if teacher is not None:
                logits, hidden = forward_rows_distilled(model, teacher, data.ids, data.types, index, schedule,
                                                        clusters, pooling)
            else:
                logits = forward_batch(model, data, index, schedule, clusters, pooling, soft)
            loss = task_loss(logits, [data.labels[i] for i in index], data.regression)
            if targets is not None:
                kd = distillation_loss(logits, targets[torch.tensor(index, device=targets.device)],
                                       args.temperature, data.regression)
                loss = (1.0 - args.distill) * loss + args.distill * kd
            if teacher is not None:
                loss = loss + args.distill_hidden * hidden
            total = loss + soft.penalty(lam) if soft is not None else loss
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if soft is not None:
                retention_opt.step()
                retention_opt.zero_grad(set_to_none=True)
                soft.clamp_()
            step += 1
            done_here += 1
            row = {"step": step, "loss": round(loss.item(), 5)}
            if teacher is not None:
                row["hidden"] = round(hidden.item(), 5)
            if soft is not None:
                row["mass"] = [round(m, 4) for m in soft.masses().tolist()]
            log.append(row)
            if step % args.log_every == 0 or step == args.steps:
                rate = (step - first_step) / max(1e-9, time.time() - started)
                recent = [r["loss"] for r in log[-args.log_every:]]
                text = (f"{mode} step {step}/{args.steps} loss {sum(recent) / len(recent):.4f} "
                        f"{rate:.2f} steps/s eta {(args.steps - step) / max(rate, 1e-9) / 60:.1f} min")
                if teacher is not None:
                    recent = [r["hidden"] for r in log[-args.log_every:]]
                    text += f" (hidden {sum(recent) / len(recent):.4f})"
                if soft is not None:
                    text += " mass " + " ".join(f"{m:.3f}" for m in row["mass"])
                print(text, file=sys.stderr, flush=True)
            if step % args.save_every == 0 and step < args.steps:
                checkpoint()
            if args.stop_after and done_here >= args.stop_after and step < args.steps:
                checkpoint()
                raise Interrupted(f"stopped after {done_here} steps (--stop-after); run again to resume")
    except KeyboardInterrupt:
        checkpoint()
        raise Interrupted(f"interrupted at step {step}; checkpoint saved in {state_path}, run again to resume")
    checkpoint()
    return log, elapsed_before + time.time() - started


def save_model(model, tokenizer, out: Path):
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


# ---------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------

def cmd_finetune(args) -> dict:
    """Step 1: dense fine-tuning with tools/train_classifier.py (its code, its options)."""
    out = Path(args.out)
    if (out / FINETUNE_RESULT).is_file() and not args.force:
        print(f"{PROG}: {out} already holds a fine-tuned model ({FINETUNE_RESULT}); skipping (--force redoes it)",
              file=sys.stderr)
        return json.loads((out / FINETUNE_RESULT).read_text())
    argv = ["--task", args.task, "--train", args.train, "--out", str(out), "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--max-len", str(args.max_len),
            "--threads", str(args.threads), "--seed", str(args.seed), "--max-examples", str(args.max_examples),
            "--device", args.device]
    if args.base:
        argv += ["--base", args.base]
    if args.dev:
        argv += ["--dev", args.dev]
    if not args.train_word_embeddings:
        argv.append("--freeze-word-embeddings")
    argv += ["--save-every", str(args.save_every)]
    if getattr(args, "stop_after", 0):
        argv += ["--stop-after", str(args.stop_after)]
    print(f"{PROG}: finetune: train_classifier.py {shlex.join(argv)}", file=sys.stderr, flush=True)
    tc.main(argv)
    return json.loads((out / FINETUNE_RESULT).read_text())


def search_once(args, lam: float, out: Path) -> dict:
    """One configuration search at lambda `lam` into `out` (skipped when already finished)."""
    import torch
    result_path = out / SEARCH_RESULT
    if result_path.is_file():
        result = json.loads(result_path.read_text())
        if result.get("lambda") == lam and result.get("identity", {}).get("model") == str(Path(args.model).resolve()):
            print(f"{PROG}: search at lambda {lam:g} already done in {out}; reusing it", file=sys.stderr)
            return result
        raise TrainError(f"{out} holds a finished search with other options; use a new --out directory")
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_checkpoint_dir(args.model, args.device)
    data = TaskData(args, tokenizer)
    layers = model.config.num_hidden_layers
    soft = SoftExtract(layers, args.buckets, args.device)
    identity = identity_of(args, "search", {"lambda": lam})
    print(f"{PROG}: search lambda {lam:g}: {len(data.train)} training rows, {len(data.heldout)} held-out rows of "
          f"train, {args.steps} steps of {args.batch_size}, {args.buckets} rank buckets", file=sys.stderr, flush=True)
    log, seconds = train_loop(args, "search", model, data, out, soft=soft, lam=lam, identity=identity)
    masses = soft.masses().tolist()
    schedule = schedule_from_masses(masses, args.min_ratio)
    lengths = [len(i) for i in data.held_ids] or [len(i) for i in data.ids]
    result = {
        "lambda": lam, "schedule": schedule, "masses": [round(m, 6) for m in masses],
        "weights": [[round(w, 6) for w in row] for row in soft.weight.detach().tolist()],
        "buckets": args.buckets, "min_ratio": args.min_ratio, "clusters_for_flops": args.clusters,
        "heldout_flops_ratio": flops_ratio(model.config, lengths, schedule, args.clusters, "weighted"),
        "heldout": heldout_metric(model, data, schedule, args.clusters, "weighted"),
        "task": args.task, "train_rows": len(data.train), "steps": args.steps, "seconds": round(seconds, 1),
        "identity": identity, "final_loss": log[-1]["loss"] if log else None,
    }
    save_model(model, tokenizer, out)
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{PROG}: search lambda {lam:g}: schedule {','.join(f'{r:g}' for r in schedule)}, held-out FLOPs "
          f"{result['heldout_flops_ratio']:.3f} x dense (C={args.clusters}), held-out {result['heldout']}, "
          f"{seconds:.0f} s", file=sys.stderr, flush=True)
    del torch
    return result


def cmd_search(args) -> dict:
    """Step 2. --lambda: one search. --flops-target: geometric bisection of lambda; every probe
    is a full search of --steps steps in OUT/probe-<i>; the smallest lambda whose schedule
    meets the target on the held-out slice is copied to OUT."""
    out = Path(args.out)
    if args.flops_target is None:
        return search_once(args, args.lam, out)
    if (out / SEARCH_RESULT).is_file():
        print(f"{PROG}: {out} already holds the chosen search; reusing it", file=sys.stderr)
        return json.loads((out / SEARCH_RESULT).read_text())
    if not 0 < args.flops_target < 1:
        raise TrainError(f"--flops-target must be in (0, 1), e.g. 0.5 for half the dense FLOPs; got {args.flops_target}")
    lo, hi = math.log(args.lambda_min), math.log(args.lambda_max)
    if not lo < hi:
        raise TrainError("--lambda-min must be below --lambda-max")
    probes, best = [], None
    for i in range(args.probes):
        lam = float(f"{math.exp((lo + hi) / 2):.4g}")
        result = search_once(args, lam, out / f"probe-{i}")
        ratio = result["heldout_flops_ratio"]
        probes.append({"probe": i, "lambda": lam, "flops_ratio": ratio, "schedule": result["schedule"]})
        print(f"{PROG}: probe {i}: lambda {lam:g} -> {ratio:.3f} x dense (target {args.flops_target})",
              file=sys.stderr, flush=True)
        if ratio <= args.flops_target:
            hi = math.log(lam)
            if best is None or lam < best[0]:
                best = (lam, i)
        else:
            lo = math.log(lam)
    if best is None:
        i = min(range(len(probes)), key=lambda j: probes[j]["flops_ratio"])
        best = (probes[i]["lambda"], i)
        print(f"{PROG}: warning: no probe reached {args.flops_target} x dense; using the lowest, probe {i} "
              f"({probes[i]['flops_ratio']:.3f}); raise --lambda-max or --steps", file=sys.stderr)
    chosen = out / f"probe-{best[1]}"
    for f in chosen.iterdir():
        if f.is_file() and f.name != STATE_FILE:
            shutil.copy2(f, out / f.name)
    result = json.loads((out / SEARCH_RESULT).read_text())
    result["probes"] = probes
    result["flops_target"] = args.flops_target
    (out / SEARCH_RESULT).write_text(json.dumps(result, indent=2) + "\n")
    return result


def cmd_retrain(args) -> dict:
    """Step 3: hard FCA with the found schedule, from the search's weights."""
    out = Path(args.out)
    result_path = out / RETRAIN_RESULT
    if result_path.is_file():
        print(f"{PROG}: retrain already done in {out}; reusing it", file=sys.stderr)
        return json.loads(result_path.read_text())
    search = {}
    if Path(args.model, SEARCH_RESULT).is_file():
        search = json.loads(Path(args.model, SEARCH_RESULT).read_text())
    if args.schedule:
        try:
            schedule = fr.parse_keep_ratios(args.schedule)
        except fr.ScheduleError as error:
            raise TrainError(f"--schedule: {error}") from None
    elif search:
        schedule = search["schedule"]
    else:
        raise TrainError(f"{args.model} has no {SEARCH_RESULT} (not a search output); pass --schedule R1,R2,...")
    model, tokenizer = load_checkpoint_dir(args.model, args.device)
    try:
        fr.validate_schedule(schedule, model.config.num_hidden_layers, args.clusters, args.pooling)
    except fr.ScheduleError as error:
        raise TrainError(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    data = TaskData(args, tokenizer)
    if args.epochs:
        args.steps = max(1, math.ceil(args.epochs * len(data.train) / args.batch_size))
    identity = identity_of(args, "retrain", {"schedule": schedule, "clusters": args.clusters, "pooling": args.pooling})
    targets, teacher = None, None
    if args.distill > 0 or args.distill_hidden > 0:
        # The teacher is the starting checkpoint run dense: retraining then learns to make
        # the reduced sequence give the dense model's answers, not just the labels.
        teacher_path = args.teacher or args.model
        teacher, _ = load_checkpoint_dir(teacher_path, args.device)
        teacher.eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        if args.distill > 0:
            targets = teacher_logits(teacher, data, out, teacher_path)
        if args.distill_hidden == 0:
            teacher = None  # only its cached logits are needed
    print(f"{PROG}: retrain: schedule {','.join(f'{r:g}' for r in schedule)}, C={args.clusters} {args.pooling}, "
          f"{len(data.train)} training rows, {args.steps} steps of {args.batch_size} "
          f"({args.steps * args.batch_size / len(data.train):.2f} epochs) on {args.device}"
          + (f", distilling from the dense model (a={args.distill:g}, T={args.temperature:g})"
             if targets is not None else "")
          + (f", hidden states (b={args.distill_hidden:g})" if teacher is not None else ""),
          file=sys.stderr, flush=True)
    log, seconds = train_loop(args, "retrain", model, data, out, schedule=schedule, clusters=args.clusters,
                              pooling=args.pooling, identity=identity, targets=targets, teacher=teacher)
    lengths = [len(i) for i in data.held_ids] or [len(i) for i in data.ids]
    result = {"task": args.task, "schedule": schedule, "clusters": args.clusters, "pooling": args.pooling,
              "lambda": search.get("lambda"), "search": {k: search.get(k) for k in ("lambda", "masses", "steps",
                                                                                   "seconds", "train_rows")},
              "heldout_flops_ratio": flops_ratio(model.config, lengths, schedule, args.clusters, args.pooling),
              "heldout": heldout_metric(model, data, schedule, args.clusters, args.pooling),
              "train_rows": len(data.train), "steps": args.steps, "seconds": round(seconds, 1),
              "distill": args.distill, "temperature": args.temperature, "distill_hidden": args.distill_hidden,
              "identity": identity, "final_loss": log[-1]["loss"] if log else None}
    save_model(model, tokenizer, out)
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{PROG}: retrain done: held-out {result['heldout']}, FLOPs {result['heldout_flops_ratio']:.3f} x dense, "
          f"{seconds:.0f} s", file=sys.stderr, flush=True)
    return result


def cmd_heldout(args) -> dict:
    """The held-out slice, as the other steps draw it (same seed, --heldout, --min-tokens),
    written as a GLUE .tsv: the header and the chosen lines of TRAIN, in file order."""
    data = TaskData(args, load_checkpoint_dir(args.model)[1])  # the tokenizer --min-tokens counts with
    if not data.heldout_rows:
        raise TrainError("the held-out slice is empty (--heldout 0, or no row has --min-tokens tokens)")
    write_train_lines(args.train, args.task, data.heldout_rows, Path(args.output))
    print(f"{PROG}: wrote {len(data.heldout_rows)} held-out rows of {args.train} to {args.output}", file=sys.stderr)
    return {"rows": len(data.heldout_rows)}


def update_manifest(path: str, entry: dict):
    p = Path(path)
    entries = json.loads(p.read_text()) if p.is_file() else []
    entries = [e for e in entries if e.get("path") != entry["path"]] + [entry]
    write_text_atomically(p, json.dumps(entries, indent=2) + "\n", parents=True)


def cmd_export(args, command: str | None = None) -> dict:
    """Step 4: tools/convert.py on the retrained checkpoint, with its schedule, C and pooling."""
    src = Path(args.source)
    record = json.loads((src / RETRAIN_RESULT).read_text()) if (src / RETRAIN_RESULT).is_file() else {}
    if args.schedule:
        schedule = args.schedule
    elif record:
        schedule = ",".join(repr(float(r)) for r in record["schedule"])
    elif args.dense:
        schedule = None
    else:
        raise TrainError(f"{src} has no {RETRAIN_RESULT} (not a retrain output); pass --schedule, or --dense for a "
                         f"dense model")
    clusters = args.clusters if args.clusters is not None else record.get("clusters", convert.DEFAULT_CLUSTERS)
    pooling = args.pooling or record.get("pooling", "weighted")
    argv = [str(src), "-o", args.output, "--dtype", args.dtype, "--clusters", str(clusters), "--pooling", pooling,
            "--force"]
    if schedule:
        argv += ["--schedule", schedule]
    if args.task:
        argv += ["--task", args.task]
    if args.labels:
        argv += ["--labels", args.labels]
    code = convert.main(argv)
    if code != 0:
        raise TrainError(f"convert.py failed for {src} (message above)")
    entry = {"path": args.output, "task": args.task or record.get("task"), "lambda": record.get("lambda"),
             "schedule": [float(r) for r in schedule.split(",")] if schedule else None, "clusters": clusters,
             "pooling": pooling, "command": command or shlex.join([sys.argv[0]] + sys.argv[1:])}
    if args.manifest:
        update_manifest(args.manifest, entry)
    return entry


def finetune_rows(args, work: Path) -> str:
    """TRAIN without the held-out slice, so that the dense model, like every later step,
    never sees the rows the held-out read-outs and the candidate choice are made on."""
    if args.heldout == 0:
        return args.train
    _, rest = split_heldout(len(read_glue_tsv(args.train, args.task)), args)
    path = work / "finetune-train.tsv"
    write_train_lines(args.train, args.task, rest, path)
    print(f"{PROG}: step 1 (finetune) trains on {len(rest)} rows of {args.train}, without the {args.heldout} "
          f"held-out ones ({path})", file=sys.stderr)
    return str(path)


CALIBRATE_DIR = "calibrate"


def default_fcabert() -> str:
    return str(Path(__file__).resolve().parents[1] / "build" / "fcabert")


def calibrate_step(args, finetuned: str, work: Path) -> dict:
    """Step 2 without training: `fcabert calibrate` on the dense model, scored on the held-out
    rows of TRAIN (which no step trains on), finds the schedule of C clusters with the least
    disagreement with dense at --flops-target; retraining then starts from the dense weights.
    The engine's greedy search meets a FLOPs target exactly, where the soft-extract search's
    lambda -> FLOPs map can jump past it (MRPC 2026-12-02: lambda 0.1265 -> 0.474 x dense,
    0.1687 -> 0.151)."""
    out = work / CALIBRATE_DIR
    result_path = out / "calibrate.json"
    if result_path.is_file():
        print(f"{PROG}: step 2 (calibrate) already done in {out}; reusing it", file=sys.stderr)
        return json.loads(result_path.read_text())
    if not Path(args.fcabert).is_file():
        raise TrainError(f"--calibrate needs the fcabert binary, {args.fcabert} does not exist: build it "
                         f"(scripts/setup.sh) or pass --fcabert PATH")
    if args.heldout == 0:
        raise TrainError("--calibrate scores schedules on the held-out rows: pass --heldout N > 0")
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    heldout, calibrated = out / "heldout.tsv", out / "calibrated.fcab"
    if Path(finetuned).is_file():  # --finetuned MODEL.fcab: the engine reads it as it is
        dense = Path(finetuned)
    else:
        dense = out / "dense.fcab"
        cmd_export(argparse.Namespace(source=finetuned, output=str(dense), dtype="fp32", schedule=None, dense=True,
                                      clusters=None, pooling=None, task=args.task, labels=None, manifest=None))
    written = cmd_heldout(argparse.Namespace(**{**vars(args), "model": finetuned, "output": str(heldout)}))
    argv = [args.fcabert, "calibrate", "-m", str(dense), "--data", str(heldout), "--task", args.task,
            "--limit", "0", "--flops-target", f"{args.flops_target:g}", "--clusters", str(args.clusters),
            "--pooling", args.pooling, "--min-ratio", f"{args.min_ratio:g}", "--max-len", str(args.max_len),
            "-t", str(args.threads), "-o", str(calibrated), "--force", "--json", str(out / "search.json")]
    print(f"{PROG}: step 2 (calibrate): {shlex.join(argv)}", file=sys.stderr, flush=True)
    if subprocess.run(argv).returncode != 0:
        raise TrainError(f"fcabert calibrate failed (message above); command: {shlex.join(argv)}")
    from tools.fcabert_model import parse_metadata, read_header
    fca = parse_metadata(str(calibrated), read_header(str(calibrated))[0])["fca"]
    result = {"schedule": [float(r) for r in fca["keep_ratios"]], "clusters": fca["clusters"],
              "pooling": fca["pooling"], "flops_target": args.flops_target, "lambda": None, "steps": 0,
              "heldout_rows": written["rows"],
              "seconds": round(time.time() - started, 1), "command": shlex.join(argv)}
    write_text_atomically(result_path, json.dumps(result, indent=2) + "\n")
    print(f"{PROG}: step 2 (calibrate): schedule {','.join(f'{r:g}' for r in result['schedule'])}, C={args.clusters}, "
          f"{result['seconds']:.0f} s", file=sys.stderr, flush=True)
    return result


RESCHEDULE_DIR = "reschedule"


def reschedule_step(args, finetuned: str, work: Path, exported: dict, output: str, command: str) -> dict:
    """Step 5 (--reschedule R): tools/reschedule.py on the retrained model, on the held-out
    rows of TRAIN: the schedule of the grid around the retrained one with the best held-out
    score at >= R x fewer FLOPs (ties keep the retrained schedule) goes into OUTPUT."""
    from tools import reschedule
    out = work / RESCHEDULE_DIR
    heldout, result_path = out / "heldout.tsv", out / "reschedule.json"
    if result_path.is_file() and Path(output).is_file():
        print(f"{PROG}: step 5 (reschedule) already done in {out}; reusing it", file=sys.stderr)
        summary = json.loads(result_path.read_text())
        return {**exported, "path": output, "schedule": summary["chosen"]["keep_ratios"],
                "clusters": summary["chosen"]["clusters"], "command": command}
    cmd_heldout(argparse.Namespace(**{**vars(args), "model": finetuned, "output": str(heldout)}))
    argv = ["-m", exported["path"], "--task", args.task, "--data", str(heldout), "--min-reduction",
            f"{args.reschedule:g}", "--radius", str(args.reschedule_radius), "--fcabert", args.fcabert,
            "-t", str(args.threads), "-o", output, "--force", "--json", str(result_path)]
    if args.reschedule_grid:
        argv += ["--grid", args.reschedule_grid]
    print(f"{PROG}: step 5 (reschedule): tools/reschedule.py {shlex.join(argv)}", file=sys.stderr, flush=True)
    try:
        summary = reschedule.run(reschedule.parse_args(argv))
    except reschedule.RescheduleError as e:
        raise TrainError(f"step 5 (reschedule): {e}") from None
    entry = {**exported, "path": output, "schedule": summary["chosen"]["keep_ratios"],
             "clusters": summary["chosen"]["clusters"], "command": command}
    if args.manifest:
        update_manifest(args.manifest, entry)
    return entry


def cmd_pipeline(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    command = shlex.join([".venv/bin/python", "tools/train_fca.py"] + sys.argv[1:]) if args.command_line is None else args.command_line
    started = time.time()
    if args.finetuned:
        finetuned = args.finetuned
        print(f"{PROG}: step 1 (finetune): using the dense checkpoint {finetuned}", file=sys.stderr)
    else:
        finetuned = str(work / "finetune")
        ft = argparse.Namespace(**vars(args))
        ft.out, ft.epochs, ft.lr, ft.force = finetuned, args.finetune_epochs, args.finetune_lr, False
        ft.train = finetune_rows(args, work)
        ft.max_examples, ft.batch_size = args.finetune_max_examples, args.finetune_batch_size
        cmd_finetune(ft)
    retrain_args = argparse.Namespace(**vars(args))
    if args.calibrate:
        search = calibrate_step(args, finetuned, work)
        retrain_args.model, retrain_args.schedule = finetuned, ",".join(repr(r) for r in search["schedule"])
    else:
        search_args = argparse.Namespace(**vars(args))
        search_args.model, search_args.out, search_args.steps = finetuned, str(work / "search"), args.search_steps
        search_args.lr = args.search_lr
        search = cmd_search(search_args)
        retrain_args.model, retrain_args.schedule = str(work / "search"), None
    retrain_args.out, retrain_args.steps = str(work / "retrain"), args.retrain_steps
    retrain_args.lr, retrain_args.epochs = args.retrain_lr, args.retrain_epochs
    retrain_args.teacher = args.teacher or finetuned
    retrain = cmd_retrain(retrain_args)
    output = args.output.replace("{lambda}", f"{search['lambda']:g}") if search["lambda"] is not None else args.output
    export_args = argparse.Namespace(source=str(work / "retrain"), output=output, dtype=args.dtype,
                                     schedule=None, dense=False, clusters=None, pooling=None, task=args.task,
                                     labels=None, manifest=args.manifest)
    if args.reschedule is not None:  # export beside the work, then the schedule search writes OUTPUT
        if args.heldout == 0:
            raise TrainError("--reschedule scores schedules on the held-out rows: pass --heldout N > 0")
        (work / RESCHEDULE_DIR).mkdir(parents=True, exist_ok=True)
        export_args.output, export_args.manifest = str(work / RESCHEDULE_DIR / "retrained.fcab"), None
    entry = cmd_export(export_args, command)
    rescheduled = reschedule_step(args, finetuned, work, entry, output, command) if args.reschedule is not None else None
    if rescheduled is not None:
        entry = rescheduled
    if args.dense_output and Path(finetuned).is_file():
        shutil.copyfile(finetuned, args.dense_output)  # already a dense model file
    elif args.dense_output:
        dense_args = argparse.Namespace(**{**vars(export_args), "source": finetuned, "output": args.dense_output,
                                           "dense": True, "manifest": None})  # the manifest lists FCA models
        cmd_export(dense_args, command)
    summary = {"task": args.task, "output": output, "dense_output": args.dense_output,
               "schedule_from": "calibrate" if args.calibrate else "search",
               "lambda": search["lambda"], "schedule": retrain["schedule"],
               "clusters": retrain["clusters"], "pooling": retrain["pooling"],
               "search_seconds": search["seconds"], "retrain_seconds": retrain["seconds"],
               "search_steps": search["steps"], "retrain_steps": retrain["steps"], "train_rows": retrain["train_rows"],
               "heldout_flops_ratio": retrain["heldout_flops_ratio"], "heldout": retrain["heldout"],
               "rescheduled": entry["schedule"] if rescheduled is not None else None,
               "this_invocation_seconds": round(time.time() - started, 1), "command": command}
    (work / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return entry


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_data_options(p, *, steps_default=None):
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--train", required=True, help="GLUE train.tsv (the held-out slice for selection comes from it)")
    p.add_argument("--max-len", type=int, default=None, help="truncation length (default: 66 for sst2/cola, else 128)")
    p.add_argument("--max-examples", type=int, default=0, help="train on a seeded subset of this many rows (0 = all)")
    p.add_argument("--heldout", type=int, default=500,
                   help="rows of TRAIN held out (never trained on) for the FLOPs/accuracy read-outs and the "
                        "--flops-target selection (default 500)")
    p.add_argument("--min-tokens", type=int, default=0,
                   help="search/retrain: use only rows of at least N tokens (train and held-out slice; SST-2's train "
                        "set is mostly short phrases, its dev set whole sentences) (default 0 = all)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=positive_int, default=THREADS_DEFAULT,
                   help=f"torch CPU threads (default {THREADS_DEFAULT})")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="where training runs: cpu (default), cuda (a GPU; an error without one) or auto (cuda "
                        "when torch sees one, else cpu)")
    p.add_argument("--train-word-embeddings", action="store_true",
                   help="also train the word-embedding matrix (default: frozen, faster on CPU)")
    p.add_argument("--warmup", type=float, default=0.06, help="fraction of steps with linear lr warm-up")


def add_loop_options(p):
    p.add_argument("--log-every", type=positive_int, default=10, help="progress line every N steps")
    p.add_argument("--save-every", type=positive_int, default=50, help="checkpoint every N steps")
    p.add_argument("--skip-batches", type=non_negative_int, default=0,
                   help="start at batch N of the seed's batch sequence: a run continuing an earlier one with "
                        "the same --seed (same held-out slice) then trains on batches that run did not draw "
                        "(default 0)")
    p.add_argument("--stop-after", type=int, default=0, help=argparse.SUPPRESS)  # tests: simulate an interruption


def add_search_options(p, prefix=""):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--lambda", dest="lam", type=float, help="L1 penalty weight: lambda * l on layer l's retention mass")
    g.add_argument("--flops-target", type=float,
                   help="search lambda (geometric bisection, one search per probe) until the schedule's FLOPs on "
                        "the held-out slice are <= this fraction of dense, e.g. 0.5")
    p.add_argument("--lambda-min", type=float, default=0.001, help="--flops-target: lowest lambda (default 0.001)")
    p.add_argument("--lambda-max", type=float, default=1.0, help="--flops-target: highest lambda (default 1)")
    p.add_argument("--probes", type=positive_int, default=4, help="--flops-target: number of searches (default 4)")
    p.add_argument("--buckets", type=positive_int, default=10, help="rank buckets per layer (default 10)")
    p.add_argument("--lr-retention", type=float, default=1.0,
                   help="SGD step size of the retention weights (default 1)")
    p.add_argument("--min-ratio", type=float, default=0.05, help="smallest keep ratio in the schedule (default 0.05)")


def add_fca_options(p):
    p.add_argument("--clusters", type=int, default=4, help="FCA clusters C (default 4; 0 = PoWER-BERT dropping)")
    p.add_argument("--pooling", choices=fr.POOLINGS, default="weighted")


def add_distill_options(p):
    p.add_argument("--distill", type=float, default=0.0,
                   help="retrain: weight a in [0, 1] of distillation from the starting (dense) model; the loss is "
                        "(1 - a) * task loss + a * distillation loss (default 0 = labels only)")
    p.add_argument("--temperature", type=float, default=2.0,
                   help="retrain: softmax temperature T of the distillation (default 2)")
    p.add_argument("--distill-hidden", type=float, default=0.0,
                   help="retrain: weight b >= 0 of hidden-state distillation, added to the loss: the mean squared "
                        "distance between every layer's output row of each kept token and the dense teacher's row "
                        "of that token (clusters excluded); runs the teacher at every step (default 0 = off)")
    p.add_argument("--teacher", help="retrain: the dense checkpoint to distil from (default: the starting model; "
                                     "pipeline: the fine-tuned model of step 1)")


def parse_args(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    f = sub.add_parser("finetune", help="step 1: dense fine-tuning (tools/train_classifier.py)")
    add_data_options(f)
    f.add_argument("--base", default=tc.default_base_model(), help="pretrained checkpoint (default: the MiniLM)")
    f.add_argument("--out", required=True)
    f.add_argument("--dev", help="dev.tsv evaluated once at the end (reporting only)")
    f.add_argument("--epochs", type=float, default=1.0)
    f.add_argument("--lr", type=float, default=5e-5)
    f.add_argument("--force", action="store_true", help="redo even if OUT holds a fine-tuned model")
    f.add_argument("--save-every", type=positive_int, default=100,
                   help="checkpoint every N steps (default 100); an interrupted run resumes from the last one")
    f.add_argument("--stop-after", type=int, default=0, help=argparse.SUPPRESS)  # tests: simulate an interruption

    s = sub.add_parser("search", help="step 2: soft-extract configuration search")
    add_data_options(s)
    add_loop_options(s)
    add_search_options(s)
    s.add_argument("--model", required=True, help="the fine-tuned checkpoint directory (step 1)")
    s.add_argument("--out", required=True)
    s.add_argument("--steps", type=positive_int, default=200)
    s.add_argument("--lr", type=float, default=2e-5, help="model weights' AdamW lr (default 2e-5)")
    s.add_argument("--clusters", type=int, default=4, help="C assumed for the FLOPs read-out (default 4)")

    r = sub.add_parser("retrain", help="step 3: hard FCA retraining with the found schedule")
    add_data_options(r)
    add_loop_options(r)
    add_fca_options(r)
    r.add_argument("--model", required=True, help="the search output directory (step 2)")
    r.add_argument("--out", required=True)
    r.add_argument("--schedule", help="keep ratios (default: the search's)")
    r.add_argument("--steps", type=positive_int, default=500)
    r.add_argument("--epochs", type=float, default=0.0,
                   help="train for this many passes over the training rows instead of --steps (default 0 = use "
                        "--steps)")
    r.add_argument("--lr", type=float, default=3e-5)
    add_distill_options(r)

    e = sub.add_parser("export", help="step 4: write the fcabert model file (tools/convert.py)")
    e.add_argument("source", help="retrain output directory (or any checkpoint with --schedule/--dense)")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--dtype", choices=tuple(convert.MATRIX_DTYPES), default="bf16",
                   help="storage of the 2-D weight matrices (tools/convert.py --dtype; default: bf16)")
    e.add_argument("--schedule", help="override the keep ratios")
    e.add_argument("--dense", action="store_true", help="export without a schedule (a finetune output)")
    e.add_argument("--clusters", type=int)
    e.add_argument("--pooling", choices=fr.POOLINGS)
    e.add_argument("--task")
    e.add_argument("--labels")
    e.add_argument("--manifest", help="add/replace this model's entry in a MANIFEST.json")

    h = sub.add_parser("heldout", help="write the held-out slice of TRAIN as a GLUE .tsv (for fcabert eval)")
    add_data_options(h)
    h.add_argument("--model", required=True,
                   help="a checkpoint directory or fcabert model file whose tokenizer counts --min-tokens")
    h.add_argument("-o", "--output", required=True, help="the .tsv to write")

    q = sub.add_parser("pipeline", help="all steps; finished steps are skipped, interrupted ones resume")
    add_data_options(q)
    add_loop_options(q)
    add_search_options(q)
    add_fca_options(q)
    q.add_argument("--work", required=True, help="work directory (finetune/, search/, retrain/ inside)")
    q.add_argument("-o", "--output", required=True,
                   help="model file to write; {lambda} in the name becomes the lambda used (found by --flops-target)")
    q.add_argument("--finetuned", help="skip step 1: use this dense fine-tuned checkpoint")
    q.add_argument("--calibrate", action="store_true",
                   help="step 2 without training: `fcabert calibrate` on the held-out rows finds the schedule at "
                        "--flops-target (C = --clusters), and retraining starts from the dense weights")
    q.add_argument("--fcabert", default=default_fcabert(),
                   help="--calibrate, --reschedule: the fcabert binary (default: %(default)s)")
    q.add_argument("--reschedule", type=float, metavar="R",
                   help="step 5: search the schedule again on the retrained weights (tools/reschedule.py): the grid "
                        "around the retrained schedule, scored by `fcabert eval` on the held-out rows, the best "
                        "score at >= R x fewer FLOPs than dense wins (ties keep the retrained schedule)")
    q.add_argument("--reschedule-radius", type=non_negative_int, default=2,
                   help="--reschedule: steps of 0.05 either side of each retrained ratio (default 2)")
    q.add_argument("--reschedule-grid", help="--reschedule: the candidate ratios per layer instead, e.g. "
                                             "'1;0.6,0.7;0.2,0.3;0.05;0.05;0.05' (tools/reschedule.py --grid)")
    q.add_argument("--dense-output", help="also export the dense fine-tuned model (step 1's, or --finetuned) to this "
                                          "model file, the reference of `fcabert eval --compare-dense`")
    q.add_argument("--base", default=tc.default_base_model(), help="pretrained checkpoint for step 1")
    q.add_argument("--dev", help="step 1 only: dev.tsv evaluated once at the end (reporting only)")
    q.add_argument("--finetune-epochs", type=float, default=3.0)
    q.add_argument("--finetune-lr", type=float, default=5e-5)
    q.add_argument("--finetune-max-examples", type=int, default=0)
    q.add_argument("--finetune-batch-size", type=positive_int, default=32)
    q.add_argument("--search-steps", type=positive_int, default=200)
    q.add_argument("--search-lr", type=float, default=2e-5)
    q.add_argument("--retrain-steps", type=positive_int, default=500)
    q.add_argument("--retrain-epochs", type=float, default=0.0,
                   help="retrain for this many passes over the training rows instead of --retrain-steps")
    q.add_argument("--retrain-lr", type=float, default=3e-5)
    add_distill_options(q)
    q.add_argument("--dtype", choices=tuple(convert.MATRIX_DTYPES), default="bf16",
                   help="storage of the 2-D weight matrices (tools/convert.py --dtype; default: bf16)")
    q.add_argument("--manifest", help="add/replace this model's entry in a MANIFEST.json")
    q.add_argument("--command-line", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if getattr(args, "max_len", 0) is None:
        args.max_len = DEFAULT_TASK_MAX_LEN.get(args.task, 128)
    if hasattr(args, "max_len") and args.max_len < 2:
        p.error(f"--max-len must be >= 2, got {args.max_len}")
    if getattr(args, "clusters", None) is not None and args.clusters < 0:
        p.error(f"--clusters must be >= 0, got {args.clusters}")
    if not 0.0 <= getattr(args, "distill", 0.0) <= 1.0:
        p.error(f"--distill must be in [0, 1], got {args.distill}")
    if getattr(args, "distill_hidden", 0.0) < 0:
        p.error(f"--distill-hidden must be >= 0, got {args.distill_hidden}")
    if getattr(args, "temperature", 1.0) <= 0:
        p.error(f"--temperature must be > 0, got {args.temperature}")
    if getattr(args, "lam", None) is not None and args.lam < 0:
        p.error(f"--lambda must be >= 0, got {args.lam}")
    if getattr(args, "calibrate", False) and args.flops_target is None:
        p.error("--calibrate needs --flops-target (the FLOPs share of dense the schedule must meet)")
    if getattr(args, "epochs", 0.0) < 0 or getattr(args, "retrain_epochs", 0.0) < 0:
        p.error("--epochs / --retrain-epochs must be >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if hasattr(args, "threads"):
            import torch
            torch.set_num_threads(args.threads)
            args.device = tc.resolve_device(args.device)
        {"finetune": cmd_finetune, "search": cmd_search, "retrain": cmd_retrain, "export": cmd_export,
         "pipeline": cmd_pipeline, "heldout": cmd_heldout}[args.command](args)
    except Interrupted as stop:
        print(f"{PROG}: {stop}", file=sys.stderr)
        return 3
    except (TrainError, fr.ScheduleError, OSError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
