"""Tests of tools/train_fca.py (the FCA training pipeline) on a tiny random BERT.

A 3-layer, d=32 BertForSequenceClassification with a 40-word vocabulary and a synthetic
sentiment task written as a GLUE SST-2 train.tsv. Everything runs in-process on one thread;
the whole file takes a few seconds plus one engine call.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, run_fcabert
from tools import fca_reference as fr
from tools import train_classifier as tc
from tools import train_fca as tf
from tools.fcabert_model import parse_metadata, read_header, read_stored_tensors

torch.set_num_threads(1)

WORDS = ("the a movie film was is not very good bad great awful fun boring plot actor and but it this that of "
         "to in story long short funny sad love hate best worst really quite one two three end scene").split()
POSITIVE = {"good", "great", "fun", "funny", "love", "best"}
NEGATIVE = {"bad", "awful", "boring", "sad", "hate", "worst"}
COMMON = ["--task", "sst2", "--batch-size", "8", "--threads", "1", "--heldout", "16", "--max-len", "40",
          "--seed", "7", "--log-every", "100", "--save-every", "100"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{"model": HF checkpoint dir, "train": train.tsv, "texts": some sentences}."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny_fca")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (root / "vocab.txt").write_text("".join(w + "\n" for w in vocab), encoding="utf-8")
    torch.manual_seed(1234)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                        initializer_range=0.3, hidden_act="gelu",
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    model_dir = root / "model"
    BertForSequenceClassification(config).save_pretrained(model_dir, safe_serialization=True)
    # positionally: transformers 5 calls the parameter `vocab` and ignores `vocab_file=`
    BertTokenizerFast(str(root / "vocab.txt"), do_lower_case=True).save_pretrained(model_dir)

    rng = random.Random(0)
    lines, texts = ["sentence\tlabel"], []
    for _ in range(240):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 30))]
        score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
        label = int(score > 0 or (score == 0 and rng.random() < 0.5))
        lines.append(" ".join(words) + " \t" + str(label))
        texts.append(" ".join(words))
    train = root / "train.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"model": model_dir, "train": train, "texts": texts[:12], "root": root}


def run(*argv) -> int:
    return tf.main([str(a) for a in argv])


def search(tiny, out, lam, steps=12, *extra):
    return run("search", *COMMON, "--train", tiny["train"], "--model", tiny["model"], "--out", out,
               "--lambda", lam, "--steps", steps, "--lr-retention", "0.3", *extra)


@pytest.fixture(scope="module")
def searched(tiny):
    """Searches at lambda 0 and at lambda 2 (same seed, same data)."""
    results = {}
    for lam in (0.0, 2.0):
        out = tiny["root"] / f"search-{lam}"
        assert search(tiny, out, lam) == 0
        results[lam] = (out, json.loads((out / tf.SEARCH_RESULT).read_text()))
    return results


# ---------------------------------------------------------------------------------------
# soft extract

def test_rank_buckets_are_length_free():
    # 11 rows: row 0 is [CLS]; the 10 others ranked by score fall one per bucket of 10
    scores = torch.tensor([9.0, 0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0], dtype=torch.float64)
    assert tf.rank_buckets(scores, 10).tolist() == [8, 0, 4, 6, 2, 7, 1, 5, 3, 9]
    # 5 candidates in 10 buckets use every other bucket; ties go to the lower row
    scores = torch.tensor([0.0, 1.0, 1.0, 3.0, 0.5, 0.5], dtype=torch.float64)
    assert tf.rank_buckets(scores, 10).tolist() == [3, 5, 1, 7, 9]
    # 2 buckets: the better half of the ranking gets bucket 0 at any length
    for n in (3, 8, 31):
        b = tf.rank_buckets(torch.arange(n, 0, -1, dtype=torch.float64), 2).tolist()
        assert b == sorted(b) and b.count(0) in ((n - 1) // 2, (n - 1) // 2 + 1)


def test_soft_extract_scales_rows_by_their_bucket_weight():
    soft = tf.SoftExtract(num_layers=2, buckets=2)
    with torch.no_grad():
        soft.weight[1] = torch.tensor([0.75, 0.25])
    h = torch.ones(5, 3)
    scores = torch.tensor([0.0, 0.1, 0.9, 0.8, 0.2], dtype=torch.float64)
    out = soft(1, h, scores, 5)
    assert out[:, 0].tolist() == [1.0, 0.25, 0.75, 0.75, 0.25]  # [CLS] always 1; top half 0.75
    assert torch.equal(soft(0, h, scores, 5), h)  # layer 0 weights are still 1


def test_rank_buckets_of_a_batch_are_each_rows_own():
    g = torch.Generator().manual_seed(3)
    scores = torch.rand(4, 13, generator=g, dtype=torch.float64)
    scores[2, 5] = scores[2, 7]  # a tie inside one row
    batch = tf.rank_buckets(scores, 5)
    for row in range(4):
        assert batch[row].tolist() == tf.rank_buckets(scores[row], 5).tolist()


def test_soft_extract_of_a_batch_is_each_rows_own():
    soft = tf.SoftExtract(num_layers=1, buckets=3)
    with torch.no_grad():
        soft.weight[0] = torch.tensor([0.9, 0.5, 0.1])
    h = torch.rand(3, 8, 4)
    scores = torch.rand(3, 8, dtype=torch.float64)
    out = soft(0, h, scores, 8)
    for row in range(3):
        assert torch.equal(out[row], soft(0, h[row], scores[row], 8))


def test_schedule_from_masses_is_non_increasing_and_in_range():
    assert tf.schedule_from_masses([0.9, 0.95, 0.5, 0.6, 0.0], 0.05) == [0.9, 0.9, 0.5, 0.5, 0.05]
    assert tf.schedule_from_masses([1.0, 1.0], 0.05) == [1.0, 1.0]


def test_flops_ratio_counts_clusters_and_real_lengths():
    from transformers import BertConfig
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    assert tf.flops_ratio(config, [10, 20], [1.0, 1.0], 4, "weighted") == 1.0
    assert tf.flops_ratio(config, [20], [0.5, 0.5], 0, "weighted") < tf.flops_ratio(config, [20], [0.5, 0.5], 4,
                                                                                      "weighted") < 1.0
    # too short to reduce (m <= C): dense
    assert tf.flops_ratio(config, [5], [0.5, 0.5], 4, "weighted") == 1.0


def test_penalty_lowers_retention_mass_and_lambda_zero_does_not(searched):
    free, penalised = searched[0.0][1], searched[2.0][1]
    assert min(free["masses"]) >= 0.9, free["masses"]
    assert max(penalised["masses"]) < 0.9, penalised["masses"]
    assert sum(penalised["masses"]) < sum(free["masses"]) - 0.5
    # the penalty is lambda * l: the deepest layer loses the most
    assert penalised["masses"][-1] <= penalised["masses"][0]
    assert penalised["heldout_flops_ratio"] < free["heldout_flops_ratio"]


def test_search_schedule_is_non_increasing_within_range(searched):
    for _, result in searched.values():
        ratios = result["schedule"]
        assert len(ratios) == 3
        assert all(0 < r <= 1 for r in ratios), ratios
        assert all(a >= b for a, b in zip(ratios, ratios[1:])), ratios


# ---------------------------------------------------------------------------------------
# retrain + export: the engine gives PyTorch's logits

def test_exported_model_matches_pytorch_in_the_engine(tiny, searched, fcabert_bin, tmp_path):
    search_dir, result = searched[2.0]
    schedule = result["schedule"]
    assert min(schedule) < 0.8, schedule  # the schedule must actually reduce for this test to mean anything
    out = tmp_path / "retrain"
    assert run("retrain", *COMMON, "--train", tiny["train"], "--model", search_dir, "--out", out,
               "--steps", "4", "--clusters", "2") == 0
    record = json.loads((out / tf.RETRAIN_RESULT).read_text())
    assert record["schedule"] == schedule and record["clusters"] == 2

    model_file = tmp_path / "tiny-fca.fcab"
    manifest = tmp_path / "MANIFEST.json"
    assert run("export", out, "-o", model_file, "--dtype", "fp32", "--task", "sst2", "--manifest", manifest) == 0
    fca = parse_metadata(str(model_file), read_header(str(model_file))[0])["fca"]
    fca = json.loads(fca) if isinstance(fca, str) else fca
    ratios = [float(r) for r in fca["keep_ratios"]]
    assert ratios == schedule and fca["clusters"] == 2 and fca["pooling"] == "weighted"
    assert all(0 < r <= 1 for r in ratios) and all(a >= b for a, b in zip(ratios, ratios[1:]))
    entry = json.loads(manifest.read_text())[0]
    assert entry["schedule"] == schedule and entry["clusters"] == 2 and entry["path"] == str(model_file)

    model, tokenizer = tf.load_checkpoint_dir(str(out))
    model.eval()
    texts = tiny["texts"]
    inputs = tmp_path / "texts.txt"
    inputs.write_text("\n".join(texts) + "\n", encoding="utf-8")
    engine = [json.loads(line) for line in run_fcabert(fcabert_bin, "classify", "--model", str(model_file),
                                                          "--format", "jsonl", "--quiet", "--explain",
                                                          str(inputs)).stdout.splitlines() if line.strip()]
    assert len(engine) == len(texts)
    reduced = 0
    for text, row in zip(texts, engine):
        enc = tokenizer(text, truncation=True, max_length=64)
        ref = fr.fca_forward(model, enc["input_ids"], enc["token_type_ids"], schedule, 2, "weighted")
        assert [l["tokens_out"] for l in row["fca"]["layers"]] == [l["tokens_out"] for l in ref["layers"]]
        reduced += sum(l["tokens_out"] < l["tokens_in"] for l in ref["layers"])
        diff = max(abs(a - b) for a, b in zip(row["logits"], ref["logits"]))
        assert diff <= 1e-4, f"{text!r}: engine {row['logits']} vs PyTorch {ref['logits']}"
    assert reduced > 0


# ---------------------------------------------------------------------------------------
# distillation from the dense model during retraining

def test_distillation_loss_is_zero_only_when_the_student_matches_the_teacher():
    teacher = torch.tensor([[2.0, -1.0], [0.5, 0.25]])
    assert tf.distillation_loss(teacher.clone(), teacher, 2.0, regression=False).item() == pytest.approx(0, abs=1e-7)
    moved = teacher + torch.tensor([[-1.0, 1.0], [0.0, 0.0]])
    assert tf.distillation_loss(moved, teacher, 2.0, regression=False).item() > 0.01
    assert tf.distillation_loss(torch.tensor([[1.0]]), torch.tensor([[3.0]]), 2.0, regression=True).item() == 4.0


def kl_to_dense(student_dir, teacher_dir, tokenizer_texts, schedule, clusters):
    """Mean KL(teacher dense || student with hard FCA) over some sentences."""
    student, tokenizer = tf.load_checkpoint_dir(str(student_dir))
    teacher, _ = tf.load_checkpoint_dir(str(teacher_dir))
    student.eval(), teacher.eval()
    total = 0.0
    with torch.no_grad():
        for text in tokenizer_texts:
            enc = tokenizer(text, truncation=True, max_length=40)
            s = fr.fca_encode(student, enc["input_ids"], enc["token_type_ids"], schedule, clusters)[0]
            t = fr.fca_encode(teacher, enc["input_ids"], enc["token_type_ids"])[0]
            total += torch.sum(torch.softmax(t, -1) * (torch.log_softmax(t, -1) - torch.log_softmax(s, -1))).item()
    return total / len(tokenizer_texts)


def retrain_variants(tiny, tmp_path, schedule, flag, values):
    """{value: output dir} of one short retraining per value of `flag`, all else equal."""
    outs = {}
    for value in values:
        outs[value] = tmp_path / f"retrain{flag}{value}"
        assert run("retrain", *COMMON, "--train", tiny["train"], "--model", tiny["model"], "--out", outs[value],
                   "--schedule", schedule, "--clusters", "1", "--steps", "20", "--lr", "3e-3", flag, value) == 0
    return outs


def test_distilled_retraining_stays_closer_to_the_dense_model(tiny, tmp_path):
    schedule, texts = "0.6,0.4,0.3", tiny["texts"]
    outs = retrain_variants(tiny, tmp_path, schedule, "--distill", ("0", "1"))
    record = json.loads((outs["1"] / tf.RETRAIN_RESULT).read_text())
    assert record["distill"] == 1.0 and record["identity"]["distill"] == 1.0
    ratios = [float(r) for r in schedule.split(",")]
    labels_only = kl_to_dense(outs["0"], tiny["model"], texts, ratios, 1)
    distilled = kl_to_dense(outs["1"], tiny["model"], texts, ratios, 1)
    assert distilled < 0.5 * labels_only, (distilled, labels_only)


def test_distill_weight_out_of_range_is_a_usage_error(tiny, capsys):
    with pytest.raises(SystemExit) as info:
        run("retrain", *COMMON, "--train", tiny["train"], "--model", tiny["model"], "--out", "x",
            "--schedule", "1,1,1", "--distill", "1.5")
    assert info.value.code == 2 and "--distill must be in [0, 1]" in capsys.readouterr().err


def test_hidden_distillation_loss_counts_only_rows_of_original_tokens():
    teacher = [(torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]), torch.tensor([[0, 1, 2]]))]
    # the student kept tokens 0 and 2 and made one cluster; its token rows equal the teacher's
    student = [(torch.tensor([[[1.0, 2.0], [5.0, 6.0], [9.0, 9.0]]]), torch.tensor([[0, 2, -1]]))]
    assert tf.hidden_distillation_loss(student, teacher).item() == 0.0  # the cluster row is not compared
    moved = [(torch.tensor([[[1.0, 2.0], [5.0, 8.0], [9.0, 9.0]]]), torch.tensor([[0, 2, -1]]))]
    assert tf.hidden_distillation_loss(moved, teacher).item() == pytest.approx(1.0)  # (2^2 / 2 dims) / 2 rows


def hidden_loss_to_dense(student_dir, teacher_dir, data, schedule, clusters):
    student, _ = tf.load_checkpoint_dir(str(student_dir))
    teacher, _ = tf.load_checkpoint_dir(str(teacher_dir))
    student.eval(), teacher.eval()
    with torch.no_grad():
        index = list(range(len(data.held_ids)))
        return tf.forward_rows_distilled(student, teacher, data.held_ids, data.held_types, index, schedule,
                                         clusters, "weighted")[1].item()


def test_hidden_distilled_retraining_keeps_the_kept_rows_closer_to_the_dense_model(tiny, tmp_path):
    schedule = "0.6,0.4,0.3"
    outs = retrain_variants(tiny, tmp_path, schedule, "--distill-hidden", ("0", "20"))
    record = json.loads((outs["20"] / tf.RETRAIN_RESULT).read_text())
    assert record["distill_hidden"] == 20.0 and record["identity"]["distill_hidden"] == 20.0
    data, ratios = tiny_data(tiny), [float(r) for r in schedule.split(",")]
    untouched = hidden_loss_to_dense(tiny["model"], tiny["model"], data, ratios, 1)
    labels_only = hidden_loss_to_dense(outs["0"], tiny["model"], data, ratios, 1)
    distilled = hidden_loss_to_dense(outs["20"], tiny["model"], data, ratios, 1)
    assert hidden_loss_to_dense(tiny["model"], tiny["model"], data, None, 0) == 0.0
    assert distilled < 0.5 * labels_only, (distilled, labels_only, untouched)


def test_negative_hidden_distillation_weight_is_a_usage_error(tiny, capsys):
    with pytest.raises(SystemExit) as info:
        run("retrain", *COMMON, "--train", tiny["train"], "--model", tiny["model"], "--out", "x",
            "--schedule", "1,1,1", "--distill-hidden", "-1")
    assert info.value.code == 2 and "--distill-hidden must be >= 0" in capsys.readouterr().err


def tiny_data(tiny, *extra):
    argv = [*COMMON[:COMMON.index("--log-every")], "--train", str(tiny["train"]), *extra]
    args = tf.parse_args(["heldout", *argv, "--model", str(tiny["model"]), "-o", "x"])
    return tf.TaskData(args, tf.load_checkpoint_dir(str(tiny["model"]))[1])


def test_forward_rows_groups_lengths_and_keeps_the_callers_order(tiny):
    model, _ = tf.load_checkpoint_dir(str(tiny["model"]))
    model.eval()
    data = tiny_data(tiny)
    index = list(range(0, 60, 3))
    assert len({len(data.ids[i]) for i in index}) > 3  # several lengths in one call
    schedule = [0.7, 0.5, 0.3]
    with torch.no_grad():
        got = tf.forward_rows(model, data.ids, data.types, index, schedule, 2, "weighted", None)
        for row, i in zip(got, index):
            alone = fr.fca_encode(model, data.ids[i], data.types[i], schedule, 2, "weighted")[0]
            assert torch.allclose(row, alone, atol=2e-5, rtol=0)


def test_teacher_logits_are_the_dense_models_and_cached(tiny, tmp_path, capsys):
    teacher, _ = tf.load_checkpoint_dir(str(tiny["model"]))
    teacher.eval()
    data = tiny_data(tiny)
    logits = tf.teacher_logits(teacher, data, tmp_path, str(tiny["model"]))
    assert logits.shape == (len(data.ids), 2)
    with torch.no_grad():
        for i in (0, 17, len(data.ids) - 1):
            assert torch.allclose(logits[i], fr.fca_encode(teacher, data.ids[i], data.types[i])[0], atol=2e-5)
    assert "cached in" in capsys.readouterr().err
    again = tf.teacher_logits(teacher, data, tmp_path, str(tiny["model"]))
    assert torch.equal(again, logits) and "read from" in capsys.readouterr().err
    # other rows (another --max-examples): the cache's key differs, so the logits are recomputed
    fewer = tiny_data(tiny, "--max-examples", "50")
    assert tf.teacher_logits(teacher, fewer, tmp_path, str(tiny["model"])).shape == (50, 2)
    assert "cached in" in capsys.readouterr().err


def test_retrain_by_epochs_from_a_model_file(tiny, tmp_path):
    model_file = tmp_path / "dense.fcab"
    assert run("export", tiny["model"], "-o", model_file, "--dense", "--dtype", "fp32", "--task", "sst2",
               "--labels", "negative,positive") == 0
    out = tmp_path / "r"
    assert run("retrain", *COMMON, "--train", tiny["train"], "--model", model_file, "--out", out,
               "--schedule", "0.6,0.4,0.3", "--clusters", "1", "--epochs", "0.5", "--distill", "0.5") == 0
    record = json.loads((out / tf.RETRAIN_RESULT).read_text())
    assert record["steps"] == 14  # ceil(0.5 * 224 rows / batch 8)
    assert (out / tf.TEACHER_CACHE).is_file() and (out / "config.json").is_file()
    # the file's vocabulary and casing tokenize as the checkpoint's own tokenizer does
    _, from_file = tf.load_checkpoint_dir(str(model_file))
    _, original = tf.load_checkpoint_dir(str(tiny["model"]))
    for text in tiny["texts"] + ["The MOVIE was Not GOOD, zebra!"]:
        assert from_file(text)["input_ids"] == original(text)["input_ids"]


def test_device_cuda_without_a_gpu_is_one_line_error(tiny, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert run("retrain", *COMMON, "--train", tiny["train"], "--model", tiny["model"], "--out", tmp_path / "r",
               "--schedule", "1,1,1", "--device", "cuda") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sees no CUDA GPU" in err[0]
    with pytest.raises(SystemExit) as info:  # the dense fine-tuning step has the same option
        tf.tc.main(["--task", "sst2", "--train", str(tiny["train"]), "--base", str(tiny["model"]),
                    "--out", str(tmp_path / "f"), "--device", "cuda"])
    assert "sees no CUDA GPU" in str(info.value.code)


# ---------------------------------------------------------------------------------------
# the held-out slice as a file for fcabert eval

@pytest.mark.parametrize("min_tokens", [0, 14])
def test_heldout_file_is_exactly_the_rows_never_trained_on(tiny, tmp_path, min_tokens):
    out = tmp_path / "heldout.tsv"
    data_options = COMMON[:COMMON.index("--log-every")]  # heldout has no training-loop options
    argv = [*data_options, "--train", tiny["train"], "--min-tokens", min_tokens]
    assert run("heldout", *argv, "--model", tiny["model"], "-o", out) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    train_lines = tiny["train"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == train_lines[0] == "sentence\tlabel"
    held = lines[1:]
    assert held and all(line in train_lines[1:] for line in held)
    assert [train_lines.index(line) for line in held] == sorted(train_lines.index(line) for line in held)
    # the same slice the training steps hold out: none of its sentences is a training row
    data = tf.TaskData(tf.parse_args(["heldout", *map(str, argv), "--model", str(tiny["model"]), "-o", "x"]),
                       tf.load_checkpoint_dir(str(tiny["model"]))[1])
    assert len(held) == len(data.heldout) == (16 if min_tokens == 0 else len(data.heldout)) > 0
    trained = {e.texts for e in data.train}
    assert not any((line.split("\t")[0],) in trained for line in held)
    if min_tokens:
        assert len(held) < 16


def test_heldout_from_a_model_file_is_the_checkpoints_slice(tiny, tmp_path):
    model_file, from_dir, from_file = tmp_path / "dense.fcab", tmp_path / "a.tsv", tmp_path / "b.tsv"
    assert run("export", tiny["model"], "-o", model_file, "--dense", "--dtype", "fp32", "--task", "sst2",
               "--labels", "negative,positive") == 0
    argv = [*COMMON[:COMMON.index("--log-every")], "--train", tiny["train"], "--min-tokens", "14"]
    assert run("heldout", *argv, "--model", tiny["model"], "-o", from_dir) == 0
    assert run("heldout", *argv, "--model", model_file, "-o", from_file) == 0
    assert from_file.read_text(encoding="utf-8") == from_dir.read_text(encoding="utf-8")


def test_skip_batches_continues_the_seeds_batch_sequence(tiny):
    argv = [*COMMON[:COMMON.index("--log-every")], "--train", str(tiny["train"])]
    data = tf.TaskData(tf.parse_args(["heldout", *argv, "--model", str(tiny["model"]), "-o", "x"]),
                       tf.load_checkpoint_dir(str(tiny["model"]))[1])
    whole = data.batch_plan(40, 8, 7)  # more than one pass over the 224 training rows
    first, rest = data.batch_plan(12, 8, 7), data.batch_plan(28, 8, 7, skip=12)
    assert first + rest == whole
    # a continuation of 12 steps starts where the first run stopped: on batches it never drew
    drawn = {tuple(b) for b in first}
    assert not any(tuple(b) in drawn for b in data.batch_plan(12, 8, 7, skip=12))


# ---------------------------------------------------------------------------------------
# resume

def weights_of(directory):
    from safetensors.torch import load_file
    return load_file(str(directory / "model.safetensors"))


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tiny, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert search(tiny, whole, 0.3, 6) == 0
    assert search(tiny, parts, 0.3, 6, "--stop-after", "2") == 3  # interrupted, checkpoint saved
    assert (parts / tf.STATE_FILE).is_file() and not (parts / tf.SEARCH_RESULT).exists()
    assert search(tiny, parts, 0.3, 6, "--stop-after", "2") == 3
    assert search(tiny, parts, 0.3, 6) == 0
    a, b = json.loads((whole / tf.SEARCH_RESULT).read_text()), json.loads((parts / tf.SEARCH_RESULT).read_text())
    assert a["weights"] == b["weights"] and a["schedule"] == b["schedule"]
    wa, wb = weights_of(whole), weights_of(parts)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    # the interrupted run really did train in pieces: its log continues across the resumes
    state = torch.load(parts / tf.STATE_FILE)
    assert state["step"] == 6 and [r["step"] for r in state["log"]] == list(range(1, 7))


def finetune(tiny, out, *extra):
    # 240 rows in batches of 16, 0.5 epoch: int(15 * 0.5) = 7 steps (dropout on: the random state
    # must resume too)
    return run("finetune", "--task", "sst2", "--train", tiny["train"], "--base", tiny["model"], "--out", out,
               "--epochs", "0.5", "--batch-size", "16", "--threads", "1", "--max-len", "40", *extra)


def test_finetune_resumes_to_the_weights_of_an_uninterrupted_run(tiny, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert finetune(tiny, whole) == 0
    assert not (whole / tc.STATE_FILE).exists()  # removed once the model is written
    assert finetune(tiny, parts, "--stop-after", "3", "--save-every", "2") == 3
    assert (parts / tc.STATE_FILE).is_file() and not (parts / tf.FINETUNE_RESULT).exists()
    assert torch.load(parts / tc.STATE_FILE)["step"] == 3
    assert finetune(tiny, parts, "--stop-after", "2") == 3  # resumed at 3, stopped at 5
    assert torch.load(parts / tc.STATE_FILE)["step"] == 5
    assert finetune(tiny, parts) == 0
    assert not (parts / tc.STATE_FILE).exists()
    assert json.loads((parts / tf.FINETUNE_RESULT).read_text())["steps"] == 7
    wa, wb = weights_of(whole), weights_of(parts)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def test_finetune_refuses_a_checkpoint_with_other_options(tiny, tmp_path):
    out = tmp_path / "f"
    assert finetune(tiny, out, "--stop-after", "2") == 3
    with pytest.raises(SystemExit, match=r"other options \(lr\)"):
        finetune(tiny, out, "--lr", "1e-4")


def test_resume_refuses_a_checkpoint_with_other_options(tiny, tmp_path, capsys):
    out = tmp_path / "s"
    assert search(tiny, out, 0.3, 6, "--stop-after", "2") == 3
    capsys.readouterr()
    assert search(tiny, out, 0.4, 6) == 1
    err = capsys.readouterr().err
    assert "other options (lambda)" in err and "train_fca.py: error:" in err


# ---------------------------------------------------------------------------------------
# usage errors

def test_help_has_examples():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train_fca.py"), "--help"], capture_output=True,
                            text=True)
    assert result.returncode == 0 and "Examples" in result.stdout and "pipeline" in result.stdout


def test_lambda_and_flops_target_are_exclusive(tiny, capsys):
    with pytest.raises(SystemExit) as info:
        run("search", *COMMON, "--train", tiny["train"], "--model", tiny["model"], "--out", "x", "--lambda", "0.1",
            "--flops-target", "0.5")
    assert info.value.code == 2


def test_missing_checkpoint_is_one_line_error(tiny, tmp_path, capsys):
    assert run("search", *COMMON, "--train", tiny["train"], "--model", tmp_path / "nope", "--out", tmp_path / "o",
               "--lambda", "0.1") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("train_fca.py: error:") and "no config.json" in err[-1]


def test_pipeline_retrains_for_the_epochs_asked(tiny, tmp_path):
    work, output = tmp_path / "work", tmp_path / "m.fcab"
    assert run("pipeline", *COMMON, "--train", tiny["train"], "--finetuned", tiny["model"], "--work", work,
               "-o", output, "--lambda", "0.3", "--search-steps", "4", "--retrain-epochs", "0.25",
               "--clusters", "1", "--distill", "0.5", "--dtype", "fp32") == 0
    summary = json.loads((work / "pipeline.json").read_text())
    assert summary["retrain_steps"] == 7 and summary["search_steps"] == 4  # ceil(0.25 * 224 rows / 8)
    assert output.is_file() and (work / "retrain" / tf.TEACHER_CACHE).is_file()


def test_pipeline_finetunes_without_the_heldout_rows_and_writes_both_models(tiny, tmp_path):
    work, output, dense = tmp_path / "work", tmp_path / "fca.fcab", tmp_path / "dense.fcab"
    heldout = tmp_path / "heldout.tsv"
    data_options = COMMON[:COMMON.index("--log-every")]
    assert run("heldout", *data_options, "--train", tiny["train"], "--model", tiny["model"], "-o", heldout) == 0
    assert run("pipeline", *COMMON, "--train", tiny["train"], "--base", tiny["model"], "--finetune-epochs", "0.1",
               "--work", work, "-o", output, "--dense-output", dense, "--lambda", "0.3", "--search-steps", "2",
               "--retrain-steps", "2", "--clusters", "1", "--dtype", "fp32", "--manifest", tmp_path / "M.json") == 0
    assert [e["path"] for e in json.loads((tmp_path / "M.json").read_text())] == [str(output)]  # FCA models only
    train_lines = tiny["train"].read_text(encoding="utf-8").splitlines()
    finetuned_on = (work / "finetune-train.tsv").read_text(encoding="utf-8").splitlines()
    held = heldout.read_text(encoding="utf-8").splitlines()[1:]
    assert finetuned_on[0] == train_lines[0] and len(finetuned_on) - 1 == len(train_lines) - 1 - 16
    assert sorted(finetuned_on[1:] + held) == sorted(train_lines[1:])  # a partition of TRAIN's rows
    assert not set(finetuned_on[1:]) & set(held)
    dense_meta = parse_metadata(str(dense), read_header(str(dense))[0])
    fca_meta = parse_metadata(str(output), read_header(str(output))[0])
    assert dense_meta["fca"]["keep_ratios"] == [] and len(fca_meta["fca"]["keep_ratios"]) == 3
    assert json.loads((work / "pipeline.json").read_text())["dense_output"] == str(dense)


def test_pipeline_calibrate_takes_the_engines_schedule_and_retrains_the_dense_weights(tiny, tmp_path, fcabert_bin):
    work, output = tmp_path / "work", tmp_path / "fca.fcab"
    assert run("pipeline", *COMMON, "--train", tiny["train"], "--finetuned", tiny["model"], "--work", work,
               "-o", output, "--calibrate", "--fcabert", fcabert_bin, "--flops-target", "0.6",
               "--retrain-steps", "2", "--clusters", "1", "--dtype", "fp32") == 0
    calibrated = json.loads((work / "calibrate" / "calibrate.json").read_text())
    assert calibrated["heldout_rows"] == 16 and calibrated["flops_target"] == 0.6
    engine = parse_metadata(str(work / "calibrate" / "calibrated.fcab"),
                            read_header(str(work / "calibrate" / "calibrated.fcab"))[0])["fca"]
    record = json.loads((work / "retrain" / tf.RETRAIN_RESULT).read_text())
    assert record["schedule"] == calibrated["schedule"] == [float(r) for r in engine["keep_ratios"]]
    assert min(record["schedule"]) < 1.0 and not (work / "search").exists()
    assert record["heldout_flops_ratio"] <= 0.6 + 1e-9  # the engine met the target on the same held-out rows
    summary = json.loads((work / "pipeline.json").read_text())
    assert summary["schedule_from"] == "calibrate" and summary["lambda"] is None and output.is_file()


def test_pipeline_reschedule_searches_the_retrained_weights_on_the_heldout_rows(tiny, tmp_path, fcabert_bin):
    work, output, manifest = tmp_path / "work", tmp_path / "fca.fcab", tmp_path / "M.json"
    argv = ["pipeline", *COMMON, "--train", tiny["train"], "--finetuned", tiny["model"], "--work", work, "-o", output,
            "--calibrate", "--fcabert", fcabert_bin, "--flops-target", "0.6", "--retrain-steps", "2",
            "--clusters", "1", "--dtype", "fp32", "--reschedule", "1.2", "--reschedule-radius", "1",
            "--manifest", manifest]
    assert run(*argv) == 0
    record = json.loads((work / "retrain" / tf.RETRAIN_RESULT).read_text())
    search = json.loads((work / "reschedule" / "reschedule.json").read_text())
    assert search["from_schedule"] == record["schedule"] and search["data"] == str(work / "reschedule" / "heldout.tsv")
    assert len((work / "reschedule" / "heldout.tsv").read_text().splitlines()) == 1 + 16  # the held-out rows
    written = parse_metadata(str(output), read_header(str(output))[0])
    assert written["fca"]["keep_ratios"] == search["chosen"]["keep_ratios"]
    assert search["chosen"]["reduction"] >= 1.2 and search["candidates"] == len(search["scored"]) > 1
    # the retrained weights, unchanged: only the schedule differs from the exported retraining
    retrained = work / "reschedule" / "retrained.fcab"
    a, b = read_stored_tensors(str(retrained)), read_stored_tensors(str(output))
    assert all(np.array_equal(a[n], b[n]) for n in a)
    summary = json.loads((work / "pipeline.json").read_text())
    assert summary["rescheduled"] == search["chosen"]["keep_ratios"]
    assert [(e["path"], e["schedule"]) for e in json.loads(manifest.read_text())] == \
        [(str(output), search["chosen"]["keep_ratios"])]
    stamp = (work / "reschedule" / "reschedule.json").stat().st_mtime_ns
    assert run(*argv) == 0  # a finished run: every step reused
    assert (work / "reschedule" / "reschedule.json").stat().st_mtime_ns == stamp


def test_pipeline_calibrate_needs_a_flops_target_and_the_binary(tiny, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        run("pipeline", *COMMON, "--train", tiny["train"], "--finetuned", tiny["model"], "--work", tmp_path / "w",
            "-o", tmp_path / "m.fcab", "--calibrate", "--lambda", "0.1")
    assert info.value.code == 2 and "--calibrate needs --flops-target" in capsys.readouterr().err
    assert run("pipeline", *COMMON, "--train", tiny["train"], "--finetuned", tiny["model"], "--work", tmp_path / "w",
               "-o", tmp_path / "m.fcab", "--calibrate", "--flops-target", "0.5",
               "--fcabert", tmp_path / "no-such-binary") == 1
    assert "needs the fcabert binary" in capsys.readouterr().err


def test_pipeline_calibrate_from_a_model_file(tiny, tmp_path, fcabert_bin):
    model_file, work, output, dense = tmp_path / "dense.fcab", tmp_path / "w", tmp_path / "f.fcab", tmp_path / "d.fcab"
    assert run("export", tiny["model"], "-o", model_file, "--dense", "--dtype", "fp32", "--task", "sst2",
               "--labels", "negative,positive") == 0
    assert run("pipeline", *COMMON, "--train", tiny["train"], "--finetuned", model_file, "--work", work, "-o", output,
               "--dense-output", dense, "--calibrate", "--fcabert", fcabert_bin, "--flops-target", "0.6",
               "--retrain-steps", "2", "--clusters", "1", "--dtype", "fp32") == 0
    assert output.is_file() and dense.read_bytes() == model_file.read_bytes()
    assert not (work / "calibrate" / "dense.fcab").exists()  # the model file itself was calibrated
