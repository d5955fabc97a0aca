"""The peer engines, each in the configuration a knowledgeable user would pick, behind one
interface: feed(batch) turns a padded batch into the engine's native input (untimed, like
fcabert-bench's reading of its token file), infer_all(feeds) runs every batch and returns the
logits per batch and the milliseconds per batch.

  ort-fp32   ONNX Runtime, the graph with ORT's BERT fusions (EmbedLayerNormalization,
             Attention, BiasGelu, SkipLayerNormalization), intra-op threads = --threads
  ort-int8   the same fused graph through quantize_dynamic (s8 weights per channel)
  ov         OpenVINO at its default inference precision (bf16 on a CPU with AVX512_BF16 or
             AMX, f32 elsewhere); LATENCY hint at batch 1, THROUGHPUT with an AsyncInferQueue
             at larger batches (OpenVINO's own advice for each); dynamic shapes
  ov-f32     the same with INFERENCE_PRECISION_HINT f32
  ct2-int8   CTranslate2's Encoder, compute_type int8; the classifier head (one small matmul
  ct2-fp32   on its pooled output) in numpy, since CTranslate2 has no classification head
  torch      PyTorch eager, BertForSequenceClassification under torch.inference_mode()

The engine libraries are imported only by the runtime that needs them: each peer runs in its
own process (tools/bench/peer_worker.py, tools/bench/classify_peer.py), so one library's
thread pool (CTranslate2 ships Intel's OpenMP, torch GNU's) never shares a process with
another's. The artefacts (ONNX files, OpenVINO IR, CTranslate2 model, Hugging Face directory)
are written by tools/bench/peer_models.py.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tools.bench.workloads import Batch

# key -> (display name, exact): exact peers compute in fp32 and must match the reference
# logits within --fp32-tolerance; the others (int8, bf16) must agree on the argmax.
PEERS = {
    "ort-fp32": ("ONNX Runtime fp32", True),
    "ort-int8": ("ONNX Runtime int8", False),
    "ov": ("OpenVINO default", False),
    "ov-f32": ("OpenVINO f32", True),
    "ct2-int8": ("CTranslate2 int8", False),
    "ct2-fp32": ("CTranslate2 fp32", True),
    "torch": ("PyTorch eager fp32", True),
}
PEER_GROUPS = {"ort": ["ort-fp32", "ort-int8"], "openvino": ["ov", "ov-f32"], "ct2": ["ct2-int8", "ct2-fp32"]}


def expand_peers(text: str) -> list[str]:
    """'ort,ct2-int8' -> ['ort-fp32', 'ort-int8', 'ct2-int8'], in PEERS' order."""
    wanted = set()
    for word in (w.strip() for w in text.split(",") if w.strip()):
        if word in PEER_GROUPS:
            wanted.update(PEER_GROUPS[word])
        elif word in PEERS:
            wanted.add(word)
        else:
            raise SystemExit(f"run_bench.py: error: unknown peer {word!r} (one of "
                             f"{', '.join([*PEERS, *PEER_GROUPS])})")
    return [k for k in PEERS if k in wanted]


class Runtime:
    """Sequential engines: one synchronous call per batch."""
    inference_precision = "f32"

    def feed(self, batch: Batch):
        return batch.feed()

    def infer(self, feed) -> np.ndarray:
        raise NotImplementedError

    def infer_all(self, feeds: list) -> tuple[list[np.ndarray], list[float]]:
        outputs, batch_ms = [], []
        for feed in feeds:
            t0 = time.perf_counter()
            outputs.append(self.infer(feed))
            batch_ms.append((time.perf_counter() - t0) * 1000)
        return outputs, batch_ms


class OrtRuntime(Runtime):
    def __init__(self, path: Path, threads: int, precision: str):
        import onnxruntime as ort
        self.inference_precision = precision
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def infer(self, feed) -> np.ndarray:
        return self.session.run(None, feed)[0]


class OpenVinoRuntime(Runtime):
    def __init__(self, xml: Path, threads: int, batch_size: int, precision: str | None):
        import openvino as ov
        config = {"INFERENCE_NUM_THREADS": threads,
                  # THROUGHPUT runs several streams (requests in flight) over the threads; at
                  # batch 1 a user wants one request done as soon as possible: LATENCY.
                  "PERFORMANCE_HINT": "LATENCY" if batch_size == 1 else "THROUGHPUT"}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        self.compiled = ov.Core().compile_model(str(xml), "CPU", config)
        # what the plugin resolved the hint to on this CPU: "bf16" or "f32"
        self.inference_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.asynchronous = batch_size > 1
        if self.asynchronous:
            jobs = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self.queue = ov.AsyncInferQueue(self.compiled, jobs)
        else:
            self.request = self.compiled.create_infer_request()

    def infer(self, feed) -> np.ndarray:
        return self.request.infer(feed)[0].copy()

    def infer_all(self, feeds: list) -> tuple[list[np.ndarray], list[float]]:
        if not self.asynchronous:
            return super().infer_all(feeds)
        outputs: list = [None] * len(feeds)
        started: list = [0.0] * len(feeds)
        batch_ms: list = [0.0] * len(feeds)

        def done(request, i):  # the output buffer belongs to the request: copy it out
            outputs[i] = request.get_output_tensor(0).data.copy()
            batch_ms[i] = (time.perf_counter() - started[i]) * 1000

        self.queue.set_callback(done)
        for i, feed in enumerate(feeds):
            started[i] = time.perf_counter()
            self.queue.start_async(feed, i)
        self.queue.wait_all()
        return outputs, batch_ms


class Ct2Runtime(Runtime):
    def __init__(self, model_dir: Path, head: Path, threads: int, compute_type: str):
        import ctranslate2
        self.ct2 = ctranslate2
        self.encoder = ctranslate2.Encoder(str(model_dir), device="cpu", compute_type=compute_type,
                                           intra_threads=threads, inter_threads=1)
        self.inference_precision = compute_type
        weights = np.load(head)
        self.weight_t = np.ascontiguousarray(weights["weight"].T)
        self.bias = weights["bias"]

    def feed(self, batch: Batch):
        # A dense int32 array with lengths: the Encoder's fastest input (no Python lists to
        # walk); token types only where a pair has them (it takes them only as lists).
        ids = self.ct2.StorageView.from_array(np.ascontiguousarray(batch.input_ids, dtype=np.int32))
        lengths = self.ct2.StorageView.from_array(batch.lengths().astype(np.int32))
        types = batch.token_type_ids.tolist() if batch.token_type_ids.any() else None
        return ids, lengths, types

    def infer(self, feed) -> np.ndarray:
        ids, lengths, types = feed
        out = self.encoder.forward_batch(ids, lengths, token_type_ids=types)
        return np.asarray(out.pooler_output, dtype=np.float32) @ self.weight_t + self.bias


class TorchRuntime(Runtime):
    def __init__(self, hf_dir: Path, threads: int):
        import torch
        from transformers import BertForSequenceClassification
        torch.set_num_threads(threads)
        self.torch = torch
        self.model = BertForSequenceClassification.from_pretrained(str(hf_dir)).eval()

    def feed(self, batch: Batch):
        return {k: self.torch.from_numpy(v) for k, v in batch.feed().items()}

    def infer(self, feed) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(**feed).logits.numpy()


def load_runtime(peer: str, artefacts: Path, threads: int, batch_size: int) -> Runtime:
    """The runtime of one peer from the artefacts tools/bench/peer_models.py wrote."""
    a = Path(artefacts)
    if peer == "ort-fp32":
        return OrtRuntime(a / "onnx" / "model.opt.onnx", threads, "f32")
    if peer == "ort-int8":
        return OrtRuntime(a / "onnx" / "model.int8.onnx", threads, "int8")
    if peer in ("ov", "ov-f32"):
        return OpenVinoRuntime(a / "openvino" / "model.xml", threads, batch_size, "f32" if peer == "ov-f32" else None)
    if peer in ("ct2-int8", "ct2-fp32"):
        return Ct2Runtime(a / "ct2", a / "head.npz", threads, "int8" if peer == "ct2-int8" else "float32")
    if peer == "torch":
        return TorchRuntime(a / "hf", threads)
    raise SystemExit(f"run_bench.py: error: unknown peer {peer!r} (one of {', '.join(PEERS)})")


def read_labels(artefacts: Path) -> dict:
    """{"labels", "pair_input", "max_len"} of the model the artefacts were made from."""
    return json.loads((Path(artefacts) / "labels.json").read_text(encoding="utf-8"))
