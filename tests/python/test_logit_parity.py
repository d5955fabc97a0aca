"""Logit parity: the engine against Hugging Face BertForSequenceClassification (fp32).

The references in tests/data/parity/ were computed by tools/reference_logits.py on the same
stored weights (tools/make_parity_data.py regenerates them). Every example must agree to
1e-4 in every logit, for packed batches of 1, 7 and 32 mixed-length sequences.
"""
from __future__ import annotations

import pytest

from conftest import DEFAULT_MODEL, PARITY, classify_logits, read_jsonl

TOLERANCE = 1e-4


def assert_logits_match(engine_rows, reference_rows, label):
    assert len(engine_rows) == len(reference_rows), f"{label}: {len(engine_rows)} outputs for {len(reference_rows)} inputs"
    worst, worst_line = 0.0, None
    for ours, ref in zip(engine_rows, reference_rows):
        assert ours["line"] == ref["line"], f"{label}: output order differs at line {ref['line']}"
        assert len(ours["logits"]) == len(ref["logits"])
        diff = max(abs(a - b) for a, b in zip(ours["logits"], ref["logits"]))
        if diff > worst:
            worst, worst_line = diff, ref["line"]
    assert worst <= TOLERANCE, f"{label}: max |logit diff| {worst:.3g} at line {worst_line} exceeds {TOLERANCE}"


@pytest.mark.parametrize("batch_size", [1, 7, 32])
@pytest.mark.parametrize("kind,inputs", [("single", "single.txt"), ("pairs", "pairs.tsv")])
def test_pretrained_minilm_random_head(fcabert_bin, minilm_models, kind, inputs, batch_size):
    reference = read_jsonl((PARITY / f"minilm_{kind}.ref.jsonl").read_text())
    engine = classify_logits(fcabert_bin, minilm_models[kind], PARITY / inputs, batch_size)
    assert_logits_match(engine, reference, f"MiniLM {kind}, batch {batch_size}")


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_default_model_on_sst2_dev(fcabert_bin, batch_size):
    reference = read_jsonl((PARITY / "default_sst2_dev.ref.jsonl").read_text())
    engine = classify_logits(fcabert_bin, DEFAULT_MODEL, PARITY / "sst2_dev.txt", batch_size)
    assert_logits_match(engine, reference, f"default model, batch {batch_size}")
    # Identical predictions on all 872 examples, hence identical accuracy.
    argmax = lambda logits: max(range(len(logits)), key=logits.__getitem__)  # noqa: E731
    ours = [argmax(row["logits"]) for row in engine]
    theirs = [argmax(row["logits"]) for row in reference]
    assert ours == theirs
    gold = [int(x) for x in (PARITY / "sst2_dev_labels.txt").read_text().split()]
    assert len(gold) == 872
