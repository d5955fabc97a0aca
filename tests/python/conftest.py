"""Shared pytest fixtures: the fcabert binary, the repository paths, the MiniLM test models."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))


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
def minilm_models(tmp_path_factory) -> dict:
    """The pretrained MiniLM with seeded random heads, converted exactly as the parity
    references were made (tools/make_parity_data.py)."""
    from make_parity_data import build_minilm_models
    return build_minilm_models(tmp_path_factory.mktemp("minilm"))


def run_fcabert(binary: str, *args: str, stdin: str | None = None, check: bool = True):
    result = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"fcabert {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result
