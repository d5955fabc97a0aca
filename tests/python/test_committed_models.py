"""The committed MRPC FCA model (models/mrpc-minilm-l6-fca.fcab, int8 weights): the engine runs
its stored schedule exactly as the PyTorch FCA reference does on the same (dequantized)
weights, and `fcabert eval` on MRPC dev gives what models/README.md states."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import read_jsonl, run_fcabert
from tools import fca_reference as fr
from tools.fcabert_model import read_header

REPO = Path(__file__).resolve().parents[2]
MRPC = REPO.parent / "shared" / "data" / "glue" / "MRPC"
MODEL = REPO / "models" / "mrpc-minilm-l6-fca.fcab"
PAIRS = 60  # the first dev pairs, for the reference comparison (a few seconds of PyTorch)


def dev_pairs(limit: int) -> list[tuple[str, str]]:
    lines = (MRPC / "dev.tsv").read_text(encoding="utf-8-sig").splitlines()[1:limit + 1]
    return [tuple(line.split("\t")[3:5]) for line in lines]


def test_the_file_stores_int8_matrices_and_a_reducing_schedule():
    header, _ = read_header(str(MODEL))
    dtypes = {entry["dtype"] for name, entry in header.items() if name != "__metadata__"}
    assert dtypes == {"I8", "F32"}
    assert header["bert.encoder.layer.0.output.dense.weight"]["dtype"] == "I8"
    _, _, info = fr.load_model(str(MODEL))
    assert info["pair_input"] and info["fca"]["clusters"] == 2 and min(info["fca"]["keep_ratios"]) < 1


def test_engine_matches_the_pytorch_fca_reference(fcabert_bin, tmp_path):
    pairs = dev_pairs(PAIRS)
    model, tokenizer, info = fr.load_model(str(MODEL))
    fca = info["fca"]
    texts = tmp_path / "pairs.txt"
    texts.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    engine = read_jsonl(run_fcabert(fcabert_bin, "classify", "--model", str(MODEL), "--format", "jsonl", "--quiet",
                                    str(texts)).stdout)
    assert len(engine) == len(pairs)
    worst = 0.0
    with torch.no_grad():
        for row, (a, b) in zip(engine, pairs):
            encoded = tokenizer(a, b, truncation=True, max_length=info["max_len"])
            logits, _ = fr.fca_encode(model, torch.tensor(encoded["input_ids"]),
                                      torch.tensor(encoded["token_type_ids"]), fca["keep_ratios"],
                                      fca["clusters"], fca["pooling"])
            worst = max(worst, max(abs(x - y) for x, y in zip(row["logits"], logits.tolist())))
    assert worst <= 1e-4, f"max |logit diff| {worst:.3g} against the PyTorch FCA reference"


def test_mrpc_dev_score_and_flops_are_the_model_cards(fcabert_bin, tmp_path):
    assert (MRPC / "dev.tsv").is_file(), f"{MRPC}/dev.tsv is missing"
    report_file = tmp_path / "report.json"
    run_fcabert(fcabert_bin, "eval", "--quiet", "--model", str(MODEL), "--data", str(MRPC), "--json",
                str(report_file), "--compare-dense")
    split = json.loads(report_file.read_text())["splits"][0]
    fca = split["fca"]
    assert fca["examples"] == 408
    # models/README.md: accuracy 79.41%, F1 86.27, 2.245x fewer FLOPs. Token counts fix the FLOPs
    # exactly; one prediction may flip on another CPU's rounding (1/408 = 0.25 points).
    assert fca["flops"]["dense_total"] / fca["flops"]["total"] == pytest.approx(2.245, abs=5e-4)
    assert fca["metrics"]["accuracy"] == pytest.approx(0.7941, abs=0.003)
    assert fca["metrics"]["f1"] == pytest.approx(0.8627, abs=0.003)
