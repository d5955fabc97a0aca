"""Jobs split into shards (docs/SCALE_OUT.md): the GNU parallel recipes of
examples/scale-out/, run exactly as the docs show them, give what one unsharded run gives;
shards that do not make one job are refused by classify-merge and eval-merge with one line.
(The Slurm recipes run for real in scripts/slurm-check.sh, a stage of .ci/run.)"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_MODEL, run_fcabert

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "examples" / "scale-out"
SST2 = REPO.parent / "shared" / "data" / "glue" / "SST-2"
FCA_MODEL = REPO / "models" / "sst2-minilm-l6-fca.fcab"



@pytest.fixture(scope="module", autouse=True)
def gnu_parallel():
    if shutil.which("parallel") is None:
        pytest.fail("GNU parallel is missing: scripts/setup.sh installs it (Debian package parallel)")


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> Path:
    """400 real sentences (SST-2 dev), an empty line among them."""
    lines = [row.split("\t")[0] for row in (SST2 / "dev.tsv").read_text().splitlines()[1:401]]
    lines[150] = ""
    path = tmp_path_factory.mktemp("reviews") / "reviews.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(fcabert_bin: str, *args) -> subprocess.CompletedProcess:
    """fcabert with `args`, whatever its exit status."""
    return run_fcabert(fcabert_bin, *map(str, args), check=False)


def recipe_env(fcabert_bin: str) -> dict:
    """The environment the docs assume: fcabert (the one under test) first on PATH."""
    return {**os.environ, "PATH": f"{Path(fcabert_bin).parent}{os.pathsep}{os.environ['PATH']}"}


def run_recipe(fcabert_bin: str, script: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(RECIPES / script), *map(str, args)], cwd=cwd, env=recipe_env(fcabert_bin),
                          capture_output=True, text=True, timeout=600)


def test_the_docs_show_every_recipe_verbatim():
    doc = (REPO / "docs" / "SCALE_OUT.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", doc, flags=re.S)
    scripts = sorted(RECIPES.rglob("*.sh"))
    assert len(scripts) == 6
    for script in scripts:
        assert script.read_text() in blocks, f"docs/SCALE_OUT.md does not show {script.relative_to(REPO)} as it is"
        assert os.access(script, os.X_OK), script


@pytest.mark.parametrize("options", [["--format", "jsonl"], ["--format", "tsv", "-m", str(FCA_MODEL)],
                                     ["--precision", "int8", "--batch-size", "7"]],
                         ids=["jsonl", "tsv-fca", "int8-text"])
def test_parallel_classify_is_byte_identical_to_one_run(fcabert_bin, reviews, tmp_path, options):
    done = run_recipe(fcabert_bin, "parallel-classify.sh", reviews, tmp_path / "merged.out", 3, *options,
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    whole = cli(fcabert_bin, "classify", "-q", *options, str(reviews))
    assert whole.returncode == 0, whole.stderr
    assert (tmp_path / "merged.out").read_bytes() == whole.stdout.encode()
    assert list(tmp_path.iterdir()) == [tmp_path / "merged.out"]  # the shard files are gone


def test_parallel_eval_merges_to_the_unsharded_report(fcabert_bin, tmp_path):
    done = run_recipe(fcabert_bin, "parallel-eval.sh", SST2, tmp_path / "merged.json", 3, "--limit", 300,
                      "-m", FCA_MODEL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "all 3 shards merged" in done.stdout and done.stdout.count("task       sst2") == 1
    assert cli(fcabert_bin, "eval", "-q", "--data", str(SST2), "--limit", "300", "-m", str(FCA_MODEL),
                       "--json", str(tmp_path / "whole.json")).returncode == 0
    merged, whole = (json.loads((tmp_path / name).read_text()) for name in ("merged.json", "whole.json"))
    assert merged["shards"] == [1, 2, 3]
    for key in ("model_sha256", "precision", "schedule", "fcabert_version"):
        assert merged[key] == whole[key]
    m, w = merged["splits"][0]["fca"], whole["splits"][0]["fca"]
    for key in ("metrics", "confusion_matrix", "examples", "tokens", "flops"):
        assert m[key] == w[key], key
    assert m["flops"]["reduction_ratio"] > 1.5  # the FCA model's schedule ran


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fcabert: error: "), done.stderr
    return lines[0]


def test_classify_merge_refuses_shards_of_another_job_with_one_line(fcabert_bin, reviews, tmp_path):
    def shard(k: int, n: int = 3, *options) -> str:
        out = tmp_path / f"part-{k}-of-{n}{'-'.join(['', *options]).replace('/', '_')}.jsonl"
        done = cli(fcabert_bin, "classify", "-q", "--threads", "1", "--shard", f"{k}/{n}", *options,
                           "-o", str(out), str(reviews))
        assert done.returncode == 0, done.stderr
        return str(out)

    parts = [shard(k) for k in (1, 2, 3)]
    merge = lambda *files: cli(fcabert_bin, "classify-merge", *files)  # noqa: E731
    assert merge(*parts).returncode == 0
    assert "shard(s) 2 of 3 are missing" in one_error_line(merge(parts[0], parts[2]))
    assert "appears in both" in one_error_line(merge(*parts, parts[1]))
    assert "differ in model (SHA-256 of the file)" in one_error_line(
        merge(parts[0], parts[1], shard(3, 3, "-m", str(FCA_MODEL))))
    # The header names the arithmetic GEMM by GEMM and that of attention:
    # "int8 (FFN down-projection bf16, attention bf16)" with AMX, else
    # "int8 (FFN down-projection int8 per row, attention fp32)".
    assert re.search(r"differ in precision: int8 \(FFN down-projection (bf16|int8 per row), attention (bf16|fp32)\) against fp32",
                     one_error_line(
        merge(parts[0], parts[1], shard(3, 3, "--precision", "int8"))))
    assert "differ in output settings" in one_error_line(merge(parts[0], parts[1], shard(3, 3, "-f", "tsv")))
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(Path(parts[2]).read_bytes()[:-10])
    assert "shard 3/3 is incomplete" in one_error_line(merge(parts[0], parts[1], str(truncated)))
    assert "not an fcabert classify shard file" in one_error_line(merge(parts[0], parts[1], str(reviews)))


def test_classify_merge_writes_nothing_when_a_shard_failed(fcabert_bin, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good\n" * 40 + b"the \xff movie\n" + b"fine\n" * 10)  # line 41: batch 1 (shard 2)
    runs = [cli(fcabert_bin, "classify", "-q", "--shard", f"{k}/2", "-o", str(tmp_path / f"p{k}"), str(bad))
            for k in (1, 2)]
    assert runs[0].returncode == 0
    assert "bad.txt:41: invalid UTF-8" in one_error_line(runs[1])
    assert not (tmp_path / "p2").exists()  # all or nothing
    assert "cannot open the shard file" in one_error_line(
        cli(fcabert_bin, "classify-merge", "-o", str(tmp_path / "merged"), str(tmp_path / "p1"),
                    str(tmp_path / "p2")))
    assert not (tmp_path / "merged").exists()


def test_eval_merge_refuses_a_shard_of_another_model_or_precision(fcabert_bin, tmp_path):
    def shard(k: int, *options) -> str:
        out = tmp_path / f"shard-{k}{'-'.join(['', *options]).replace('/', '_')}.json"
        done = cli(fcabert_bin, "eval", "-q", "--data", str(SST2), "--limit", "60", "--threads", "1",
                           "--shard", f"{k}/2", "--json", str(out), *options)
        assert done.returncode == 0, done.stderr
        return str(out)

    first = shard(1)
    assert "its model (SHA-256 of the file)" in one_error_line(
        cli(fcabert_bin, "eval-merge", first, shard(2, "-m", str(FCA_MODEL))))
    assert re.search(r"its precision \(int8 \(FFN down-projection (bf16|int8 per row), attention (bf16|fp32)\)\) differs", one_error_line(
        cli(fcabert_bin, "eval-merge", first, shard(2, "--precision", "int8"))))
    assert "shard(s) 2 of 2 are missing" in one_error_line(cli(fcabert_bin, "eval-merge", first))
    # The same model file under another path (another machine's checkout) merges.
    copy = tmp_path / "elsewhere" / DEFAULT_MODEL.name
    copy.parent.mkdir()
    shutil.copy(DEFAULT_MODEL, copy)
    assert cli(fcabert_bin, "eval-merge", first, shard(2, "-m", str(copy))).returncode == 0
