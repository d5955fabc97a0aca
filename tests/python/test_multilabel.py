"""Multi-label heads: a BertForSequenceClassification checkpoint saved by transformers with
problem_type multi_label_classification (the real MiniLM encoder, a seeded random 4-label
head) converts to a multi_label model file; classify gives each label the sigmoid of Hugging
Face's logit (within 1e-4) and lists the labels above --threshold; eval and calibrate say
that they take single-label models; the converter refuses a problem_type it cannot run."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PARITY, read_jsonl, run_fcabert
from tools.fcabert_model import read_model_file
from tools.make_parity_data import minilm_source

REPO = Path(__file__).resolve().parents[2]
LABELS = ["toxic", "obscene", "insult", "threat"]
TOLERANCE = 1e-4
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")


def save_checkpoint(out: Path, problem_type: str) -> Path:
    """MiniLM with a seeded random head of 4 labels, saved as transformers saves a fine-tuned model."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(7)
    model = BertForSequenceClassification.from_pretrained(
        minilm_source(), num_labels=len(LABELS), problem_type=problem_type,
        id2label=dict(enumerate(LABELS)), label2id={name: i for i, name in enumerate(LABELS)})
    with torch.no_grad():  # logits of a few units, so that the labels differ from text to text
        model.classifier.weight.mul_(60)
        model.classifier.bias.copy_(torch.tensor([0.5, -1.0, 0.0, -2.0]))
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copy(Path(minilm_source()) / name, out / name)
    return out


def convert(source: Path, out: Path, *options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "convert.py"), str(source), "-o", str(out),
                           *options], capture_output=True, text=True)


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory):
    """(checkpoint folder, converted model file)."""
    root = tmp_path_factory.mktemp("multilabel")
    checkpoint = save_checkpoint(root / "checkpoint", "multi_label_classification")
    done = convert(checkpoint, root / "multilabel.fcab")  # no flag: problem_type says it
    assert done.returncode == 0, done.stderr
    return checkpoint, root / "multilabel.fcab"


@pytest.fixture(scope="module")
def hf_probabilities(multilabel):
    """sigmoid(Hugging Face logits) for each line of the parity texts."""
    import torch
    from transformers import BertForSequenceClassification, BertTokenizer

    checkpoint, _ = multilabel
    model = BertForSequenceClassification.from_pretrained(checkpoint).eval()
    tokenizer = BertTokenizer.from_pretrained(checkpoint)
    texts = (PARITY / "single.txt").read_text().splitlines()
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=256, return_tensors="pt")
            rows.append(torch.sigmoid(model(**encoded).logits[0]).tolist())
    return rows


def test_the_converter_reads_problem_type(multilabel):
    _, model_file = multilabel
    metadata, _ = read_model_file(model_file)
    assert metadata["head"]["kind"] == "multi_label" and metadata["head"]["labels"] == LABELS


def test_probabilities_are_the_sigmoid_of_hugging_faces_logits(fcabert_bin, multilabel, hf_probabilities):
    _, model_file = multilabel
    for batch in ("1", "7"):
        rows = read_jsonl(run_fcabert(fcabert_bin, "classify", "-q", "-m", str(model_file), "-f", "jsonl",
                                      "-b", batch, str(PARITY / "single.txt")).stdout)
        assert len(rows) == len(hf_probabilities)
        worst = max(abs(row["probabilities"][name] - ref[i]) for row, ref in zip(rows, hf_probabilities)
                    for i, name in enumerate(LABELS))
        assert worst <= TOLERANCE, f"batch {batch}: max |p - sigmoid(HF logit)| {worst:.3g}"
        for row in rows:
            assert "label" not in row
            assert row["labels"] == [name for name in LABELS if row["probabilities"][name] > 0.5]
    assert len({tuple(row["labels"]) for row in rows}) >= 3  # the label sets differ from text to text


def test_threshold_and_every_format(fcabert_bin, multilabel):
    _, model_file = multilabel
    texts = str(PARITY / "single.txt")
    strict = read_jsonl(run_fcabert(fcabert_bin, "classify", "-q", "-m", str(model_file), "-f", "jsonl",
                                    "--threshold", "0.9", texts).stdout)
    for row in strict:
        assert row["labels"] == [name for name in LABELS if row["probabilities"][name] > 0.9]
    assert any(not row["labels"] for row in strict)
    text = run_fcabert(fcabert_bin, "classify", "-q", "-m", str(model_file), "--threshold", "0.9", texts).stdout
    for line, row in zip(text.splitlines(), strict):
        labels, probabilities = line.split("\t")
        assert labels == (",".join(row["labels"]) or "(none)")
        assert [p.split("=")[0] for p in probabilities.split(" ")] == LABELS
    tsv = run_fcabert(fcabert_bin, "classify", "-q", "-m", str(model_file), "-f", "tsv", "--threshold", "0.9",
                      texts).stdout.splitlines()
    assert tsv[0].split("\t") == ["file", "line", "labels", *(f"p_{name}" for name in LABELS)]
    assert [row.split("\t")[2] for row in tsv[1:]] == [",".join(r["labels"]) or "(none)" for r in strict]


def one_error_line(done) -> str:
    assert done.returncode == 1, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fcabert: error: "), done.stderr
    return lines[0]


def test_single_label_commands_say_so(fcabert_bin, multilabel, tmp_path):
    _, model_file = multilabel
    sst2 = REPO.parent / "shared" / "data" / "glue" / "SST-2"
    cli = lambda *args: run_fcabert(fcabert_bin, *args, check=False)  # noqa: E731
    assert "GLUE tasks are single-label" in one_error_line(cli("eval", "-m", str(model_file), "--data", str(sst2)))
    assert "takes classification and regression models only" in one_error_line(
        cli("calibrate", "-m", str(model_file), "--data", str(sst2 / "dev.tsv"), "--task", "sst2",
            "--flops-target", "0.5", "-o", str(tmp_path / "x.fcab")))
    assert "--threshold applies to multi-label models only" in one_error_line(
        cli("classify", "--threshold", "0.7", str(PARITY / "single.txt")))
    assert "between 0 and 1" in one_error_line(
        cli("classify", "-m", str(model_file), "--threshold", "1.5", str(PARITY / "single.txt")))


def test_the_converter_refuses_a_problem_type_it_cannot_run(multilabel, tmp_path):
    checkpoint, _ = multilabel
    odd = tmp_path / "odd"
    shutil.copytree(checkpoint, odd)
    config = json.loads((odd / "config.json").read_text())
    config["problem_type"] = "token_classification"
    (odd / "config.json").write_text(json.dumps(config))
    done = convert(odd, tmp_path / "odd.fcab")
    assert done.returncode != 0 and "problem_type 'token_classification' is not supported" in done.stderr
    assert not (tmp_path / "odd.fcab").exists()
    both = convert(checkpoint, tmp_path / "both.fcab", "--regression")
    assert both.returncode != 0 and "cannot be a regression head" in both.stderr
