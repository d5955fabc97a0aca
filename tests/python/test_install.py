"""`cmake --install`: the installed fcabert and fcabert-bench find their bundled model relative to
themselves (from any directory, after the prefix is moved), and a project of one's own builds against the installed
CMake package and classifies through the public C++ API (examples/classify_sentence)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_fcabert

SENTENCES = ["A fine film, warm and funny.", "Dull, shapeless and far too long."]


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def env_without_default_model() -> dict:
    env = dict(os.environ)
    env.pop("FCABERT_DEFAULT_MODEL", None)
    return env


@pytest.fixture(scope="module")
def installed(fcabert_bin, tmp_path_factory) -> Path:
    """The build tree installed into a prefix, which is then moved: nothing may point back."""
    build_dir = Path(fcabert_bin).parent
    if not (build_dir / "cmake_install.cmake").is_file():
        pytest.fail(f"{build_dir} is not a CMake build tree (FCABERT_BIN={fcabert_bin})")
    root = tmp_path_factory.mktemp("install")
    run("cmake", "--install", build_dir, "--prefix", root / "prefix")
    shutil.move(root / "prefix", root / "moved")
    return root / "moved"


def test_install_lays_out_binary_model_headers_and_package(installed):
    for relative in ("bin/fcabert", "bin/fcabert-bench", "share/fcabert/models/sst2-minilm-l6.fcab", "include/fcabert/engine.h",
                     "lib/libfcabert.a", "lib/cmake/fcabert/fcabertConfig.cmake"):
        assert (installed / relative).is_file(), relative


def test_installed_cli_finds_its_model_from_another_directory(installed, fcabert_bin, repo, tmp_path):
    sample = repo / "examples" / "reviews.txt"
    expected = run_fcabert(fcabert_bin, "classify", "--quiet", "--model",
                           str(repo / "models" / "sst2-minilm-l6.fcab"), str(sample)).stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    got = run(installed / "bin" / "fcabert", "classify", "--quiet", sample,
              cwd=elsewhere, env=env_without_default_model()).stdout
    assert got == expected
    assert len(got.splitlines()) == len(sample.read_text().splitlines())


def test_installed_bench_finds_its_model_from_another_directory(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tokens = elsewhere / "tokens.jsonl"
    tokens.write_text('{"ids": [101, 1037, 2986, 2143, 102]}\n{"ids": [101, 10634, 102]}\n')
    report = json.loads(run(installed / "bin" / "fcabert-bench", "--tokens", tokens.name, "-r", 1, "--warmup", 0,
                            cwd=elsewhere, env=env_without_default_model()).stdout)
    assert report["model"] == str((installed / "share" / "fcabert" / "models" / "sst2-minilm-l6.fcab").resolve())
    assert report["sequences"] == 2 and report["forward_allocations_outside_onednn"] == 0


@pytest.mark.parametrize("binary, args", [("fcabert", ["classify", "-"]), ("fcabert-bench", ["--tokens", "-"])])
def test_installed_binaries_name_the_missing_model(installed, tmp_path, binary, args):
    # A copy of the installed binary in a prefix without share/: the error says where it looked.
    (tmp_path / "bin").mkdir()
    shutil.copy2(installed / "bin" / binary, tmp_path / "bin" / binary)
    result = subprocess.run([str(tmp_path / "bin" / binary), *args], input="fine\n",
                            capture_output=True, text=True, env=env_without_default_model())
    assert result.returncode == 1
    assert f"{binary}: error: " in result.stderr
    assert str(tmp_path / "share" / "fcabert" / "models" / "sst2-minilm-l6.fcab") in result.stderr


def test_consumer_project_builds_against_the_installed_package(installed, fcabert_bin, repo, tmp_path):
    build = tmp_path / "build"
    run("cmake", "-S", repo / "examples" / "classify_sentence", "-B", build,
        f"-DCMAKE_PREFIX_PATH={installed}", "-DCMAKE_BUILD_TYPE=Release")
    run("cmake", "--build", build, "-j2")
    model = installed / "share" / "fcabert" / "models" / "sst2-minilm-l6.fcab"
    got = run(build / "classify_sentence", model, *SENTENCES).stdout
    expected = run_fcabert(fcabert_bin, "classify", "--quiet", "--model", str(model), "-",
                           stdin="\n".join(SENTENCES) + "\n").stdout
    assert got == expected
    assert len(got.splitlines()) == len(SENTENCES)


def test_evaluation_example_reports_what_fcabert_eval_reports(installed, fcabert_bin, repo, tmp_path):
    """examples/evaluate_glue evaluates SST-2 dev through the installed library; its accuracy and
    FLOPs are those of `fcabert eval` on the same model and data."""
    sst2 = repo.parent / "shared" / "data" / "glue" / "SST-2"
    assert (sst2 / "dev.tsv").is_file(), f"{sst2}/dev.tsv is missing"
    build = tmp_path / "build"
    run("cmake", "-S", repo / "examples" / "evaluate_glue", "-B", build,
        f"-DCMAKE_PREFIX_PATH={installed}", "-DCMAKE_BUILD_TYPE=Release")
    run("cmake", "--build", build, "-j2")
    model = installed / "share" / "fcabert" / "models" / "sst2-minilm-l6-fca.fcab"
    got = run(build / "evaluate_glue", model, sst2).stdout.splitlines()

    report_file = tmp_path / "report.json"
    run_fcabert(fcabert_bin, "eval", "--quiet", "--model", str(model), "--data", str(sst2), "--json", str(report_file))
    fca = json.loads(report_file.read_text())["splits"][0]["fca"]
    assert got == [
        f"sst2 dev: {fca['examples']} examples",
        f"  {'accuracy':<12} {100 * fca['metrics']['accuracy']:.2f}",
        f"  {'GFLOPs':<12} {fca['flops']['total'] / 1e9:.3f}",
        f"  {'dense GFLOPs':<12} {fca['flops']['dense_total'] / 1e9:.3f}",
    ]
    assert fca["examples"] == 872 and fca["flops"]["total"] < fca["flops"]["dense_total"]
