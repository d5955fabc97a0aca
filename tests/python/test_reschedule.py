"""tools/reschedule.py: the grid, the fixed choice rule, the metadata-only copy of a model file,
and a run on a tiny random model whose every score is checked against `fcabert eval` itself."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_fcabert
from tiny_glue_model import tiny_model, tiny_sst2
from tools import reschedule as rs
from tools.fcabert_model import ModelFileError, copy_with_metadata, parse_metadata, read_header, read_stored_tensors

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "reschedule.py"
OWN = (1.0, 1.0, 0.5, 0.5, 0.05, 0.05)


def scored(ratios, score, reduction, clusters=2):
    return rs.Scored(rs.Candidate(tuple(ratios), clusters), score, reduction, {})


# ---------------------------------------------------------------------------------------------
# the grid

def test_layer_values_clip_to_the_ratio_range():
    assert rs.layer_values(0.3, 2, 0.05, 0.05) == [0.2, 0.25, 0.3, 0.35, 0.4]
    assert rs.layer_values(0.05, 2, 0.05, 0.05) == [0.05, 0.1, 0.15]
    assert rs.layer_values(1.0, 1, 0.05, 0.05) == [0.95, 1.0]
    assert rs.layer_values(0.4, 0, 0.05, 0.05) == [0.4]


def test_candidates_are_the_non_increasing_combinations():
    cands = rs.candidates([[1.0], [0.5, 0.6], [0.5, 0.6, 0.7]], [2, 3])
    ratios = sorted({c.keep_ratios for c in cands})
    # 0.5 -> 0.6 and 0.5/0.6 -> 0.7 rise with depth; they are left out
    assert ratios == [(1.0, 0.5, 0.5), (1.0, 0.6, 0.5), (1.0, 0.6, 0.6)]
    assert len(cands) == 6 and {c.clusters for c in cands} == {2, 3}


def test_parse_grid_checks_the_layers_and_values():
    assert rs.parse_grid("1;0.6,0.7;0.3", 3) == [[1.0], [0.6, 0.7], [0.3]]
    with pytest.raises(rs.RescheduleError, match="lists 2 layers; the model has 3"):
        rs.parse_grid("1;0.6", 3)
    with pytest.raises(rs.RescheduleError, match="layer 1: keep ratio 'x' is not a number"):
        rs.parse_grid("1;x;0.3", 3)
    with pytest.raises(rs.RescheduleError, match=r"layer 2: keep ratio 1.5 of layer 0 is not in \(0, 1\]"):
        rs.parse_grid("1;0.5;1.5", 3)


# ---------------------------------------------------------------------------------------------
# the rule

def test_the_best_eligible_score_wins():
    own = rs.Candidate((1.0, 0.5), 2)
    rows = [scored((1.0, 0.5), 0.90, 2.1), scored((1.0, 0.6), 0.95, 1.9),  # better, but not 2x: ineligible
            scored((1.0, 0.4), 0.92, 2.3), scored((0.9, 0.4), 0.91, 2.6)]
    assert rs.choose(rows, own, 2.0).candidate.keep_ratios == (1.0, 0.4)


def test_ties_go_to_the_larger_reduction_but_the_own_schedule_wins_its_ties():
    own = rs.Candidate((1.0, 0.5), 2)
    rows = [scored((1.0, 0.5), 0.90, 2.1), scored((1.0, 0.45), 0.92, 2.2), scored((1.0, 0.4), 0.92, 2.4)]
    assert rs.choose(rows, own, 2.0).candidate.keep_ratios == (1.0, 0.4)
    rows[0] = scored((1.0, 0.5), 0.92, 2.1)  # the own schedule ties the best: it stays
    assert rs.choose(rows, own, 2.0).candidate == own
    rows[0] = scored((1.0, 0.5), 0.92, 1.5)  # ... unless it is not eligible itself
    assert rs.choose(rows, own, 2.0).candidate.keep_ratios == (1.0, 0.4)


def test_nothing_eligible_is_an_error_that_names_the_best_reduction():
    rows = [scored((1.0, 0.5), 0.9, 1.4), scored((1.0, 0.4), 0.8, 1.7)]
    with pytest.raises(rs.RescheduleError, match=r"no candidate reaches 2x .* \(the most is 1.700x, 1,0.4 C=2\)"):
        rs.choose(rows, rs.Candidate((1.0, 0.5), 2), 2.0)


# ---------------------------------------------------------------------------------------------
# the copy of a model file

def test_copy_with_metadata_changes_only_the_given_sections(tmp_path):
    source = tiny_model(tmp_path / "in.fcab", schedule=list(OWN), clusters=2)
    out = tmp_path / "out.fcab"
    fca = {"keep_ratios": [1.0, 0.5, 0.5, 0.2, 0.2, 0.1], "clusters": 3, "pooling": "mean"}
    copy_with_metadata(source, out, {"fca": fca})
    before = parse_metadata(source, read_header(source)[0])
    after = parse_metadata(out, read_header(out)[0])
    assert after["fca"] == fca
    assert {k: v for k, v in after.items() if k != "fca"} == {k: v for k, v in before.items() if k != "fca"}
    a, b = read_stored_tensors(source), read_stored_tensors(out)
    assert list(a) == list(b) and all(np.array_equal(a[n], b[n]) for n in a)
    with pytest.raises(ModelFileError, match="'weights' is not a metadata section"):
        copy_with_metadata(source, tmp_path / "x.fcab", {"weights": {}})


# ---------------------------------------------------------------------------------------------
# the tool on a tiny model, every number from fcabert eval

def reschedule(fcabert_bin, *args):
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    return subprocess.run([sys.executable, str(TOOL), "--fcabert", fcabert_bin, "-t", "1", *args],
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("reschedule")
    heldout = tiny_sst2(root / "glue", train=40, dev=10, seed=5) / "train.tsv"
    model = tiny_model(root / "fca.fcab", seed=11, schedule=list(OWN), clusters=2)
    return {"root": root, "heldout": heldout, "model": model}


def eval_point(fcabert_bin, tiny, ratios, clusters):
    report = tiny["root"] / "direct.json"
    run_fcabert(fcabert_bin, "eval", "-q", "-t", "1", "-m", str(tiny["model"]), "--data", str(tiny["heldout"]),
                "--task", "sst2", "--keep-ratios", ",".join(f"{r:g}" for r in ratios), "--clusters", str(clusters),
                "--json", str(report))
    fca = json.loads(report.read_text())["splits"][0]["fca"]
    return fca["glue_score"], fca["flops"]["reduction_ratio"]


def test_a_run_scores_the_grid_with_the_engine_and_applies_the_rule(fcabert_bin, tiny):
    out, report = tiny["root"] / "out.fcab", tiny["root"] / "search.json"
    r = reschedule(fcabert_bin, "-m", str(tiny["model"]), "--task", "sst2", "--data", str(tiny["heldout"]),
                   "--radius", "1", "--step", "0.1", "--min-reduction", "1.2", "--clusters", "1,2",
                   "-o", str(out), "--json", str(report))
    assert r.returncode == 0, r.stderr
    summary = json.loads(report.read_text())
    rows = summary["scored"]
    # the neighbourhood: each ratio +-0.1, non-increasing, for C = 1 and 2 (checked independently)
    grid = [sorted({round(min(1.0, max(0.05, x + k * 0.1)), 6) for k in (-1, 0, 1)}) for x in OWN]
    expected = {(tuple(c), cl) for c in np.array(np.meshgrid(*grid)).T.reshape(-1, 6).tolist()
                if all(a >= b for a, b in zip(c, c[1:])) for cl in (1, 2)}
    assert {(tuple(x["keep_ratios"]), x["clusters"]) for x in rows} == expected
    assert f"[{len(rows)}/{len(rows)}]" in r.stderr  # one progress line per candidate
    # every score is what fcabert eval gives for that schedule
    for row in (rows[0], rows[len(rows) // 2], rows[-1]):
        assert eval_point(fcabert_bin, tiny, row["keep_ratios"], row["clusters"]) == \
            pytest.approx((row["score"], row["reduction"]), abs=1e-12)
    # the rule, recomputed here: best eligible score, then larger reduction; the own schedule keeps ties
    eligible = [x for x in rows if x["reduction"] >= 1.2]
    top = max(x["score"] for x in eligible)
    own = next(x for x in rows if tuple(x["keep_ratios"]) == OWN and x["clusters"] == 2)
    if own["reduction"] >= 1.2 and own["score"] == top:
        want = own
    else:
        want = max((x for x in eligible if x["score"] == top), key=lambda x: x["reduction"])
    assert summary["chosen"]["keep_ratios"] == want["keep_ratios"] and summary["chosen"]["clusters"] == want["clusters"]
    written = parse_metadata(out, read_header(out)[0])
    assert written["fca"]["keep_ratios"] == want["keep_ratios"] and written["fca"]["clusters"] == want["clusters"]
    note = written["provenance"]["schedule_search"]
    assert note["candidates"] == len(rows) and note["from_schedule"] == list(OWN)
    # the engine runs the written file with the chosen schedule by default
    report2 = tiny["root"] / "written.json"
    run_fcabert(fcabert_bin, "eval", "-q", "-t", "1", "-m", str(out), "--data", str(tiny["heldout"]), "--task",
                "sst2", "--json", str(report2))
    assert json.loads(report2.read_text())["splits"][0]["fca"]["glue_score"] == pytest.approx(want["score"])


@pytest.mark.parametrize("extra, message", [
    (["--radius", "3", "--max-candidates", "5"], "more than --max-candidates 5"),
    (["--grid", "1;1"], "lists 2 layers; the model has 6"),
    (["--min-reduction", "50"], "no candidate reaches 50x fewer FLOPs"),
    (["--clusters", "two"], "--clusters 'two': expected comma-separated integers"),
])
def test_usage_errors_are_one_line(fcabert_bin, tiny, extra, message):
    r = reschedule(fcabert_bin, "-m", str(tiny["model"]), "--task", "sst2", "--data", str(tiny["heldout"]),
                   "--radius", "0", "-o", str(tiny["root"] / "err.fcab"), "--force", *extra)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("reschedule.py: error:")


def test_dev_data_is_refused(fcabert_bin, tiny):
    glue = tiny["heldout"].parent
    for data, message in [(glue, "is a directory (fcabert eval would score its dev split)"),
                          (glue / "dev.tsv", "looks like a dev set (dev.tsv)"),
                          (glue / "none.tsv", "does not exist")]:
        r = reschedule(fcabert_bin, "-m", str(tiny["model"]), "--task", "sst2", "--data", str(data),
                       "-o", str(tiny["root"] / "dev.fcab"), "--force")
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert not (tiny["root"] / "dev.fcab").exists()


def test_a_dense_model_and_an_existing_output_are_refused(fcabert_bin, tiny):
    dense = tiny_model(tiny["root"] / "dense.fcab")
    r = reschedule(fcabert_bin, "-m", str(dense), "--task", "sst2", "--data", str(tiny["heldout"]),
                   "-o", str(tiny["root"] / "d.fcab"))
    assert r.returncode == 1 and "has no FCA schedule (a dense model)" in r.stderr
    existing = tiny["root"] / "exists.fcab"
    existing.write_bytes(b"x")
    r = reschedule(fcabert_bin, "-m", str(tiny["model"]), "--task", "sst2", "--data", str(tiny["heldout"]),
                   "-o", str(existing))
    assert r.returncode == 1 and "already exists" in r.stderr and existing.read_bytes() == b"x"
