"""Bad model files through the CLI: each gives exactly one clear error line naming the file,
exit code 1, and no output (the reader's own cases are unit-tested in test_format_corrupt)."""
from __future__ import annotations

import json
import struct

import pytest

from conftest import run_fcabert
from tools.fcabert_model import read_model_file, write_model_file


@pytest.fixture(scope="module")
def small_source(minilm_models):
    """The metadata and tensors of a real converted model, to rewrite with one defect."""
    metadata, tensors = read_model_file(minilm_models["single"])
    return minilm_models["single"], metadata, tensors


def assert_refused(fcabert_bin, model_path, *phrases):
    result = run_fcabert(fcabert_bin, "classify", "--model", str(model_path), "-", stdin="a fine film\n",
                         check=False)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fcabert: error: ") and str(model_path) in lines[0]
    for phrase in phrases:
        assert phrase in lines[0].lower(), lines[0]
    assert result.stdout == ""


def test_truncated_file(fcabert_bin, small_source, tmp_path):
    source, _, _ = small_source
    data = open(source, "rb").read()
    for cut in (4, 200, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.fcab"
        path.write_bytes(data[:cut])
        assert_refused(fcabert_bin, path)


def test_corrupted_header(fcabert_bin, small_source, tmp_path):
    source, _, _ = small_source
    data = bytearray(open(source, "rb").read())
    (header_length,) = struct.unpack("<Q", data[:8])
    data[8 + header_length // 2] = ord("\x01")  # a control byte in the middle of the JSON
    path = tmp_path / "corrupt.fcab"
    path.write_bytes(bytes(data))
    assert_refused(fcabert_bin, path)


def test_header_length_past_the_end(fcabert_bin, small_source, tmp_path):
    source, _, _ = small_source
    data = bytearray(open(source, "rb").read())
    data[:8] = struct.pack("<Q", 2 * 1024**3)  # a 2 GB header in a 91 MB file
    path = tmp_path / "huge_header.fcab"
    path.write_bytes(bytes(data))
    assert_refused(fcabert_bin, path, "header")


def test_tensor_with_the_wrong_shape(fcabert_bin, small_source, tmp_path):
    _, metadata, tensors = small_source
    entries = [(name, array, "F32") for name, array in tensors.items()]
    entries = [(n, a[:, :-1] if n == "bert.pooler.dense.weight" else a, d) for n, a, d in entries]
    path = tmp_path / "wrong_shape.fcab"
    write_model_file(path, metadata, entries)
    assert_refused(fcabert_bin, path, "bert.pooler.dense.weight", "shape")


def test_missing_tensor(fcabert_bin, small_source, tmp_path):
    _, metadata, tensors = small_source
    entries = [(n, a, "F32") for n, a in tensors.items() if n != "classifier.bias"]
    path = tmp_path / "missing.fcab"
    write_model_file(path, metadata, entries)
    assert_refused(fcabert_bin, path, "classifier.bias")


def test_missing_vocab(fcabert_bin, small_source, tmp_path):
    _, metadata, tensors = small_source
    metadata = dict(metadata)
    tokenizer = dict(metadata["tokenizer"] if isinstance(metadata["tokenizer"], dict)
                     else json.loads(metadata["tokenizer"]))
    del tokenizer["vocab"]
    metadata["tokenizer"] = tokenizer
    path = tmp_path / "no_vocab.fcab"
    write_model_file(path, metadata, [(n, a, "F32") for n, a in tensors.items()])
    assert_refused(fcabert_bin, path, "vocab")


def test_unknown_format_version(fcabert_bin, small_source, tmp_path):
    _, metadata, tensors = small_source
    metadata = dict(metadata, format_version=99)
    path = tmp_path / "v99.fcab"
    write_model_file(path, metadata, [(n, a, "F32") for n, a in tensors.items()])
    assert_refused(fcabert_bin, path, "version")
