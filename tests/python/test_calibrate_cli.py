"""fcabert calibrate end to end on a tiny random model: the written model carries a monotone
schedule whose FLOPs, as `fcabert eval` counts them on the calibration examples, are within
the target; several targets in one search; determinism; target 1 gives dense; clear errors."""
from __future__ import annotations

import json

import pytest

from conftest import run_fcabert
from tools.fcabert_model import read_model_file
from tiny_glue_model import tiny_model, tiny_sst2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    return {"root": root, "model": tiny_model(root / "tiny.fcab"), "glue": tiny_sst2(root / "glue")}


def calibrate(binary, *args, check=True):
    return run_fcabert(binary, "calibrate", "--threads", "1", *args, check=check)


def fca_of(path):
    metadata, _ = read_model_file(path)
    return metadata["fca"], metadata["provenance"]


def test_schedule_meets_target_as_eval_counts_it(fcabert_bin, tiny, tmp_path):
    out, report = tmp_path / "cal.fcab", tmp_path / "cal.json"
    train = tiny["glue"] / "train.tsv"
    # --limit 0: every train row, so `eval` on the same file sees exactly the calibration examples
    result = calibrate(fcabert_bin, "-m", str(tiny["model"]), "--data", str(train), "--limit", "0",
                       "--flops-target", "0.6", "--out", str(out), "--json", str(report))
    fca, provenance = fca_of(out)
    ratios = fca["keep_ratios"]
    assert len(ratios) == 6 and all(0 < r <= 1 for r in ratios)
    assert all(a >= b for a, b in zip(ratios, ratios[1:])), ratios
    assert fca["clusters"] == 2 and fca["pooling"] == "weighted"
    assert provenance["calibration"]["flops_target"] == 0.6
    assert provenance["source"] == "tests/python/tiny_glue_model.py"  # the input's provenance is kept
    assert ",".join(f"{r:g}" for r in ratios) in result.stdout
    search = json.loads(report.read_text())
    assert search["format"] == "fcabert-calibration" and search["steps"]
    assert search["result"]["flops_ratio"] <= 0.6

    ev = tmp_path / "eval.json"
    run_fcabert(fcabert_bin, "eval", "-q", "-m", str(out), "--data", str(train), "--task", "sst2",
                "--json", str(ev))
    flops = json.loads(ev.read_text())["splits"][0]["fca"]["flops"]
    assert flops["total"] / flops["dense_total"] <= 0.6
    assert flops["total"] / flops["dense_total"] == pytest.approx(search["result"]["flops_ratio"], abs=1e-12)


def test_several_targets_deterministic_and_dense_at_one(fcabert_bin, tiny, tmp_path):
    args = ["-m", str(tiny["model"]), "--data", str(tiny["glue"]), "--limit", "40", "--seed", "5"]
    calibrate(fcabert_bin, *args, "--flops-target", "0.7,0.45", "--out", str(tmp_path / "a-{target}.fcab"))
    calibrate(fcabert_bin, *args, "--flops-target", "0.45", "--out", str(tmp_path / "b.fcab"))
    high, _ = fca_of(tmp_path / "a-0.7.fcab")
    low, provenance = fca_of(tmp_path / "a-0.45.fcab")
    assert provenance["calibration"]["result"]["flops_ratio"] <= 0.45
    assert sum(low["keep_ratios"]) < sum(high["keep_ratios"])
    again, _ = fca_of(tmp_path / "b.fcab")
    calibrate(fcabert_bin, *args, "--flops-target", "0.45", "--out", str(tmp_path / "c.fcab"))
    assert fca_of(tmp_path / "c.fcab")[0] == again  # deterministic
    calibrate(fcabert_bin, *args, "--flops-target", "1", "--out", str(tmp_path / "dense.fcab"))
    assert fca_of(tmp_path / "dense.fcab")[0]["keep_ratios"] == []


def test_clusters_and_pooling_options(fcabert_bin, tiny, tmp_path):
    out = tmp_path / "c0.fcab"
    calibrate(fcabert_bin, "-m", str(tiny["model"]), "--data", str(tiny["glue"]), "--limit", "30",
              "--flops-target", "0.5", "--clusters", "0", "--step", "0.1", "--min-ratio", "0.1", "--out", str(out))
    fca, _ = fca_of(out)
    assert fca["clusters"] == 0
    assert all(abs(r * 10 - round(r * 10)) < 1e-9 for r in fca["keep_ratios"])


def test_refuses_to_overwrite_and_reports_errors(fcabert_bin, tiny, tmp_path):
    base = ["-m", str(tiny["model"]), "--data", str(tiny["glue"]), "--limit", "20"]
    out = tmp_path / "x.fcab"
    out.write_bytes(b"precious")
    r = calibrate(fcabert_bin, *base, "--out", str(out), check=False)
    assert r.returncode == 1 and "--force" in r.stderr and out.read_bytes() == b"precious"
    r = calibrate(fcabert_bin, *base, "--out", str(out), "--force", "--flops-target", "0.8")
    assert fca_of(out)[0]["keep_ratios"]
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]

    def error(*args):
        r = calibrate(fcabert_bin, *args, check=False)
        assert r.returncode == 1, r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("fcabert: error: "), r.stderr
        return r.stderr

    assert "--flops-target must be in (0, 1]" in error(*base, "--flops-target", "1.5", "--out", str(tmp_path / "y"))
    assert "--flops-target must be in (0, 1]" in error(*base, "--flops-target", "0", "--out", str(tmp_path / "y"))
    assert "expected a number" in error(*base, "--flops-target", "half", "--out", str(tmp_path / "y"))
    assert "{target}" in error(*base, "--flops-target", "0.6,0.5", "--out", str(tmp_path / "y.fcab"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert "no examples" in error("-m", str(tiny["model"]), "--data", str(empty), "--out", str(tmp_path / "y"))
    assert "no such file" in error("-m", str(tiny["model"]), "--data", str(tmp_path / "nope"), "--out",
                                   str(tmp_path / "y"))
    assert "cannot be reached" in error(*base, "--flops-target", "0.01", "--out", str(tmp_path / "y"))
    assert not (tmp_path / "y").exists()
    # Calibrating on dev works (unlabelled text) but warns that dev is then not held out.
    r = calibrate(fcabert_bin, "-m", str(tiny["model"]), "--data", str(tiny["glue"]), "--split", "dev",
                  "--flops-target", "0.9", "--out", str(tmp_path / "dev.fcab"))
    assert "dev/test split" in r.stderr
