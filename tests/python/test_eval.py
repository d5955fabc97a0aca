"""fcabert eval / eval-merge: GLUE metrics against scikit-learn / scipy on the same predictions,
the committed PyTorch reference accuracy for SST-2, exact shard merging, and clean errors."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_fcabert

REPO = Path(__file__).resolve().parents[2]
GLUE = REPO.parent / "shared" / "data" / "glue"
FIXTURES = REPO / "tests" / "data" / "glue_fixtures"
PARITY = REPO / "tests" / "data" / "parity"
SCHEDULE = ["--keep-ratios", "0.65,0.45,0.35,0.3,0.25,0.2", "--clusters", "2", "--pooling", "mean"]

import scipy.stats as scipy_stats  # noqa: E402  (pinned in requirements.txt)
import sklearn.metrics as sklearn_metrics  # noqa: E402


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def eval_run(binary, tmp: Path, name: str, *args: str):
    """Runs `fcabert eval` with --json and --predictions; returns (report, predictions, stdout)."""
    report, predictions = tmp / f"{name}.json", tmp / f"{name}.jsonl"
    result = run_fcabert(binary, "eval", "-q", "--json", str(report), "--predictions", str(predictions), *args)
    return json.loads(report.read_text()), read_jsonl(predictions), result.stdout


@pytest.fixture(scope="module")
def sst2_dense(fcabert_bin, tmp_path_factory):
    assert (GLUE / "SST-2" / "dev.tsv").is_file(), "../shared/data/glue/SST-2/dev.tsv is missing"
    return eval_run(fcabert_bin, tmp_path_factory.mktemp("sst2"), "dense", "--data", str(GLUE / "SST-2"), "--dense")


@pytest.fixture(scope="module")
def task_models(tmp_path_factory):
    """MiniLM with seeded random heads for a regression (STS-B) and a 3-class pair task (MNLI)."""
    from tools.make_parity_data import minilm_source
    source = minilm_source()
    out = tmp_path_factory.mktemp("models")
    convert = [sys.executable, str(REPO / "tools" / "convert.py"), source, "--force", "--pair"]
    models = {"stsb": out / "stsb.fcab", "mnli": out / "mnli.fcab"}
    subprocess.run(convert + ["--init-head-seed", "3", "--regression", "--labels", "score", "--task", "stsb",
                              "-o", str(models["stsb"])], check=True, capture_output=True)
    subprocess.run(convert + ["--init-head-seed", "4", "--labels", "entailment,neutral,contradiction",
                              "--task", "mnli", "-o", str(models["mnli"])], check=True, capture_output=True)
    return models


def test_sst2_accuracy_equals_pytorch_reference(sst2_dense):
    report, predictions, stdout = sst2_dense
    reference = read_jsonl(PARITY / "default_sst2_dev.ref.jsonl")
    gold = [int(x) for x in (PARITY / "sst2_dev_labels.txt").read_text().split()]
    ref_pred = [max(range(2), key=lambda c: r["logits"][c]) for r in reference]
    ref_correct = sum(p == g for p, g in zip(ref_pred, gold))
    assert ref_correct == 773 and len(gold) == 872
    split = report["splits"][0]
    counts = split["fca"]["confusion_matrix"]["counts"]
    assert sum(map(sum, counts)) == 872
    assert counts[0][0] + counts[1][1] == ref_correct
    assert split["fca"]["metrics"]["accuracy"] == pytest.approx(773 / 872, abs=1e-15)
    names = ["negative", "positive"]
    ours = [names.index(p["prediction"]) for p in sorted(predictions, key=lambda p: p["index"])]
    assert sum(a != b for a, b in zip(ours, ref_pred)) <= 1  # parity within 1e-4 may flip a tie
    assert "88.65" in stdout


def test_sst2_metrics_match_scikit_learn(sst2_dense):
    report, predictions, _ = sst2_dense
    names = ["negative", "positive"]
    y_true = [names.index(p["gold"]) for p in predictions]
    y_pred = [names.index(p["prediction"]) for p in predictions]
    fca = report["splits"][0]["fca"]
    assert fca["metrics"]["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred), abs=1e-15)
    assert fca["confusion_matrix"]["counts"] == sklearn_metrics.confusion_matrix(y_true, y_pred).tolist()
    # every prediction row is well-formed
    assert [p["index"] for p in predictions] == list(range(872))
    for p in predictions:
        assert set(p) == {"split", "index", "line", "prediction", "probabilities", "gold"}
        assert sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert p["line"] == p["index"] + 2  # after the header


def test_report_is_well_formed(sst2_dense):
    report, _, _ = sst2_dense
    assert report["format"] == "fcabert-eval-report" and report["format_version"] == 2
    assert report["task"] == "sst2" and report["glue_metric"] == "acc"
    assert report["schedule"]["description"] == "dense"
    assert report["shard_count"] == 1 and report["shards"] == [1]
    fca = report["splits"][0]["fca"]
    assert fca["flops"]["total"] == fca["flops"]["dense_total"]  # a dense run
    assert fca["examples"] == 872 and fca["seconds"] > 0
    for key in ("fcabert_version", "model", "max_len", "limit"):
        assert key in report
    assert report["model_sha256"] == hashlib.sha256(Path(report["model"]).read_bytes()).hexdigest()
    assert report["precision"] == "fp32"


def test_stsb_regression_matches_scipy(fcabert_bin, task_models, tmp_path):
    assert (GLUE / "STS-B" / "dev.tsv").is_file(), "../shared/data/glue/STS-B/dev.tsv is missing"
    report, predictions, _ = eval_run(fcabert_bin, tmp_path, "stsb", "-m", str(task_models["stsb"]),
                                      "--data", str(GLUE / "STS-B"), "--limit", "150", *SCHEDULE)
    x = [p["prediction"] for p in predictions]
    y = [p["gold"] for p in predictions]
    metrics = report["splits"][0]["fca"]["metrics"]
    assert metrics["pearson"] == pytest.approx(scipy_stats.pearsonr(x, y)[0], abs=1e-9)
    assert metrics["spearman"] == pytest.approx(scipy_stats.spearmanr(x, y)[0], abs=1e-9)
    assert len(report["splits"][0]["fca"]["pairs"]["rows"]) == 150


def test_mnli_folder_gives_both_dev_sets(fcabert_bin, task_models, tmp_path):
    report, predictions, stdout = eval_run(fcabert_bin, tmp_path, "mnli", "-m", str(task_models["mnli"]),
                                           "--data", str(FIXTURES / "MNLI"), "--compare-dense")
    assert [s["name"] for s in report["splits"]] == ["dev_matched", "dev_mismatched"]
    assert [s["fca"]["examples"] for s in report["splits"]] == [5, 4]
    for split in report["splits"]:
        rows = [p for p in predictions if p["split"] == split["name"]]
        acc = sklearn_metrics.accuracy_score([p["gold"] for p in rows], [p["prediction"] for p in rows])
        assert split["fca"]["metrics"]["accuracy"] == pytest.approx(acc, abs=1e-15)
        assert split["fca"]["confusion_matrix"]["labels"] == ["contradiction", "entailment", "neutral"]
    assert "dev_mismatched" in stdout and "speed-up" in stdout


def strip_volatile(report):
    """What must be equal between a merged and an unsharded run (times differ)."""
    out = {k: v for k, v in report.items() if k not in ("shards",)}
    out["splits"] = []
    for split in report["splits"]:
        s = dict(split)
        for side in ("fca", "dense"):
            if side in s:
                s[side] = {k: v for k, v in s[side].items() if k not in ("seconds", "examples_per_second")}
        out["splits"].append(s)
    return out


@pytest.mark.parametrize("case", ["sst2", "stsb"])
def test_three_shards_merge_to_the_unsharded_run(fcabert_bin, task_models, tmp_path, case):
    if case == "sst2":
        args = ["--data", str(GLUE / "SST-2"), "--limit", "120", "--compare-dense", *SCHEDULE]
    else:
        args = ["-m", str(task_models["stsb"]), "--data", str(GLUE / "STS-B"), "--limit", "60", "--batch-size", "8",
                *SCHEDULE]
    whole, _, _ = eval_run(fcabert_bin, tmp_path, "whole", *args)
    shards, indices = [], []
    for k in (1, 2, 3):
        report, predictions, _ = eval_run(fcabert_bin, tmp_path, f"shard{k}", *args, "--shard", f"{k}/3")
        indices += [p["index"] for p in predictions]
        shards.append(str(tmp_path / f"shard{k}.json"))
    assert sorted(indices) == list(range(whole["splits"][0]["examples_in_split"]))  # each example once
    merged_path = tmp_path / "merged.json"
    result = run_fcabert(fcabert_bin, "eval-merge", *shards, "--json", str(merged_path))
    merged = json.loads(merged_path.read_text())
    assert merged["shards"] == [1, 2, 3] and whole["shards"] == [1]
    merged["shard_count"] = whole["shard_count"] = 0
    assert strip_volatile(merged) == strip_volatile(whole)  # metrics, counts, pairs, FLOPs: exact
    assert "all 3 shards merged" in result.stdout


def test_merge_refuses_overlapping_and_missing_shards(fcabert_bin, tmp_path):
    args = ["--data", str(GLUE / "SST-2"), "--limit", "20", "--batch-size", "4"]  # 5 batches
    for k in (1, 2):
        eval_run(fcabert_bin, tmp_path, f"s{k}", *args, "--shard", f"{k}/3")
    s1, s2 = str(tmp_path / "s1.json"), str(tmp_path / "s2.json")
    overlap = run_fcabert(fcabert_bin, "eval-merge", s1, s1, check=False)
    assert overlap.returncode == 1 and "appears in both" in overlap.stderr
    missing = run_fcabert(fcabert_bin, "eval-merge", s1, s2, check=False)
    assert missing.returncode == 1 and "shard(s) 3 of 3 are missing" in missing.stderr
    other = tmp_path / "other.json"
    run_fcabert(fcabert_bin, "eval", "-q", *args, "--dense", "--shard", "3/3", "--json", str(other))
    mixed = run_fcabert(fcabert_bin, "eval-merge", s1, s2, str(other), check=False)
    assert mixed.returncode == 1 and "schedule" in mixed.stderr


@pytest.mark.parametrize("args, message", [
    (["--task", "sst2", "--data", str(FIXTURES / "bad" / "sst2_bad.tsv")], "sst2_bad.tsv:3: expected at least 2"),
    (["--data", str(FIXTURES / "bad" / "sst2_bad.tsv")], "give --task"),
    (["--data", str(GLUE / "CoLA")], "expected the labels unacceptable,acceptable"),
    (["--data", str(FIXTURES / "QQP")], "takes sentence pairs"),
    (["--data", str(GLUE / "SST-2"), "--shard", "4/3"], "--shard '4/3'"),
    (["--data", "/nonexistent/SST-2"], "no such file or folder"),
])
def test_errors_are_one_line_and_exit_1(fcabert_bin, args, message):
    result = run_fcabert(fcabert_bin, "eval", "-q", *args, check=False)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fcabert: error: ") and message in lines[0], result.stderr


def test_skip_bad_rows_counts_them(fcabert_bin):
    result = run_fcabert(fcabert_bin, "eval", "-q", "--task", "sst2", "--skip-bad-rows",
                         "--data", str(FIXTURES / "bad" / "sst2_bad.tsv"))
    assert "3 examples" in result.stdout and "2 malformed row(s) skipped" in result.stdout
    assert "skipped 2 malformed row(s)" in result.stderr
