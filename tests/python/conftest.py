"""Shared pytest fixtures and helpers: the fcabert binary, the repository paths, the MiniLM
test models, and reading the engine's logits for the parity tests.

The tools are imported as the package `tools` (tools/__init__.py), which scripts/setup.sh
installs into .venv in editable mode; the tests also run tools as scripts in subprocesses
(`python tools/convert.py`), which find the package only through that install."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARITY = REPO / "tests" / "data" / "parity"
DEFAULT_MODEL = REPO / "models" / "sst2-minilm-l6.fcab"


def pytest_sessionstart(session):
    # A tool run as a script has its own folder, tools/, first on its import path, so it finds
    # the package only through the install; without it every such test would fail on its own
    # ImportError. The probe runs where such a script would: in tools/.
    probe = subprocess.run([sys.executable, "-c", "import tools"], cwd=REPO / "tools", capture_output=True)
    if probe.returncode != 0:
        pytest.exit(f"{sys.executable} cannot import the tools package: run scripts/setup.sh "
                    f"(or .venv/bin/pip install -e .)", returncode=2)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def fcabert_bin() -> str:
    path = os.environ.get("FCABERT_BIN", str(REPO / "build" / "fcabert"))
    if not Path(path).is_file():
        pytest.fail(f"fcabert binary {path} not found: build first (scripts/test.sh does) or set FCABERT_BIN")
    return path


@pytest.fixture(scope="session")
def fcabert_bench_bin(fcabert_bin) -> str:
    """The benchmark executable, built next to fcabert (CMake target fcabert_bench)."""
    path = Path(fcabert_bin).with_name("fcabert-bench")
    if not path.is_file():
        pytest.fail(f"fcabert-bench binary {path} not found next to {fcabert_bin}: build first")
    return str(path)


@pytest.fixture(scope="session")
def minilm_models(tmp_path_factory) -> dict:
    """The pretrained MiniLM with seeded random heads, converted exactly as the parity
    references were made (tools/make_parity_data.py)."""
    from tools.make_parity_data import build_minilm_models
    return build_minilm_models(tmp_path_factory.mktemp("minilm"))


def run_fcabert(binary: str, *args: str, stdin: str | None = None, check: bool = True):
    result = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"fcabert {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def read_jsonl(text: str):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def classify_logits(binary, model, input_path, batch_size):
    """`fcabert classify --format jsonl` rows, at the default precision (fp32 GEMMs)."""
    out = run_fcabert(binary, "classify", "--model", str(model), "--format", "jsonl", "--quiet",
                      "--batch-size", str(batch_size), str(input_path))
    return read_jsonl(out.stdout)


def classify_with_precision(binary, model, input_path, batch_size, precision):
    """`fcabert classify --format jsonl` rows with --precision (the bf16 and int8 parity tests)."""
    out = run_fcabert(binary, "classify", "--precision", precision, "--model", str(model), "--format", "jsonl",
                      "--quiet", "--batch-size", str(batch_size), str(input_path))
    return read_jsonl(out.stdout)


def argmax(logits):
    return max(range(len(logits)), key=logits.__getitem__)
