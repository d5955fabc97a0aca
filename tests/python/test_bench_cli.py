"""fcabert-bench, the benchmark executable (src/bench/): its flags, the report's keys, the
--serve protocol, the bundled model found from the build tree, clear errors; and the fcabert
CLI no longer has a bench subcommand. tools/bench/run_bench.py drives it (test_bench_driver.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_MODEL, PARITY, run_fcabert

REPORT_KEYS = {"model", "geometry", "precision", "schedule", "fca", "threads", "batch_size", "batches",
               "sequences", "tokens", "load_ms", "flops_per_pass", "linear_flops_per_pass",
               "encoder_linear_flops_per_pass", "weights_file_bytes", "forward_allocations",
               "forward_allocations_outside_onednn", "run_allocations_per_batch", "workspace_bytes", "dnnl",
               "encoder_threads", "precision_requested", "arithmetic", "precision_reason"}
PASS_KEYS = {"pass_ms", "encoder_linear_ms", "encoder_linear_gflops", "batch_ms_median", "batch_ms_p90",
             "examples_per_s", "peak_rss_bytes"}


@pytest.fixture(scope="module")
def token_file(fcabert_bin, tmp_path_factory) -> Path:
    """Six SST-2 dev sentences as the token lines the driver writes: {"ids", "type_ids"}."""
    rows = run_fcabert(fcabert_bin, "tokenize", "--format", "jsonl", "--model", str(DEFAULT_MODEL), "-",
                       stdin="\n".join((PARITY / "sst2_dev.txt").read_text().splitlines()[:6]) + "\n").stdout
    path = tmp_path_factory.mktemp("tokens") / "sst2.tokens.jsonl"
    path.write_text("".join(json.dumps({"ids": r["input_ids"], "type_ids": r["token_type_ids"]}) + "\n"
                            for r in map(json.loads, rows.splitlines())))
    return path


def bench(binary, *args, stdin=None, cwd=None):
    env = dict(os.environ)
    env.pop("FCABERT_DEFAULT_MODEL", None)  # the bundled model, found relative to the binary
    return subprocess.run([binary, *map(str, args)], input=stdin, capture_output=True, text=True, cwd=cwd,
                          env=env)


def test_fcabert_has_no_bench_subcommand(fcabert_bin):
    subcommands = run_fcabert(fcabert_bin, "--help").stdout.split("Subcommands:")[1]
    assert "classify" in subcommands and not re.search(r"^\s*bench\s", subcommands, re.M)
    result = run_fcabert(fcabert_bin, "bench", "--gemm", check=False)
    assert result.returncode != 0


def test_help_lists_the_modes_and_shared_flags(fcabert_bench_bin):
    result = bench(fcabert_bench_bin, "--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--tokens", "--serve", "--gemm", "--quick", "--batch-size", "--threads", "--repeat", "--warmup",
                 "--limit", "--keep-ratios", "--clusters", "--pooling", "--dense", "--precision", "--verbose"):
        assert flag in result.stdout, flag
    # the bundled model from the build tree (build/share/fcabert/models links to models/)
    assert str(DEFAULT_MODEL.resolve()) in result.stdout


def test_report_keys_and_allocation_counts(fcabert_bench_bin, token_file, tmp_path):
    result = bench(fcabert_bench_bin, "--tokens", token_file, "-b", 4, "-r", 2, "--warmup", 0, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == REPORT_KEYS | {"passes", "pass_ms_median", "peak_rss_bytes"}
    assert report["model"] == str(DEFAULT_MODEL.resolve())
    assert (report["sequences"], report["batches"]) == (6, 2)
    assert len(report["passes"]) == 2 and all(set(p) == PASS_KEYS for p in report["passes"])
    if report["forward_allocations"] is None:  # a sanitizer build: it owns malloc, no hooks
        assert "built with a sanitizer" in result.stderr
        assert report["forward_allocations_outside_onednn"] is None and report["run_allocations_per_batch"] is None
        return
    # oneDNN allocates on every GEMM call; the engine's own forward pass never does.
    assert report["forward_allocations"] > 0
    assert report["forward_allocations_outside_onednn"] == 0
    assert report["run_allocations_per_batch"] >= report["forward_allocations"] / report["batches"]


def test_serve_answers_one_pass_per_run_line(fcabert_bench_bin, token_file):
    result = bench(fcabert_bench_bin, "--serve", "--tokens", token_file, "-b", 3, "--warmup", 0, "--dense",
                   "--precision", "int8", stdin="run\nrun\nquit\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3 and set(lines[0]) == REPORT_KEYS
    assert lines[0]["precision"] == "int8" and lines[0]["fca"] is False
    assert lines[0]["precision_requested"] == "int8" and lines[0]["precision_reason"] == "requested"
    assert lines[0]["arithmetic"].startswith("int8 (FFN down-projection ")
    assert all(set(p) == PASS_KEYS for p in lines[1:])


def test_gemm_quick_measures_every_precision(fcabert_bench_bin):
    result = bench(fcabert_bench_bin, "--gemm", "--quick", "-t", 1)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["peak_gflops"]) == {"fp32", "bf16", "int8"}
    assert len(report["gemm"]) == 6  # one shape x 3 precisions x bare primitive / engine Linear
    assert sorted(g["engine_linear"] for g in report["gemm"]) == [False] * 3 + [True] * 3


@pytest.mark.parametrize("args, message", [
    ((), "fcabert-bench: error: --tokens FILE is needed (or --gemm)"),
    (("--tokens", "missing.jsonl"), "fcabert-bench: error: cannot open the token file missing.jsonl (--tokens)"),
    (("--gemm", "-t", "0"), "fcabert-bench: error: --threads must be at least 1"),
])
def test_errors_name_the_flag(fcabert_bench_bin, tmp_path, args, message):
    result = bench(fcabert_bench_bin, *args, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr


def test_serve_rejects_an_unknown_command(fcabert_bench_bin, token_file):
    result = bench(fcabert_bench_bin, "--serve", "--tokens", token_file, "--warmup", 0, stdin="go\n")
    assert result.returncode == 1
    assert 'fcabert-bench: error: --serve: unknown command "go" on stdin (run or quit)' in result.stderr


def test_auto_reports_the_precision_it_chose(fcabert_bench_bin, token_file):
    result = bench(fcabert_bench_bin, "--serve", "--tokens", token_file, "-b", 3, "--warmup", 0, "--dense",
                   "--precision", "auto", stdin="quit\n")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.splitlines()[0])
    assert info["precision_requested"] == "auto" and info["precision"] in ("fp32", "bf16", "int8")
    assert info["arithmetic"].startswith(info["precision"])
    assert info["precision_reason"].startswith("auto: one layer's GEMMs on 256 rows took fp32 ")
