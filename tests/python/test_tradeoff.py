"""tools/tradeoff.py on a tiny random model and a tiny SST-2 folder: every point's numbers are
`fcabert eval`'s, the learned model and its C=0 twin, calibrated and hand schedules all appear in
the table and the SVG, missing models are listed with the command that makes them, and a second
run is served from the cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import run_fcabert
from tools.fcabert_model import read_model_file
from tiny_glue_model import tiny_model, tiny_sst2

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "tradeoff.py"
SVG = "{http://www.w3.org/2000/svg}"


def tradeoff(fcabert_bin, *args, check=True):
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    r = subprocess.run([sys.executable, str(TOOL), "--fcabert", fcabert_bin, "--nice", "0", "--threads", "1",
                        *args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"tradeoff.py failed ({r.returncode}):\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def run(fcabert_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("tradeoff")
    glue = tiny_sst2(root / "glue", train=50, dev=30).parent
    dense = tiny_model(root / "dense.fcab")
    learned = tiny_model(root / "learned.fcab", seed=8, schedule=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], clusters=2)
    copy = root / "copy-of-learned.fcab"  # the same bytes under another name: one point, not two
    copy.write_bytes(learned.read_bytes())
    manifest = root / "MANIFEST.json"
    manifest.write_text(json.dumps([
        {"path": str(learned), "task": "sst2", "lambda": 0.01, "schedule": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
         "clusters": 2, "pooling": "weighted", "command": "python tools/train_fca.py --lambda 0.01"},
        {"path": str(root / "not-yet.fcab"), "task": "sst2", "lambda": 0.1, "clusters": 2,
         "command": "python tools/train_fca.py --lambda 0.1 --out not-yet.fcab"},
    ]))
    args = ["--tasks", "sst2,mrpc", "--glue", str(glue), "--manifest", str(manifest),
            "--dense-model", f"sst2={dense}", "--dense-model", f"mrpc={root / 'no-mrpc.fcab'}",
            "--no-default-learned", "--learned", f"sst2={copy}", "--targets", "0.6", "--calib-limit", "30",
            "--workdir", str(root / "work"), "--out", str(root / "TRADEOFF.md"), "--svg-dir", str(root)]
    first = tradeoff(fcabert_bin, *args)
    # New mtimes, same bytes (as when the data folder is provisioned anew): still cached.
    for path in [dense, learned, copy, *glue.rglob("*.tsv")]:
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = tradeoff(fcabert_bin, *args)
    points = json.loads((root / "work" / "tradeoff_sst2.json").read_text())
    return {"root": root, "glue": glue, "dense": dense, "learned": learned, "first": first, "second": second,
            "md": (root / "TRADEOFF.md").read_text(), "data": points}


def by_series(data, series):
    return [p for p in data["points"] if p["series"] == series]


def test_every_series_is_measured(run):
    series = {p["series"] for p in run["data"]["points"]}
    assert series == {"dense", "hand schedule (untrained)", "hand schedule, C=0", "calibrated FCA",
                      "calibrated, C=0 (same schedule)", "calibrated for C=0", "learned FCA",
                      "learned, C=0 (drop)"}
    dense = by_series(run["data"], "dense")[0]
    assert dense["flops_share"] == 1.0 and dense["examples"] == 30
    for p in run["data"]["points"]:
        if p["series"] != "dense":
            assert p["flops_share"] < 1.0, p
    assert len(by_series(run["data"], "learned FCA")) == 1  # the byte-identical copy is not a second point
    learned, learned0 = by_series(run["data"], "learned FCA")[0], by_series(run["data"], "learned, C=0 (drop)")[0]
    assert learned["label"] == "λ=0.01 (learned)" and "C=2" in learned["schedule"] and "C=0" in learned0["schedule"]
    assert learned0["flops_share"] < learned["flops_share"]  # dropping also drops the cluster rows


def test_numbers_are_fcabert_eval_numbers(run, fcabert_bin, tmp_path):
    report = tmp_path / "r.json"
    run_fcabert(fcabert_bin, "eval", "-q", "-m", str(run["learned"]), "--data", str(run["glue"] / "SST-2"),
                "--clusters", "0", "--json", str(report))
    fca = json.loads(report.read_text())["splits"][0]["fca"]
    p = by_series(run["data"], "learned, C=0 (drop)")[0]
    assert p["metric"] == pytest.approx(100 * fca["glue_score"], abs=1e-12)
    assert p["flops_share"] == pytest.approx(fca["flops"]["total"] / fca["flops"]["dense_total"], abs=1e-15)
    row = next(line for line in run["md"].splitlines() if line.startswith("| learned, C=0 (drop) |"))
    assert f"| {p['metric']:.2f} |" in row and f"| {p['flops_share']:.3f} |" in row


def test_calibrated_points_come_from_fcabert_calibrate(run):
    (p,) = by_series(run["data"], "calibrated FCA")
    assert p["target"] == 0.6 and p["calibration_flops_share"] <= 0.6
    metadata, _ = read_model_file(REPO / p["model"] if not Path(p["model"]).is_absolute() else p["model"])
    assert metadata["fca"]["keep_ratios"] and metadata["fca"]["clusters"] == 2
    cal = metadata["provenance"]["calibration"]
    assert cal["data"].endswith("train.tsv") and cal["examples"] == 30  # a train slice, never dev
    (p0,) = by_series(run["data"], "calibrated for C=0")
    assert p0["calibration_flops_share"] <= 0.6 and "C=0" in p0["schedule"]


def test_missing_models_are_listed_with_their_commands(run):
    md = run["md"]
    assert "not-yet.fcab" in md and "python tools/train_fca.py --lambda 0.1 --out not-yet.fcab" in md
    assert "dense mrpc model" in md and "tools/train_fca.py pipeline --task mrpc" in md
    assert "missing: dense mrpc model" in run["first"].stderr
    assert "## MRPC" in md and "No point could be measured yet" in md
    assert "![sst2 trade-off](tradeoff_sst2.svg)" in md
    assert "python tools/tradeoff.py" in md and "Date: " in md
    assert "The paper's claim (FCA within 1 point of dense at 2x fewer FLOPs)" in md


def test_svg_has_one_marker_per_point(run):
    tree = ET.parse(run["root"] / "tradeoff_sst2.svg")
    markers = [e for e in tree.iter() if e.get("class") == "point"]
    assert len(markers) == len(run["data"]["points"])
    shown = sorted(float(e.get("data-metric")) for e in markers)
    assert shown == pytest.approx(sorted(p["metric"] for p in run["data"]["points"]), abs=1e-4)
    assert tree.getroot().tag == SVG + "svg"
    empty = ET.parse(run["root"] / "tradeoff_mrpc.svg")
    assert not [e for e in empty.iter() if e.get("class") == "point"]


def test_second_run_is_cached(run):
    assert "0 evaluations and 0 calibrations run" in run["md"]
    assert "cached" in run["second"].stderr


def test_clear_errors(fcabert_bin, tmp_path):
    r = tradeoff(str(tmp_path / "no-fcabert"), "--tasks", "sst2", check=False)
    assert r.returncode == 1 and "fcabert binary" in r.stderr
    r = tradeoff(fcabert_bin, "--targets", "0.5,2", check=False)
    assert r.returncode == 2 and "not in (0, 1]" in r.stderr
    bad = tmp_path / "MANIFEST.json"
    bad.write_text("{not json")
    r = tradeoff(fcabert_bin, "--tasks", "sst2", "--manifest", str(bad), "--workdir", str(tmp_path / "w"),
                 "--out", str(tmp_path / "t.md"), "--svg-dir", str(tmp_path), check=False)
    assert r.returncode == 1 and "not valid JSON" in r.stderr
