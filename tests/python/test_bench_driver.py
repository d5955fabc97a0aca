"""Smoke test of tools/bench/run_bench.py --quick on a tiny random model (CI-fast).

Asserts behaviour, never timing: every engine ran every repetition on the same sequences,
the FCA runs did fewer FLOPs than the dense ones, ONNX Runtime's BERT optimizer fused the
attention, the GEMM microbenchmark measured all three precisions, the steady-state allocation
check ran, and the markdown table was written with every engine and the target rows. The
fcabert engines run in fcabert-bench, found next to the fcabert binary.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest


@pytest.fixture(scope="module")
def report(tmp_path_factory, fcabert_bin):
    pytest.importorskip("onnxruntime")
    from tools.bench import run_bench
    work = tmp_path_factory.mktemp("bench")
    model = run_bench.write_random_bert_base(work / "tiny.fcab", run_bench.DEFAULT_MODEL, layers=2, hidden=32,
                                             heads=2, intermediate=64)
    out_json, out_md = work / "r.json", work / "r.md"
    assert run_bench.main(["--quick", "--fcabert", fcabert_bin, "--model", str(model), "--datasets", "mrpc",
                           "--batch-sizes", "1,4", "--work-dir", str(work), "--json", str(out_json),
                           "--markdown", str(out_md)]) == 0
    return json.loads(out_json.read_text()), out_md.read_text()


ENGINES = {"fcabert dense fp32", "fcabert FCA fp32", "fcabert dense bf16", "fcabert FCA bf16",
           "fcabert dense int8", "fcabert FCA int8", "ONNX Runtime fp32", "PyTorch eager fp32"}


def test_every_engine_ran_every_workload(report):
    data, _ = report
    assert len(data["workloads"]) == 2  # MRPC pairs (token type ids 1 too) x 2 batch sizes
    for w in data["workloads"]:
        assert {r["engine"] for r in w["engines"]} == ENGINES
        assert w["sequences"] == (4 if w["batch_size"] == 1 else 16)
        assert w["padded_tokens"] >= w["tokens"] > 2 * w["sequences"]
        for r in w["engines"]:
            assert r["runs"] == data["repeat"] == 2
            assert r["examples_per_s"] > 0 and r["latency_ms_p90"] >= 0


def test_flops_and_engine_facts(report):
    data, _ = report
    for w in data["workloads"]:
        by = {r["engine"]: r for r in w["engines"]}
        dense, fca = by["fcabert dense fp32"], by["fcabert FCA fp32"]
        assert 0 < fca["flops_per_pass"] < dense["flops_per_pass"]
        assert by["fcabert dense bf16"]["flops_per_pass"] == dense["flops_per_pass"]
        assert by["fcabert dense int8"]["flops_per_pass"] == dense["flops_per_pass"]
        assert by["fcabert FCA int8"]["flops_per_pass"] < dense["flops_per_pass"]
        for name in ("fcabert dense fp32", "fcabert FCA bf16", "fcabert FCA int8"):
            assert by[name]["load_ms"] > 0 and by[name]["peak_rss_bytes"] > 0
            # the GEMMs are timed inside the pass: a part of it, doing real FLOPs
            assert by[name]["linear_gflops"] > 0 and 0 < by[name]["linear_share_of_time"] < 1
            assert isinstance(by[name]["forward_allocations"], int)
            # The steady-state forward allocates nothing of its own (oneDNN's calls aside).
            assert by[name]["forward_allocations_outside_onednn"] == 0
    assert all(data["gemm"]["peak_gflops"][p] > 0 for p in ("fp32", "bf16", "int8"))
    assert any("Attention" in name for fusions in data["ort_fusions"].values() for name in fusions)


def test_markdown_table(report):
    data, text = report
    for name in ENGINES:
        assert name in text
    assert "## Targets" in text and "FCA speed-up >= 85% of FLOPs ratio" in text
    assert "linear layers (encoder GEMMs, dense fp32) >= 70% of oneDNN fp32 peak" in text
    assert data["command"].startswith(".venv/bin/python tools/bench/run_bench.py")


def test_missing_fcabert_bench_is_named(fcabert_bin, tmp_path):
    from tools.bench import run_bench
    lone = tmp_path / "fcabert"  # a fcabert without its fcabert-bench
    shutil.copy2(fcabert_bin, lone)
    beside = f"no fcabert-bench binary at {tmp_path / 'fcabert-bench'} next to {lone}"
    with pytest.raises(SystemExit, match=re.escape(beside)):
        run_bench.main(["--quick", "--fcabert", str(lone), "--work-dir", str(tmp_path)])
    given = f"no fcabert-bench binary at {tmp_path / 'nowhere'} (--fcabert-bench)"
    with pytest.raises(SystemExit, match=re.escape(given)):
        run_bench.main(["--quick", "--fcabert", str(lone), "--fcabert-bench", str(tmp_path / "nowhere"),
                        "--work-dir", str(tmp_path)])
