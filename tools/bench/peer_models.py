"""The peers' model files, made once per benchmarked fcabert model file (same weights):

  <dir>/hf/          BertForSequenceClassification.save_pretrained, with the fast tokenizer
                     (tokenizer.json) built from the model file's vocabulary
  <dir>/onnx/        model.onnx (torch.onnx export), model.opt.onnx (ORT's BERT fusions),
                     model.int8.onnx (quantize_dynamic of the fused graph, per channel)
  <dir>/openvino/    model.xml/.bin: ov.convert_model of model.onnx, weights kept f32 (the
                     precision is chosen at compile time, see peer_runtime.py)
  <dir>/ct2/         CTranslate2's TransformersConverter of hf/ (weights f32; the compute
                     type is chosen at load)
  <dir>/head.npz     the classifier head (CTranslate2's Encoder stops at the pooler)
  <dir>/labels.json  label names, pair input, truncation length (the whole-job scripts)

The conversions of a preparation are not timed: a user converts once and loads many times.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def log(message: str) -> None:
    print(f"[run_bench] {message}", file=sys.stderr, flush=True)


def save_hf(torch_model, meta: dict, out: Path) -> Path:
    """The Hugging Face directory: weights, config and a fast tokenizer with our vocabulary."""
    from transformers import BertTokenizerFast
    out.mkdir(parents=True, exist_ok=True)
    tok = meta["tokenizer"]
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(tok["vocab"]) + "\n", encoding="utf-8")
    # The vocabulary goes first, positionally: transformers 5 names that parameter `vocab` and
    # ignores `vocab_file=`, leaving a tokenizer of the special tokens alone.
    fast = BertTokenizerFast(str(vocab), do_lower_case=tok["lowercase"],
                             strip_accents=tok["strip_accents"], tokenize_chinese_chars=tok["tokenize_chinese_chars"],
                             model_max_length=tok["max_len"])
    fast.save_pretrained(str(out))
    torch_model.save_pretrained(str(out))
    return out


def export_onnx(torch_model, config: dict, out: Path) -> dict:
    """model.onnx and model.opt.onnx (ORT's BERT optimizer); returns the fusions it made."""
    import torch
    from onnxruntime.transformers import optimizer
    out.mkdir(parents=True, exist_ok=True)
    ids = torch.ones((2, 16), dtype=torch.long)
    names = ("input_ids", "attention_mask", "token_type_ids")
    with torch.inference_mode():
        torch.onnx.export(torch_model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out / "model.onnx"),
                          input_names=list(names), output_names=["logits"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names} | {"logits": {0: "batch"}},
                          opset_version=14, do_constant_folding=True)
    optimized = optimizer.optimize_model(str(out / "model.onnx"), model_type="bert", num_heads=config["num_heads"],
                                         hidden_size=config["hidden_size"], use_gpu=False)
    optimized.save_model_to_file(str(out / "model.opt.onnx"))
    return {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}


def quantize_onnx(out: Path) -> Path:
    """model.int8.onnx: dynamic quantization of the *fused* graph (faster than quantizing the
    raw export, whose attention stays unfused), s8 weights per output channel (per tensor
    cost accuracy in an earlier measurement). The fused graph's contrib ops carry no type
    information the quantizer can infer, hence DefaultTensorType."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice, every time
    quantize_dynamic(str(out / "model.opt.onnx"), str(out / "model.int8.onnx"), per_channel=True,
                     weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out / "model.int8.onnx"


def convert_openvino(onnx_path: Path, out: Path) -> Path:
    import openvino as ov
    out.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path))  # keeps the export's dynamic batch and length
    # compress_to_fp16=False: the default would store f16 weights, and the f32 hint would
    # then not be f32 arithmetic on the original weights
    ov.save_model(model, str(out / "model.xml"), compress_to_fp16=False)
    return out / "model.xml"


def convert_ct2(hf_dir: Path, out: Path) -> Path:
    """CTranslate2's converter through a shim: it calls from_pretrained(dtype=...), the
    keyword that newer transformers use; our pinned transformers 4.40 calls it torch_dtype
    (and would pass an unknown dtype= on to the config)."""
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            if "dtype" in kwargs:
                kwargs["torch_dtype"] = kwargs.pop("dtype")
            return model_class.from_pretrained(model_name_or_path, **kwargs)

    Converter(str(hf_dir)).convert(str(out), force=True)
    return out


def prepare(torch_model, meta: dict, out: Path, peers: list[str]) -> dict:
    """Every artefact the chosen peers need, under `out`; returns facts for the report."""
    out.mkdir(parents=True, exist_ok=True)
    tok = meta["tokenizer"]
    (out / "labels.json").write_text(json.dumps({"labels": meta["head"]["labels"],
                                                 "pair_input": meta["head"]["pair_input"],
                                                 "max_len": tok["max_len"]}), encoding="utf-8")
    head = torch_model.classifier
    np.savez(out / "head.npz", weight=head.weight.detach().numpy().astype(np.float32),
             bias=head.bias.detach().numpy().astype(np.float32))
    save_hf(torch_model, meta, out / "hf")  # the whole-job scripts' tokenizer, torch's and CT2's weights
    facts = {}
    if any(p.startswith(("ort", "ov")) for p in peers):
        facts["ort_fusions"] = export_onnx(torch_model, meta["config"], out / "onnx")
    if "ort-int8" in peers:
        quantize_onnx(out / "onnx")
    if any(p.startswith("ov") for p in peers):
        convert_openvino(out / "onnx" / "model.onnx", out / "openvino")
    if any(p.startswith("ct2") for p in peers):
        convert_ct2(out / "hf", out / "ct2")
    return facts
