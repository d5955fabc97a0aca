"""`fcabert profile` end to end: token counts per layer follow docs/FCA.md, FLOPs follow
docs/PROFILE.md (computed here independently of the C++ code), the padded-input convention, the SVG
chart, synthetic inputs and pair models, and one-line errors for bad flags."""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO, run_fcabert

SINGLE = REPO / "tests" / "data" / "parity" / "single.txt"
PAIRS = REPO / "tests" / "data" / "parity" / "pairs.tsv"
SCHEDULE = [0.9, 0.7, 0.5, 0.4, 0.35, 0.3]
RATIOS = ",".join(str(r) for r in SCHEDULE)
# MiniLM-L6 (the geometry of the test models).
LAYERS, D, F, H = 6, 384, 1536, 12
SVG_NS = "{http://www.w3.org/2000/svg}"


def profile_json(binary: str, *args: str) -> dict:
    return json.loads(run_fcabert(binary, "profile", "--json", "-q", "--repeat", "1", *args).stdout)


def expected_rows(n0: int, ratios, clusters: int):
    """Per layer (rows_in, rows_out, reduced, pooled_rows, clusters_made) by docs/FCA.md §2-3, 7."""
    rows, n = [], n0
    for r in ratios:
        k = max(1, math.ceil(r * n0 - 1e-9))
        m = n - k
        reduce = m > clusters if clusters > 0 else m > 0
        out = (k + clusters if clusters > 0 else k) if reduce else n
        rows.append((n, out, reduce, m if reduce and clusters > 0 else 0, clusters if reduce else 0))
        n = out
    return rows


def dense_layer(n: int) -> dict:
    """docs/PROFILE.md: one dense layer for one sequence of n tokens."""
    linear = 2 * n * D * 4 * D + 2 * n * D * F * 2
    attention = 2 * n * n * D + 2 * n * n * D
    return {"linear": linear, "attention": attention, "total": linear + attention}


def fca_layer(n: int, n_out: int, reduced: bool, pooled: int, clusters: int) -> dict:
    """docs/PROFILE.md + docs/FCA.md (weighted pooling)."""
    linear = 2 * n * D * 4 * D + 2 * n_out * D * F * 2
    attention = 4 * n * n * D
    fca = (H * n * n + (2 * pooled * D + 3 * pooled if clusters > 0 else 0)) if reduced else 0
    return {"linear": linear, "attention": attention, "fca": fca, "total": linear + attention + fca}


@pytest.fixture(scope="module")
def small_input(tmp_path_factory) -> Path:
    lines = SINGLE.read_text(encoding="utf-8").splitlines()[:12]
    path = tmp_path_factory.mktemp("profile") / "small.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("clusters", [4, 0])
def test_token_counts_and_flops_follow_the_definitions(fcabert_bin, minilm_models, small_input, clusters):
    report = profile_json(fcabert_bin, "-m", minilm_models["single"], str(small_input),
                          "--keep-ratios", RATIOS, "--clusters", str(clusters))
    lengths = report["input"]["lengths"]
    assert len(lengths) == 12 and report["input"]["tokens"] == sum(lengths)
    assert report["schedule"]["keep_ratios"] == SCHEDULE and report["schedule"]["clusters"] == clusters
    per_sequence = [expected_rows(n0, SCHEDULE, clusters) for n0 in lengths]
    assert len(report["layers"]) == LAYERS
    for layer in range(LAYERS):
        row = report["layers"][layer]
        assert row["tokens_in"] == sum(rows[layer][0] for rows in per_sequence)
        assert row["tokens_out"] == sum(rows[layer][1] for rows in per_sequence)
        # The dense run: every layer on all n0 tokens.
        dense = report["dense"]["layers"][layer]
        assert dense["tokens_in"] == dense["tokens_out"] == sum(lengths)
        assert dense["linear"] == sum(dense_layer(n0)["linear"] for n0 in lengths)
        assert dense["attention"] == sum(dense_layer(n0)["attention"] for n0 in lengths)
        assert dense["total"] == sum(dense_layer(n0)["total"] for n0 in lengths)
        assert row["dense_flops_total"] == dense["total"]
        # The FCA run, from the real token counts.
        expected = [fca_layer(*rows[layer]) for rows in per_sequence]
        fca = report["fca"]["layers"][layer]
        for key in ("linear", "attention", "fca", "total"):
            assert fca[key] == sum(e[key] for e in expected), (layer, key)
        assert row["flops_total"] == fca["total"]
        assert row["percent_of_dense"] == pytest.approx(100 * fca["total"] / dense["total"])
        assert row["ms_fca"] >= 0 and row["ms_dense"] >= 0
    totals = report["totals"]
    assert totals["flops_fca"] == report["fca"]["total"] and totals["flops_dense"] == report["dense"]["total"]
    assert totals["reduction_ratio"] > 1
    assert totals["reduction_ratio"] == pytest.approx(totals["flops_dense"] / totals["flops_fca"])
    assert report["fca"]["dense_total"] == report["dense"]["total"]  # the tally's own dense equivalent
    assert totals["wall_ms_fca"] > 0 and totals["wall_ms_dense"] > 0
    assert totals["speedup"] == pytest.approx(totals["wall_ms_dense"] / totals["wall_ms_fca"])
    assert len(report["timings"]["fca"]["layer_ms"]) == LAYERS
    assert report["padded"] is None


def test_dense_flag_gives_ratio_one(fcabert_bin, minilm_models, small_input):
    report = profile_json(fcabert_bin, "-m", minilm_models["single"], str(small_input), "--dense")
    assert report["schedule"]["keep_ratios"] == []
    assert report["totals"]["reduction_ratio"] == 1.0
    assert report["totals"]["flops_fca"] == report["totals"]["flops_dense"]
    for row in report["layers"]:
        assert row["tokens_in"] == row["tokens_out"] == report["input"]["tokens"]
        assert row["flops_fca"] == 0 and row["percent_of_dense"] == 100.0


def test_padded_length_matches_the_analytic_numbers(fcabert_bin, minilm_models, small_input):
    report = profile_json(fcabert_bin, "-m", minilm_models["single"], str(small_input),
                          "--keep-ratios", RATIOS, "--clusters", "4", "--padded-length", "128")
    padded = report["padded"]
    assert padded["length"] == 128
    dense, fca = padded["dense"], padded["fca"]
    assert dense["sequences"] == fca["sequences"] == 1 and dense["tokens"] == 128
    per_layer = dense_layer(128)
    for layer in dense["layers"]:
        assert layer["tokens_in"] == layer["tokens_out"] == 128
        assert layer["linear"] == per_layer["linear"] == 2 * 128 * 384 * 1536 * 3
        assert layer["attention"] == per_layer["attention"]
        assert layer["fca"] == 0
    assert dense["totals"]["linear"] == 6 * per_layer["linear"]
    assert dense["totals"]["attention"] == 6 * per_layer["attention"]
    assert dense["totals"]["total"] == 6 * per_layer["total"]
    # Outside the encoder: embedding 2*n0*d, pooler 2*d*d, classifier 2*d*L (L = 2 labels).
    assert dense["total"] == 6 * per_layer["total"] + 2 * 128 * D + 2 * D * D + 2 * D * 2
    assert dense["macs"] == (6 * per_layer["total"] + 2 * D * D + 2 * D * 2) // 2
    for layer, rows in zip(fca["layers"], expected_rows(128, SCHEDULE, 4)):
        assert (layer["tokens_in"], layer["tokens_out"]) == rows[:2]
        assert layer["total"] == fca_layer(*rows)["total"]
    assert padded["reduction_ratio"] == pytest.approx(dense["total"] / fca["total"])
    assert padded["reduction_ratio"] > 1.5


def test_text_table(fcabert_bin, minilm_models, small_input):
    result = run_fcabert(fcabert_bin, "profile", "-q", "-r", "1", "-m", minilm_models["single"], str(small_input),
                         "--keep-ratios", RATIOS, "--clusters", "4", "--padded-length", "64")
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    assert lines[header].split() == ["layer", "tok_in", "tok_out", "GF_linear", "GF_attn", "GF_fca", "GF_total",
                                     "%dense", "ms_fca", "ms_dense"]
    rows = [line.split() for line in lines[header + 2:header + 2 + LAYERS]]
    assert [row[0] for row in rows] == [str(layer) for layer in range(LAYERS)]
    assert all(len(row) == 10 for row in rows)
    assert any(line.startswith("reduction ") and "x fewer FLOPs (dense / FCA)" in line for line in lines)
    assert any(line.startswith("time ") and "speed-up" in line for line in lines)
    assert any("one input of 64 tokens" in line for line in lines)
    assert result.stderr == ""  # -q: nothing on stderr


def test_plot_writes_a_wellformed_svg(fcabert_bin, minilm_models, small_input, tmp_path):
    # Names with XML metacharacters end up in the title and subtitle: they must be escaped.
    model = tmp_path / "model <a&b>.fcab"
    model.symlink_to(minilm_models["single"])
    plot = tmp_path / "profile.svg"
    run_fcabert(fcabert_bin, "profile", "-q", "-r", "1", "-m", str(model), str(small_input),
                "--keep-ratios", RATIOS, "--clusters", "4", "--plot", str(plot))
    root = ET.parse(plot).getroot()
    assert root.tag == SVG_NS + "svg"
    assert root.find(SVG_NS + "title").text.startswith("model <a&b>.fcab (sst2): dense vs FCA")
    charts = [g for g in root.iter(SVG_NS + "g") if g.get("class") == "chart"]
    assert len(charts) == 2  # GFLOPs per layer, ms per layer
    for chart in charts:
        bars = [r for r in chart.iter(SVG_NS + "rect") if r.get("class") == "bar"]
        assert len(bars) == 2 * LAYERS
        for series in ("dense", "FCA"):
            assert sorted(int(b.get("data-category")) for b in bars if b.get("data-series") == series) == \
                list(range(LAYERS))
        assert all(float(b.get("height")) >= 0 and float(b.get("data-value")) >= 0 for b in bars)
    flops_bars = [r for r in charts[0].iter(SVG_NS + "rect") if r.get("class") == "bar"]
    dense_heights = [float(b.get("height")) for b in flops_bars if b.get("data-series") == "dense"]
    fca_heights = [float(b.get("height")) for b in flops_bars if b.get("data-series") == "FCA"]
    assert all(f <= d for f, d in zip(fca_heights, dense_heights)) and fca_heights[-1] < dense_heights[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model <a&b>.fcab", "profile.svg"]  # no temp file left


def test_synthetic_inputs(fcabert_bin, minilm_models):
    report = profile_json(fcabert_bin, "-m", minilm_models["single"], "--synthetic-length", "40",
                          "--synthetic-count", "5", "--keep-ratios", RATIOS, "--clusters", "4")
    assert report["input"]["source"] == "synthetic" and report["input"]["lengths"] == [40] * 5
    for layer, rows in zip(report["layers"], expected_rows(40, SCHEDULE, 4)):
        assert (layer["tokens_in"], layer["tokens_out"]) == (5 * rows[0], 5 * rows[1])
    assert report["totals"]["reduction_ratio"] > 1


def test_pair_model_file_and_synthetic(fcabert_bin, minilm_models, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(PAIRS.read_text(encoding="utf-8").splitlines()[:4]) + "\n", encoding="utf-8")
    report = profile_json(fcabert_bin, "-m", minilm_models["pairs"], str(path), "--keep-ratios", RATIOS)
    assert report["input"]["sequences"] == 4
    synthetic = profile_json(fcabert_bin, "-m", minilm_models["pairs"], "--synthetic-length", "3",
                             "--synthetic-count", "2")
    assert synthetic["input"]["lengths"] == [3, 3]
    bad = tmp_path / "bad.tsv"
    bad.write_text("first\tsecond\nno tab here\n", encoding="utf-8")
    result = run_fcabert(fcabert_bin, "profile", "-m", minilm_models["pairs"], str(bad), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"fcabert: error: {bad}:2: expected two tab-separated columns (a sentence pair), found 1"]


@pytest.mark.parametrize("args, message", [
    (["FILE", "--synthetic-length", "10"], "either FILE or --synthetic-length"),
    ([], "nothing to profile"),
    (["--synthetic-length", "1"], "--synthetic-length 1 is out of range"),
    (["--synthetic-length", "100000"], "--synthetic-length 100000 is out of range"),
    (["--synthetic-length", "8", "--synthetic-count", "0"], "--synthetic-count must be at least 1"),
    (["--synthetic-count", "3", "FILE"], "--synthetic-count needs --synthetic-length"),
    (["FILE", "--repeat", "0"], "--repeat must be at least 1"),
    (["FILE", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["FILE", "--padded-length", "0"], "--padded-length 0 is out of range"),
    (["FILE", "--keep-ratios", "0.5,0.9,1,1,1,1"], "must not increase"),
    (["FILE", "--dense", "--clusters", "2"], "--dense cannot be combined"),
    (["EMPTY"], "no input lines"),
    (["MISSING"], "no such file"),
])
def test_bad_flags_give_one_error_line(fcabert_bin, minilm_models, small_input, tmp_path, args, message):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    names = {"FILE": str(small_input), "EMPTY": str(empty), "MISSING": str(tmp_path / "missing.txt")}
    args = [names.get(a, a) for a in args]
    result = run_fcabert(fcabert_bin, "profile", "-q", "-m", minilm_models["single"], *args, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fcabert: error: ") and message in lines[0], result.stderr
    assert result.stdout == ""
