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


# ---- int8 files: each defect refused by the engine (one line naming the file and tensor) and
# by tools/fcabert_model.py alike

def tiny_int8_model(path):
    import numpy as np
    from tools.tiny_model import tiny_metadata, write_tiny_model
    metadata = tiny_metadata(["good", "bad", "film"], layers=1, hidden_size=8, num_heads=2, intermediate_size=16,
                             max_len=16, clusters=1, pooling="mean", provenance={"source": "test_bad_model_files"})
    rng = np.random.default_rng(5)
    return write_tiny_model(path, metadata, lambda name, shape: rng.normal(0.0, 0.5, shape), "I8")


def edit_header(path, edit):
    """Rewrites the JSON header through `edit(header)`, keeping the data section."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 64)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length:])


def set_scale(path, name, row, value):
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    begin = json.loads(data[8:8 + length])[name]["data_offsets"][0]
    data[8 + length + begin + 4 * row:8 + length + begin + 4 * row + 4] = struct.pack("<f", value)
    path.write_bytes(bytes(data))


def rename(header, old, new):
    header[new] = header.pop(old)


def append_f32_tensor(path, name, count):
    """Adds an F32 tensor of `count` ones after the last tensor (the tensors still tile the file)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    end = len(data) - 8 - length  # the size of the data section
    entry = {"dtype": "F32", "shape": [count], "data_offsets": [end, end + 4 * count]}
    edit_header(path, lambda header: header.update({name: entry}))
    path.write_bytes(path.read_bytes() + struct.pack(f"<{count}f", *[1.0] * count))


INT8_DEFECTS = {
    "nan_scale": (lambda p: set_scale(p, "bert.pooler.dense.weight_scale", 2, float("nan")),
                  "bert.pooler.dense.weight_scale", "scale of row 2 is nan"),
    "negative_scale": (lambda p: set_scale(p, "classifier.weight_scale", 1, -1.0),
                       "classifier.weight_scale", "scale of row 1 is -1"),
    "missing_scale": (lambda p: edit_header(p, lambda h: rename(h, "bert.pooler.dense.weight_scale",
                                                                "bert.pooler.dense.weight_scales")),
                      "bert.pooler.dense.weight", "without its scale tensor"),
    "orphan_scale": (lambda p: append_f32_tensor(p, "bert.pooler.dense.bias_scale", 8),
                     "bert.pooler.dense.bias_scale", "scale tensor for"),
    "scale_wrong_shape": (lambda p: edit_header(p, lambda h: h["bert.pooler.dense.weight_scale"].update(shape=[2, 4])),
                          "bert.pooler.dense.weight_scale", "must be f32 [8] (one per row)"),
    "one_dimensional_int8": (lambda p: edit_header(p, lambda h: h["bert.pooler.dense.bias"].update(dtype="I8",
                                                                                                 shape=[32])),
                             "bert.pooler.dense.bias", "only for 2-d tensors"),
}


@pytest.mark.parametrize("defect", sorted(INT8_DEFECTS))
def test_int8_defects(fcabert_bin, tmp_path, defect):
    from tools.fcabert_model import ModelFileError
    make_defect, tensor, phrase = INT8_DEFECTS[defect]
    path = tiny_int8_model(tmp_path / f"{defect}.fcab")
    run_fcabert(fcabert_bin, "classify", "--model", str(path), "-", stdin="a good film\n")  # valid before
    read_model_file(path)
    make_defect(path)
    assert_refused(fcabert_bin, path, tensor, phrase)
    with pytest.raises(ModelFileError) as refused:
        read_model_file(path)
    assert tensor in str(refused.value) and phrase in str(refused.value).lower(), refused.value
