#!/usr/bin/env python3
"""Convert a Hugging Face BERT checkpoint directory into one fcabert model file.

The source directory holds config.json, the vocabulary (vocab.txt, or tokenizer.json whose
model.vocab is used), optionally tokenizer_config.json, and the weights (model.safetensors
or pytorch_model.bin) of a BertForSequenceClassification, or of a BertModel (keys with or
without the "bert." prefix) together with --init-head-seed. The output format is described
in docs/MODEL_FORMAT.md.

Examples:
  tools/convert.py build/sst2-minilm -o models/sst2-minilm-l6.fcab --task sst2
  tools/convert.py MINILM_DIR --init-head-seed 0 --labels negative,positive -o minilm.fcab
  tools/convert.py build/sst2-minilm -o sst2-fca.fcab --schedule 1,0.9,0.8,0.7,0.6,0.5 --clusters 4
  tools/convert.py build/sst2-minilm -o sst2-int8.fcab --task sst2 --dtype int8

Every problem is one line "convert.py: error: ..." on stderr and exit code 1.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.fca_schedule import ScheduleError, parse_keep_ratios, validate_keep_ratios, validate_schedule
from tools.fcabert_model import ModelFileError, expected_tensors, write_model_file

CONVERTER = "tools/convert.py"
CONVERTER_VERSION = "1.0"
PAIR_TASKS = {"mrpc", "stsb", "qqp", "mnli", "mnlimm", "qnli", "rte", "wnli"}
REGRESSION_TASKS = {"stsb"}
DEFAULT_CLUSTERS = 4
# --dtype -> the model-file dtype of the 2-D matrices (I8: int8 with a "_scale" tensor per matrix).
MATRIX_DTYPES = {"fp32": "F32", "bf16": "BF16", "int8": "I8"}
GENERIC_LABEL = re.compile(r"LABEL_\d+")
# HF's "no limit" sentinel for model_max_length is ~1e30; anything this large means unset.
UNSET_MAX_LENGTH = 10**9


class ConvertError(Exception):
    """A problem the user can fix; main() prints it as one line and exits with 1."""


# ---------------------------------------------------------------------------------------------
# command line

class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 1, like every other convert.py error
        self.exit(1, f"convert.py: error: {message} (see --help)\n")


def parse_args(argv=None):
    p = Parser(prog="convert.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SRC_DIR", help="Hugging Face checkpoint directory")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="model file to write")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--labels", metavar="A,B,...",
                   help="label names in class-index order (default: config.json id2label unless it is the "
                        "generic LABEL_0, LABEL_1, ...; required otherwise)")
    p.add_argument("--task", metavar="NAME", help="task name, e.g. sst2 (default: config.json finetuning_task)")
    p.add_argument("--regression", action="store_true",
                   help="one output named 'score' (implied by problem_type regression, one label, or --task stsb)")
    p.add_argument("--multi-label", action="store_true",
                   help="each label its own sigmoid, any number per text (implied by problem_type "
                        "multi_label_classification)")
    p.add_argument("--pair", action=argparse.BooleanOptionalAction, default=None,
                   help="sentence-pair input (default: true for mrpc, stsb, qqp, mnli, qnli, rte, wnli)")
    p.add_argument("--dtype", choices=tuple(MATRIX_DTYPES), default="fp32",
                   help="storage of the 2-D weight matrices (embeddings included): fp32, bf16 (half the "
                        "size) or int8 (a quarter, plus one fp32 scale per row; symmetric per-row "
                        "quantization, docs/MODEL_FORMAT.md); 1-D tensors stay fp32. The engine widens "
                        "bf16 and int8 to fp32 at load, so its fp32 precision then runs the rounded "
                        "weights (default: fp32)")
    p.add_argument("--schedule", metavar="R1,R2,...",
                   help="FCA keep ratios, one per layer, each in (0, 1], non-increasing (default: dense)")
    p.add_argument("--clusters", metavar="C", type=int, default=DEFAULT_CLUSTERS,
                   help=f"FCA coarse clusters per layer; 0 drops tokens (PoWER-BERT) (default: {DEFAULT_CLUSTERS})")
    p.add_argument("--pooling", choices=("weighted", "mean"), default="weighted",
                   help="how cluster vectors average their tokens (default: weighted)")
    p.add_argument("--max-len", metavar="N", type=int,
                   help="default truncation length in tokens (default: min(tokenizer_config model_max_length, "
                        "max_position_embeddings))")
    p.add_argument("--init-head-seed", metavar="S", type=int,
                   help="for a BertModel checkpoint without a classifier: create a random head "
                        "(torch.manual_seed(S), normal(0, initializer_range) weights, zero bias)")
    return p.parse_args(argv)


def parse_labels(text):
    if text is None:
        return None
    labels = [name.strip() for name in text.split(",")]
    if any(not name for name in labels):
        raise ConvertError(f"--labels {text!r} has an empty name")
    if len(set(labels)) != len(labels):
        raise ConvertError(f"--labels {text!r} repeats a name")
    return labels


def parse_schedule(text):
    """--schedule as keep ratios ([] = dense), checked as far as they can be without the
    model (their count is checked in fca_settings)."""
    if text is None:
        return []
    try:
        ratios = parse_keep_ratios(text)
        validate_keep_ratios(ratios)
    except ScheduleError as e:
        raise ConvertError(f"--schedule {text!r}: {e}") from None
    return ratios


def normalized_task(task):
    return re.sub(r"[-_]", "", task.lower()) if task else ""


def check_output(args):
    out = Path(args.output)
    if out.is_dir():
        raise ConvertError(f"output {out} is a directory; give a file name")
    if out.exists() and not args.force:
        raise ConvertError(f"output {out} exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise ConvertError(f"output directory {out.parent} does not exist")


# ---------------------------------------------------------------------------------------------
# reading the source checkpoint

@dataclass
class Source:
    path: Path
    config: dict
    vocab: list
    tokenizer_config: dict
    normalizer: dict  # tokenizer.json's BertNormalizer settings, when present
    weights: dict  # name -> float32 numpy array, as stored in the checkpoint
    weights_file: str
    notes: list = field(default_factory=list)


def read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"cannot read {what} {path}: {e}") from None


def read_vocab(src: Path):
    """(tokens in id order, tokenizer.json normalizer dict or {})."""
    tokenizer_json = read_json(src / "tokenizer.json", "tokenizer") if (src / "tokenizer.json").is_file() else {}
    normalizer = tokenizer_json.get("normalizer") or {}
    if (src / "vocab.txt").is_file():  # as transformers' load_vocab: one token per line
        with open(src / "vocab.txt", encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f.readlines()], normalizer
    vocab = (tokenizer_json.get("model") or {}).get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise ConvertError(f"{src} has no vocab.txt and no tokenizer.json with a WordPiece model.vocab")
    by_id = sorted((i, t) for t, i in vocab.items())
    if [i for i, _ in by_id] != list(range(len(by_id))):
        raise ConvertError(f"{src / 'tokenizer.json'}: model.vocab ids are not 0..{len(by_id) - 1}")
    return [t for _, t in by_id], normalizer


def read_weights(src: Path):
    """(name -> float32 numpy array, file name)."""
    import torch
    if (src / "model.safetensors").is_file():
        from safetensors.torch import load_file
        try:
            state = load_file(str(src / "model.safetensors"))
        except Exception as e:  # safetensors raises several types for a bad file
            raise ConvertError(f"cannot read {src / 'model.safetensors'}: {e}") from None
        name = "model.safetensors"
    elif (src / "pytorch_model.bin").is_file():
        try:
            state = torch.load(str(src / "pytorch_model.bin"), map_location="cpu", weights_only=True)
        except Exception as e:
            raise ConvertError(f"cannot read {src / 'pytorch_model.bin'}: {e}") from None
        name = "pytorch_model.bin"
    else:
        raise ConvertError(f"{src} has no model.safetensors or pytorch_model.bin")
    weights = {}
    for key, value in state.items():
        if not torch.is_tensor(value):
            raise ConvertError(f"{src / name}: entry {key!r} is not a tensor")
        weights[key] = value.detach().to(torch.float32).contiguous().numpy()
    return weights, name


def read_source(src_dir: str) -> Source:
    src = Path(src_dir)
    if not src.is_dir():
        raise ConvertError(f"source {src} is not a directory (expected a Hugging Face checkpoint directory)")
    if not (src / "config.json").is_file():
        raise ConvertError(f"{src} has no config.json; is it a Hugging Face checkpoint directory?")
    config = read_json(src / "config.json", "config")
    tokenizer_config = {}
    if (src / "tokenizer_config.json").is_file():
        tokenizer_config = read_json(src / "tokenizer_config.json", "tokenizer config")
    vocab, normalizer = read_vocab(src)
    weights, weights_file = read_weights(src)
    return Source(src, config, vocab, tokenizer_config, normalizer, weights, weights_file)


# ---------------------------------------------------------------------------------------------
# validate: source + options -> metadata

def positive_sizes(src: Source, keys: dict) -> dict:
    """{our name: config.json[their name]} for sizes that must be positive integers."""
    config = {}
    for ours, theirs in keys.items():
        value = src.config.get(theirs)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConvertError(f"{src.path / 'config.json'}: {theirs} must be a positive integer, got {value!r}")
        config[ours] = value
    return config


def is_distilbert(src: Source) -> bool:
    return src.config.get("model_type") == "distilbert"


def distilbert_config(src: Source) -> dict:
    """DistilBERT's config.json in BERT's terms: the same post-LN encoder, no token types (a
    zero token-type table of 2 rows stands in), and the pre_classifier + ReLU as the pooler."""
    c = src.config
    keys = {"vocab_size": "vocab_size", "hidden_size": "dim", "num_layers": "n_layers", "num_heads": "n_heads",
            "intermediate_size": "hidden_dim", "max_position_embeddings": "max_position_embeddings"}
    config = positive_sizes(src, keys)
    config["type_vocab_size"] = 2
    config["layer_norm_eps"] = 1e-12  # fixed in DistilBERT's modules
    config["hidden_act"] = c.get("activation", "gelu")
    config["pooler_act"] = "relu"
    if config["hidden_act"] != "gelu":
        raise ConvertError(f"{src.path / 'config.json'}: activation {config['hidden_act']!r} is not supported "
                           "(only 'gelu', the erf form)")
    return config


def bert_config(src: Source) -> dict:
    c = src.config
    if is_distilbert(src):
        config = distilbert_config(src)
        check_geometry(src, config)
        return config
    if c.get("model_type", "bert") != "bert":
        raise ConvertError(f"{src.path / 'config.json'}: model_type {c.get('model_type')!r} is not supported "
                           "(BERT and DistilBERT are; ELECTRA, RoBERTa and others are not)")
    if c.get("position_embedding_type", "absolute") != "absolute":
        raise ConvertError(f"{src.path / 'config.json'}: position_embedding_type "
                           f"{c['position_embedding_type']!r} is not supported (only absolute)")
    keys = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "num_layers": "num_hidden_layers",
            "num_heads": "num_attention_heads", "intermediate_size": "intermediate_size",
            "max_position_embeddings": "max_position_embeddings", "type_vocab_size": "type_vocab_size"}
    config = positive_sizes(src, keys)
    config["layer_norm_eps"] = float(c.get("layer_norm_eps", 1e-12))
    config["hidden_act"] = c.get("hidden_act", "gelu")
    if config["hidden_act"] != "gelu":
        raise ConvertError(f"{src.path / 'config.json'}: hidden_act {config['hidden_act']!r} is not supported "
                           "(only 'gelu', the erf form)")
    check_geometry(src, config)
    return config


def check_geometry(src: Source, config: dict):
    if config["hidden_size"] % config["num_heads"]:
        raise ConvertError(f"{src.path / 'config.json'}: hidden_size {config['hidden_size']} is not divisible by "
                           f"num_attention_heads {config['num_heads']}")
    if len(src.vocab) != config["vocab_size"]:
        raise ConvertError(f"{src.path}: the vocabulary has {len(src.vocab)} tokens but config.json vocab_size is "
                           f"{config['vocab_size']}")


def token_string(value, default):
    if isinstance(value, dict):  # serialized AddedToken
        value = value.get("content")
    return value if isinstance(value, str) and value else default


def tokenizer_settings(src: Source, config: dict, max_len_option) -> dict:
    tc, norm = src.tokenizer_config, src.normalizer
    from_normalizer = norm.get("type") == "BertNormalizer"
    lowercase = tc.get("do_lower_case", norm.get("lowercase", True) if from_normalizer else True)
    strip_accents = tc.get("strip_accents", norm.get("strip_accents") if from_normalizer else None)
    chinese = tc.get("tokenize_chinese_chars", norm.get("handle_chinese_chars", True) if from_normalizer else True)
    settings = {"lowercase": bool(lowercase), "strip_accents": strip_accents, "tokenize_chinese_chars": bool(chinese)}
    if strip_accents not in (None, True, False):
        raise ConvertError(f"tokenizer strip_accents {strip_accents!r} must be true, false or null")
    limit = config["max_position_embeddings"]
    model_max = tc.get("model_max_length")
    default_len = min(model_max, limit) if isinstance(model_max, int) and 0 < model_max < UNSET_MAX_LENGTH else limit
    max_len = default_len if max_len_option is None else max_len_option
    if not 2 <= max_len <= limit:
        raise ConvertError(f"--max-len {max_len} is out of range; use 2..{limit} (max_position_embeddings)")
    settings["max_len"] = max_len
    vocab = set(src.vocab)
    for key, default in (("unk_token", "[UNK]"), ("cls_token", "[CLS]"), ("sep_token", "[SEP]"),
                         ("pad_token", "[PAD]")):
        settings[key] = token_string(tc.get(key), default)
        if settings[key] not in vocab:
            raise ConvertError(f"{src.path}: {key} {settings[key]!r} is not in the vocabulary")
    settings["vocab"] = src.vocab
    return settings


def config_labels(config: dict):
    """Label names from config.json id2label, or None when absent or generic (LABEL_0, ...)."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    try:
        labels = [id2label[k] for k in sorted(id2label, key=int)]
    except (ValueError, TypeError):
        return None
    if all(GENERIC_LABEL.fullmatch(str(name)) for name in labels):
        return None
    return [str(name) for name in labels]


def classifier_outputs(weights: dict):
    w = weights.get("classifier.weight")
    return None if w is None else int(w.shape[0])


# config.json problem_type -> the model file's head kind. Anything else is refused by name.
HEAD_KINDS = {"single_label_classification": "classification", "multi_label_classification": "multi_label",
              "regression": "regression"}


def head_kind(args, src: Source, outputs, labels, task: str) -> str:
    problem_type = src.config.get("problem_type")
    if problem_type is not None and problem_type not in HEAD_KINDS:
        raise ConvertError(f"config.json problem_type {problem_type!r} is not supported: fcabert runs "
                           f"{', '.join(HEAD_KINDS)} heads")
    if args.multi_label and args.regression:
        raise ConvertError("--multi-label and --regression exclude each other")
    if args.multi_label or problem_type == "multi_label_classification":
        if args.regression or problem_type == "regression":
            raise ConvertError("a multi-label head cannot be a regression head (--regression or problem_type)")
        return "multi_label"
    config_outputs = len(src.config.get("id2label") or {}) or src.config.get("num_labels")
    regression = (args.regression or problem_type == "regression" or outputs == 1
                  or config_outputs == 1 or (labels is None and task in REGRESSION_TASKS))
    return "regression" if regression else "classification"


def head_settings(args, src: Source, weights: dict, task: str) -> dict:
    labels = parse_labels(args.labels)
    outputs = classifier_outputs(weights)
    kind = head_kind(args, src, outputs, labels, task)
    regression = kind == "regression"
    if regression:
        if labels is not None and len(labels) != 1:
            raise ConvertError(f"a regression head has one output; --labels gives {len(labels)} names")
        labels = labels or ["score"]
    elif labels is None:
        labels = config_labels(src.config)
        if labels is None:
            raise ConvertError("--labels is required: config.json has no label names (id2label is absent or "
                               "LABEL_0, LABEL_1, ...); give the class names in index order, e.g. "
                               "--labels negative,positive")
    if outputs is not None and outputs != len(labels):
        raise ConvertError(f"{len(labels)} label(s) {','.join(labels)} but the checkpoint's classifier has "
                           f"{outputs} output(s)")
    pair = args.pair if args.pair is not None else task in PAIR_TASKS
    return {"kind": kind, "labels": labels, "pair_input": pair,
            "task": task}


def fca_settings(args, config: dict) -> dict:
    ratios = parse_schedule(args.schedule)
    validate_schedule(ratios or None, config["num_layers"], args.clusters, args.pooling)
    return {"keep_ratios": ratios, "clusters": args.clusters, "pooling": args.pooling}


def check_options(args):
    """Checks that need no checkpoint, so mistakes are reported before 100 MB are read."""
    parse_labels(args.labels)
    parse_schedule(args.schedule)
    if args.clusters < 0:
        raise ConvertError(f"--clusters must be >= 0, got {args.clusters}")
    if args.max_len is not None and args.max_len < 2:
        raise ConvertError(f"--max-len must be at least 2, got {args.max_len}")
    check_output(args)


# ---------------------------------------------------------------------------------------------
# transform: checkpoint weights -> the tensors of the spec

def canonical_name(key: str):
    """The BertForSequenceClassification name of a checkpoint key, or None to drop it."""
    if key.endswith("position_ids") or key.endswith("embeddings.token_type_ids"):
        return None  # buffers, not weights
    if key.startswith("cls."):
        return None  # pre-training heads (masked LM, next sentence)
    key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)  # TF-era names
    key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
    if key.startswith(("embeddings.", "encoder.", "pooler.")):
        key = "bert." + key
    return key


# DistilBERT's tensor names -> BERT's (the layer index is kept).
DISTILBERT_NAMES = [
    (r"^(?:distilbert\.)?embeddings\.(word_embeddings|position_embeddings|LayerNorm)\.", r"bert.embeddings.\1."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.q_lin\.", r"bert.encoder.layer.\1.attention.self.query."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.k_lin\.", r"bert.encoder.layer.\1.attention.self.key."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.v_lin\.", r"bert.encoder.layer.\1.attention.self.value."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.out_lin\.",
     r"bert.encoder.layer.\1.attention.output.dense."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.sa_layer_norm\.",
     r"bert.encoder.layer.\1.attention.output.LayerNorm."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.ffn\.lin1\.", r"bert.encoder.layer.\1.intermediate.dense."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.ffn\.lin2\.", r"bert.encoder.layer.\1.output.dense."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.output_layer_norm\.", r"bert.encoder.layer.\1.output.LayerNorm."),
    (r"^pre_classifier\.", "bert.pooler.dense."),
]


def distilbert_name(key: str):
    """The BERT name of a DistilBERT checkpoint key, or None to drop it (the masked-LM head)."""
    if key.endswith("position_ids") or key.startswith(("vocab_transform.", "vocab_layer_norm.", "vocab_projector.")):
        return None
    for pattern, replacement in DISTILBERT_NAMES:
        name, count = re.subn(pattern, replacement, key)
        if count:
            return name
    return key  # classifier.*, or an unknown tensor that check_weights names


def sinusoidal_positions(positions: int, dim: int) -> np.ndarray:
    """DistilBERT's fixed position table (sinusoidal_pos_embds), as transformers builds it."""
    table = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(positions)])
    out = np.zeros((positions, dim), dtype=np.float32)
    out[:, 0::2] = np.sin(table[:, 0::2])
    out[:, 1::2] = np.cos(table[:, 1::2])
    return out


def add_distilbert_tensors(src: Source, weights: dict, config: dict):
    """What BERT has and DistilBERT does not: a zero token-type table (DistilBERT adds none),
    and the sinusoidal position table when the checkpoint leaves it out."""
    d = config["hidden_size"]
    weights["bert.embeddings.token_type_embeddings.weight"] = np.zeros((config["type_vocab_size"], d), np.float32)
    positions = "bert.embeddings.position_embeddings.weight"
    if positions not in weights and src.config.get("sinusoidal_pos_embds"):
        weights[positions] = sinusoidal_positions(config["max_position_embeddings"], d)
        src.notes.append("position embeddings: sinusoidal (sinusoidal_pos_embds), computed")
    if "bert.pooler.dense.weight" not in weights and "classifier.weight" in weights:
        raise ConvertError(f"{src.path / src.weights_file} has a classifier but no pre_classifier; "
                           "DistilBertForSequenceClassification has both")
    src.notes.append("DistilBERT: pre_classifier + ReLU as the pooler, zero token-type embeddings")


def canonical_weights(src: Source) -> dict:
    weights, dropped = {}, []
    for key, value in src.weights.items():
        name = distilbert_name(key) if is_distilbert(src) else canonical_name(key)
        if name is None:
            dropped.append(key)
        elif name in weights:
            raise ConvertError(f"{src.path / src.weights_file}: {key!r} and another key both map to {name!r}")
        else:
            weights[name] = value
    if dropped:
        src.notes.append(f"dropped {len(dropped)} non-weight or pre-training tensor(s): {', '.join(sorted(dropped))}")
    return weights


def random_head(seed: int, outputs: int, hidden: int, std: float) -> dict:
    """A classifier initialised as Hugging Face does: normal(0, initializer_range), zero bias."""
    import torch
    torch.manual_seed(seed)
    weight = torch.empty(outputs, hidden, dtype=torch.float32).normal_(mean=0.0, std=std)
    return {"classifier.weight": weight.numpy(), "classifier.bias": np.zeros(outputs, dtype=np.float32)}


def add_head(args, src: Source, weights: dict, head: dict, config: dict) -> str:
    """Adds a random head when asked; returns how the head was made (for provenance)."""
    has_classifier = "classifier.weight" in weights or "classifier.bias" in weights
    if has_classifier:
        if args.init_head_seed is not None:
            raise ConvertError("--init-head-seed: the checkpoint already has a classifier; drop the option")
        return "checkpoint"
    if args.init_head_seed is None:
        raise ConvertError(f"{src.path} is a BertModel checkpoint without a classifier; fine-tune it first "
                           "(tools/train_classifier.py) or pass --init-head-seed S for a random head")
    std = float(src.config.get("initializer_range", 0.02))
    weights.update(random_head(args.init_head_seed, len(head["labels"]), config["hidden_size"], std))
    return f"random (torch.manual_seed({args.init_head_seed}), normal(0, {std:g}), zero bias)"


def check_weights(src: Source, weights: dict, config: dict, outputs: int):
    """The weights are exactly the spec: every tensor present with its shape, finite."""
    spec = expected_tensors(config, outputs)
    if "bert.pooler.dense.weight" not in weights:
        raise ConvertError(f"{src.path / src.weights_file} has no pooler (bert.pooler.dense; DistilBERT: pre_classifier); fcabert classifies "
                           "from the pooled [CLS] vector like BertForSequenceClassification; use a checkpoint "
                           "saved with its pooler")
    for name, shape in spec:
        if name not in weights:
            raise ConvertError(f"{src.path / src.weights_file}: missing tensor {name!r} (expected shape {list(shape)})")
        if tuple(weights[name].shape) != shape:
            raise ConvertError(f"{src.path / src.weights_file}: tensor {name!r} has shape "
                               f"{list(weights[name].shape)}, but config.json implies {list(shape)}")
        if not np.isfinite(weights[name]).all():
            raise ConvertError(f"{src.path / src.weights_file}: tensor {name!r} contains NaN or infinity")
    extra = sorted(set(weights) - {name for name, _ in spec})
    if extra:
        raise ConvertError(f"{src.path / src.weights_file}: unexpected tensor {extra[0]!r}"
                           f"{f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''}; this converter handles "
                           "BertModel and BertForSequenceClassification checkpoints")


def storage_dtype(shape, dtype_option: str) -> str:
    return MATRIX_DTYPES[dtype_option] if len(shape) == 2 else "F32"


# ---------------------------------------------------------------------------------------------
# write

def provenance(args, src: Source, head_origin: str) -> dict:
    record = {
        "source": str(src.path.resolve()),
        "source_weights": src.weights_file,
        "source_architectures": src.config.get("architectures", []),
        "source_name_or_path": src.config.get("_name_or_path", ""),
        "converter": CONVERTER,
        "converter_version": CONVERTER_VERSION,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dtype": args.dtype,
        "head": head_origin,
    }
    if args.init_head_seed is not None:
        record["init_head_seed"] = args.init_head_seed
    if src.notes:
        record["notes"] = src.notes
    return record


def convert(args) -> tuple[int, dict]:
    """Validate -> transform -> write. Returns (file size, metadata)."""
    check_options(args)
    src = read_source(args.source)
    config = bert_config(src)
    task = normalized_task(args.task or src.config.get("finetuning_task") or "")
    weights = canonical_weights(src)
    if is_distilbert(src):
        add_distilbert_tensors(src, weights, config)
    head = head_settings(args, src, weights, task)
    metadata = {
        "config": config,
        "tokenizer": tokenizer_settings(src, config, args.max_len),
        "head": head,
        "fca": fca_settings(args, config),
    }
    head_origin = add_head(args, src, weights, head, config)
    check_weights(src, weights, config, len(head["labels"]))
    metadata["provenance"] = provenance(args, src, head_origin)
    tensors = [(name, weights[name], storage_dtype(shape, args.dtype))
               for name, shape in expected_tensors(config, len(head["labels"]))]
    check_output(args)  # again: the output may have appeared while we read the checkpoint
    size = write_model_file(args.output, metadata, tensors)
    return size, metadata


def main(argv=None):
    args = parse_args(argv)
    try:
        size, metadata = convert(args)
    except (ConvertError, ScheduleError, ModelFileError, OSError) as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 1
    head, fca = metadata["head"], metadata["fca"]
    schedule = ",".join(f"{r:g}" for r in fca["keep_ratios"]) or "dense"
    print(f"wrote {args.output} ({size / 1e6:.1f} MB, {args.dtype}): {metadata['config']['num_layers']} layers, "
          f"{head['kind']} {','.join(head['labels'])}, task {head['task'] or '-'}, FCA {schedule}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
