#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for an fcabert model file.

Loads the weights stored in an fcabert model file into transformers'
BertForSequenceClassification (bf16 weights are upcast to fp32, exactly what the engine
does), tokenizes with transformers' BertTokenizer built from the file's vocabulary and
settings, and writes one JSON object per input line: {"line", "input_ids", "logits"}.
This is the reference the engine's logit-parity tests compare against.

  tools/reference_logits.py --model models/sst2-minilm-l6.fcab --input texts.txt -o ref.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tools.fcabert_model import read_model_file


def _as_dict(value):
    return json.loads(value) if isinstance(value, str) else value


def load_reference(model_path: str):
    """(BertForSequenceClassification in eval mode, BertTokenizer, metadata) for a model file."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    metadata, tensors = read_model_file(model_path)
    config = _as_dict(metadata["config"])
    head = _as_dict(metadata["head"])
    tok = _as_dict(metadata["tokenizer"])
    regression = head["kind"] == "regression"
    hf_config = BertConfig(
        vocab_size=config["vocab_size"], hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_layers"], num_attention_heads=config["num_heads"],
        intermediate_size=config["intermediate_size"],
        max_position_embeddings=config["max_position_embeddings"],
        type_vocab_size=config["type_vocab_size"], layer_norm_eps=config["layer_norm_eps"],
        hidden_act="gelu", num_labels=1 if regression else len(head["labels"]),
        problem_type={"regression": "regression", "multi_label": "multi_label_classification"}.get(
            head["kind"], "single_label_classification"))
    model = BertForSequenceClassification(hf_config)
    if config.get("pooler_act", "tanh") == "relu":  # a converted DistilBERT: its pre_classifier + ReLU
        model.bert.pooler.activation = torch.nn.ReLU()
    state = {name: torch.from_numpy(array.copy()) for name, array in tensors.items()}
    model.load_state_dict(state, strict=False)  # strict=False: position_ids is a buffer
    missing = set(model.state_dict()) - set(state) - {"bert.embeddings.position_ids"}
    if missing:
        raise SystemExit(f"reference_logits.py: error: {model_path} lacks tensors {sorted(missing)[:3]}")
    model.eval()

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as vocab:
        vocab.write("\n".join(tok["vocab"]) + "\n")
    tokenizer = BertTokenizer(vocab.name, do_lower_case=tok["lowercase"], strip_accents=tok["strip_accents"],
                              tokenize_chinese_chars=tok["tokenize_chinese_chars"])
    Path(vocab.name).unlink()
    return model, tokenizer, {"config": config, "head": head, "tokenizer": tok}


def split_line(line: str, pair: bool, where: str):
    if not pair:
        return line, None
    columns = line.split("\t")
    if len(columns) != 2:
        raise SystemExit(f"reference_logits.py: error: {where}: expected two tab-separated columns")
    return columns[0], columns[1]


def reference_logits(model, tokenizer, lines, pair: bool, max_len: int, batch_size: int = 32):
    """Logits per line, computed in length-sorted, attention-masked batches."""
    import torch

    encoded = []
    for number, line in enumerate(lines, 1):
        first, second = split_line(line, pair, f"line {number}")
        encoded.append(tokenizer(first, second, truncation=True, max_length=max_len))
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    logits = [None] * len(encoded)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            width = max(len(encoded[i]["input_ids"]) for i in index)
            ids = torch.zeros(len(index), width, dtype=torch.long)
            types = torch.zeros_like(ids)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(index):
                n = len(encoded[i]["input_ids"])
                ids[row, :n] = torch.tensor(encoded[i]["input_ids"])
                types[row, :n] = torch.tensor(encoded[i]["token_type_ids"])
                mask[row, :n] = 1
            out = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
            for row, i in enumerate(index):
                logits[i] = out[row].tolist()
    return [{"line": n + 1, "input_ids": e["input_ids"], "logits": logits[n]} for n, e in enumerate(encoded)]


def read_lines(path: str):
    text = Path(path).read_bytes().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="fcabert model file")
    parser.add_argument("--input", required=True, help="one text per line (pair models: two TSV columns)")
    parser.add_argument("-o", "--output", required=True, help="JSON-lines output")
    parser.add_argument("--max-len", type=int, default=0, help="truncation length (default: the model's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not Path(args.model).is_file():
        parser.error(f"model file {args.model} does not exist")
    if not Path(args.input).is_file():
        parser.error(f"input file {args.input} does not exist")

    import torch
    torch.set_num_threads(args.threads)
    model, tokenizer, meta = load_reference(args.model)
    max_len = args.max_len or meta["tokenizer"]["max_len"]
    rows = reference_logits(model, tokenizer, read_lines(args.input), meta["head"]["pair_input"], max_len)
    with open(args.output, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    print(f"wrote {len(rows)} reference rows to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
