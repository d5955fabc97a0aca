"""DistilBERT (DistilBertForSequenceClassification: no token types, no pooler, pre_classifier +
ReLU, its own tensor names, sinusoidal or learned positions) through the same packed engine:
seeded random models at three sizes, saved by transformers, convert without flags; the engine's
logits equal Hugging Face's within 1e-4 for single texts and pairs at batch 1 and 7; FCA
agrees with the PyTorch reference (tools/fca_reference.py, which runs the converted file) and
the FLOPs report counts DistilBERT's layers."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PARITY, read_jsonl, run_fcabert
from test_fca_parity import classify_explain, compare
from tools.fcabert_model import read_model_file
from tools.make_parity_data import minilm_source

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4
SIZES = {  # name: (DistilBertConfig arguments, pair input)
    "sinusoidal-2x64": (dict(dim=64, n_layers=2, n_heads=4, hidden_dim=128, sinusoidal_pos_embds=True), False),
    "learned-3x96-pairs": (dict(dim=96, n_layers=3, n_heads=6, hidden_dim=256, sinusoidal_pos_embds=False), True),
    "sinusoidal-1x48-1head": (dict(dim=48, n_layers=1, n_heads=1, hidden_dim=96, sinusoidal_pos_embds=True), False),
}
SCHEDULE = {"keep_ratios": [0.7, 0.5, 0.4], "clusters": 2, "pooling": "weighted"}  # cut to the layer count


def texts(pair: bool) -> list[str]:
    lines = (PARITY / ("pairs.tsv" if pair else "single.txt")).read_text().splitlines()
    return lines[:60]


@pytest.fixture(scope="module", params=list(SIZES))
def distilbert(request, tmp_path_factory):
    """(name, Hugging Face model, its tokenizer, converted model file, pair input)."""
    import torch
    from transformers import BertTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    name = request.param
    arguments, pair = SIZES[name]
    root = tmp_path_factory.mktemp(name)
    torch.manual_seed(11)
    config = DistilBertConfig(vocab_size=30522, max_position_embeddings=256, initializer_range=0.2,
                              num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2},
                              **arguments)
    model = DistilBertForSequenceClassification(config).eval()
    model.save_pretrained(root / "checkpoint")
    for file in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(minilm_source()) / file, root / "checkpoint" / file)
    converted = root / "distilbert.fcab"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "convert.py"), str(root / "checkpoint"), "-o",
                           str(converted), *(["--pair"] if pair else [])], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return name, model, BertTokenizer.from_pretrained(root / "checkpoint"), converted, pair


def hf_logits(model, tokenizer, lines: list[str], pair: bool) -> list[list[float]]:
    import torch

    rows = []
    with torch.no_grad():
        for line in lines:
            parts = line.split("\t") if pair else [line]
            encoded = tokenizer(*parts, truncation=True, max_length=256, return_tensors="pt")
            rows.append(model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
                        .logits[0].tolist())
    return rows


def test_the_file_records_distilberts_head(distilbert):
    _, _, _, converted, _ = distilbert
    metadata, tensors = read_model_file(converted)
    assert metadata["config"]["pooler_act"] == "relu"
    assert not tensors["bert.embeddings.token_type_embeddings.weight"].any()  # DistilBERT has none
    assert any("DistilBERT" in note for note in metadata["provenance"]["notes"])


@pytest.mark.parametrize("batch", [1, 7])
def test_logits_match_hugging_face(fcabert_bin, distilbert, tmp_path, batch):
    name, model, tokenizer, converted, pair = distilbert
    lines = texts(pair)
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    ours = read_jsonl(run_fcabert(fcabert_bin, "classify", "-q", "-f", "jsonl", "-b", str(batch), "-m",
                                  str(converted), str(tmp_path / "in.txt")).stdout)
    reference = hf_logits(model, tokenizer, lines, pair)
    worst = max(abs(a - b) for row, ref in zip(ours, reference) for a, b in zip(row["logits"], ref))
    spread = max(abs(v) for ref in reference for v in ref)
    assert spread > 0.05  # the logits are not all near 0: a real comparison
    assert len(ours) == len(reference) and worst <= TOLERANCE, f"{name}: max |logit diff| {worst:.3g}"


def test_fca_agrees_with_the_pytorch_reference(fcabert_bin, distilbert, tmp_path):
    name, model, tokenizer, converted, pair = distilbert
    layers = model.config.n_layers
    schedule = {**SCHEDULE, "keep_ratios": SCHEDULE["keep_ratios"][:layers]}
    lines = texts(pair)
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    reference_file = tmp_path / "ref.jsonl"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "fca_reference.py"), "--model", str(converted),
                           "--input", str(tmp_path / "in.txt"), "-o", str(reference_file),
                           *(["--pairs"] if pair else []),
                           "--keep-ratios", ",".join(map(str, schedule["keep_ratios"])),
                           "--clusters", str(schedule["clusters"]), "--pooling", schedule["pooling"]],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    reference = read_jsonl(reference_file.read_text())
    # The reference runs the converted file as a BERT with a ReLU pooler; dense, it must be the
    # Hugging Face DistilBERT itself.
    dense = subprocess.run([sys.executable, str(REPO / "tools" / "fca_reference.py"), "--model", str(converted),
                            "--input", str(tmp_path / "in.txt"), "-o", "-", "--dense",
                            *(["--pairs"] if pair else [])], capture_output=True, text=True)
    assert dense.returncode == 0, dense.stderr
    hf = hf_logits(model, tokenizer, lines, pair)
    assert max(abs(a - b) for row, ref in zip(read_jsonl(dense.stdout), hf)
               for a, b in zip(row["logits"], ref)) < 1e-4
    engine = classify_explain(fcabert_bin, converted, tmp_path / "in.txt", schedule, 7)
    figures = compare(engine, reference, schedule)
    assert figures["reduced_layers"] > 0, figures
    assert len(figures["near_ties"]) <= len(lines) // 20, figures["near_ties"]


def test_the_flops_report_counts_distilberts_layers(fcabert_bin, distilbert, tmp_path):
    _, model, _, converted, pair = distilbert
    lines = texts(pair)
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    report = json.loads(run_fcabert(fcabert_bin, "profile", "-q", "--json", "-r", "1", "-m", str(converted),
                                    str(tmp_path / "in.txt")).stdout)
    tokens = [len(row["input_ids"]) for row in read_jsonl(run_fcabert(
        fcabert_bin, "tokenize", "-f", "jsonl", "-m", str(converted), str(tmp_path / "in.txt")).stdout)]
    d, f = model.config.dim, model.config.hidden_dim
    per_layer = sum(8 * n * d * d + 4 * n * d * f + 4 * n * n * d for n in tokens)  # docs/FCA.md convention
    assert [layer["total"] for layer in report["dense"]["layers"]] == [per_layer] * model.config.n_layers
    assert report["dense"]["pooler"] == 2 * d * d * len(lines)  # the pre_classifier, one [CLS] row each
