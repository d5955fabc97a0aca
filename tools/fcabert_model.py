"""The fcabert model file in Python: the tensor spec, a writer and a reader.

A model file is a safetensors file (docs/MODEL_FORMAT.md): an 8-byte little-endian header
length N, N bytes of JSON header (padded with spaces so the data section starts at a multiple
of 64), then the tensors, contiguous, row-major, little-endian. The header's "__metadata__"
holds string values: "format" = "fcabert", "format_version" = "1", and the JSON texts
"config", "tokenizer", "head", "fca" and "provenance".

This module mirrors the C++ reader/writer (src/format/) and is shared by the tools:
  expected_tensors(config, num_outputs)  the one spec of tensor names and shapes
  write_model_file(path, metadata, tensors)
  read_model_file(path) -> (metadata, {name: float32 array})
Only numpy is needed (besides tools/atomic_write.py, which is standard library only).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from tools.atomic_write import atomic_output

FORMAT_NAME = "fcabert"
FORMAT_VERSION = "1"
READABLE_VERSIONS = ("1",)
ALIGNMENT = 64
MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"
METADATA_SECTIONS = ("config", "tokenizer", "head", "fca", "provenance")
DTYPE_SIZES = {"F32": 4, "BF16": 2}
CONFIG_KEYS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_act")


class ModelFileError(Exception):
    """A model file that cannot be written or read; the message names the file."""


def expected_tensors(config: dict, num_outputs: int) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor a model file holds, in canonical order, with the shape `config` implies.
    Names follow Hugging Face BertForSequenceClassification; Linear weights are [out, in].
    Mirrors expected_tensors() in src/format/tensor_spec.cpp."""
    d, f = config["hidden_size"], config["intermediate_size"]

    def linear(prefix, out, inp):
        return [(f"{prefix}.weight", (out, inp)), (f"{prefix}.bias", (out,))]

    def layer_norm(prefix):
        return [(f"{prefix}.weight", (d,)), (f"{prefix}.bias", (d,))]

    spec = [("bert.embeddings.word_embeddings.weight", (config["vocab_size"], d)),
            ("bert.embeddings.position_embeddings.weight", (config["max_position_embeddings"], d)),
            ("bert.embeddings.token_type_embeddings.weight", (config["type_vocab_size"], d))]
    spec += layer_norm("bert.embeddings.LayerNorm")
    for i in range(config["num_layers"]):
        p = f"bert.encoder.layer.{i}"
        spec += linear(f"{p}.attention.self.query", d, d)
        spec += linear(f"{p}.attention.self.key", d, d)
        spec += linear(f"{p}.attention.self.value", d, d)
        spec += linear(f"{p}.attention.output.dense", d, d)
        spec += layer_norm(f"{p}.attention.output.LayerNorm")
        spec += linear(f"{p}.intermediate.dense", f, d)
        spec += linear(f"{p}.output.dense", d, f)
        spec += layer_norm(f"{p}.output.LayerNorm")
    spec += linear("bert.pooler.dense", d, d)
    spec += linear("classifier", num_outputs, d)
    return spec


# ---------------------------------------------------------------------------------------------
# bfloat16

def f32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """fp32 -> bf16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------------------------------------
# writing

def _encode(array: np.ndarray, dtype: str) -> bytes:
    array = np.asarray(array, dtype=np.float32)
    if dtype == "F32":
        return array.astype("<f4", copy=False).tobytes(order="C")
    if dtype == "BF16":
        return f32_to_bf16_bits(array).astype("<u2", copy=False).tobytes(order="C")
    raise ModelFileError(f"unsupported dtype {dtype!r}; use F32 or BF16")


def _storage_order(entries):
    """Tensors whose byte size is a multiple of 64 first (so each starts 64-aligned), then
    the other F32 tensors, then the rest: every tensor stays aligned to its element size.
    safetensors allows no gaps between tensors, so this is how alignment is kept."""
    def nbytes(e):
        return int(np.prod(e[1].shape, dtype=np.int64)) * DTYPE_SIZES[e[2]]
    aligned = [e for e in entries if nbytes(e) % ALIGNMENT == 0]
    f32 = [e for e in entries if nbytes(e) % ALIGNMENT != 0 and e[2] == "F32"]
    rest = [e for e in entries if nbytes(e) % ALIGNMENT != 0 and e[2] != "F32"]
    return aligned + f32 + rest


def metadata_strings(metadata: dict) -> dict:
    """The "__metadata__" map (all values strings) for metadata sections given as objects."""
    strings = {"format": FORMAT_NAME, "format_version": str(metadata.get("format_version", FORMAT_VERSION))}
    for key in METADATA_SECTIONS:
        value = metadata[key]
        strings[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return strings


def header_bytes(metadata: dict, entries) -> bytes:
    """The padded JSON header for (name, array, dtype) entries already in storage order."""
    header = {METADATA_KEY: metadata_strings(metadata)}
    offset = 0
    for name, array, dtype in entries:
        nbytes = int(np.prod(array.shape, dtype=np.int64)) * DTYPE_SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": [int(n) for n in array.shape], "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return text + b" " * ((-(8 + len(text))) % ALIGNMENT)


def write_model_file(path, metadata: dict, tensors) -> int:
    """Writes a model file atomically (tools/atomic_write.py); returns its size in bytes.

    metadata: {"config", "tokenizer", "head", "fca", "provenance"} as dicts (or JSON text);
    tensors: iterable of (name, float32 array, dtype "F32" | "BF16"). No checks against the
    config are made here; convert.py validates before it writes."""
    entries = [(name, np.asarray(array, dtype=np.float32), dtype) for name, array, dtype in tensors]
    names = [e[0] for e in entries]
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path}: duplicate tensor names")
    for name, _, dtype in entries:
        if dtype not in DTYPE_SIZES:
            raise ModelFileError(f"{path}: tensor {name!r}: unsupported dtype {dtype!r}; use F32 or BF16")
    entries = _storage_order(entries)
    header = header_bytes(metadata, entries)
    path = Path(path)
    with atomic_output(path) as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        for _, array, dtype in entries:
            out.write(_encode(array, dtype))
    return path.stat().st_size


# ---------------------------------------------------------------------------------------------
# reading

def _fail(path, message):
    raise ModelFileError(f"{path}: {message}")


def read_header(path) -> tuple[dict, int]:
    """(header dict, data start offset) after checking the length field and the JSON."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            _fail(path, f"file is truncated: {size} bytes, shorter than the 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            _fail(path, f"header length {length} exceeds the {MAX_HEADER_BYTES // 1_000_000} MB limit")
        if length > size - 8:
            _fail(path, f"file is truncated: the header declares {length} bytes but only {size - 8} follow")
        text = f.read(length)

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            _fail(path, f"duplicate key in the header: {sorted(k for k in keys if keys.count(k) > 1)[0]!r}")
        return dict(pairs)
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"header is not valid JSON: {e}")
    if not isinstance(header, dict):
        _fail(path, "header is not a JSON object")
    return header, 8 + length


def parse_metadata(path, header: dict) -> dict:
    """The metadata with its JSON sections decoded; checks the format name and version."""
    raw = header.get(METADATA_KEY)
    if not isinstance(raw, dict):
        _fail(path, 'header has no "__metadata__": not an fcabert model file; convert it with tools/convert.py')
    if raw.get("format") != FORMAT_NAME:
        _fail(path, f'metadata format is {raw.get("format")!r}, not "fcabert"; convert it with tools/convert.py')
    version = raw.get("format_version")
    if version not in READABLE_VERSIONS:
        _fail(path, f"unsupported format_version {version!r}; this reader reads format_version "
                    f"{', '.join(repr(v) for v in READABLE_VERSIONS)}")
    metadata = {"format": FORMAT_NAME, "format_version": version}
    for key in METADATA_SECTIONS:
        if not isinstance(raw.get(key), str):
            _fail(path, f"metadata has no {key!r} entry (a JSON text)")
        try:
            metadata[key] = json.loads(raw[key])
        except json.JSONDecodeError as e:
            _fail(path, f"metadata {key!r} is not valid JSON: {e}")
    missing = [k for k in CONFIG_KEYS if k not in metadata["config"]]
    if missing:
        _fail(path, f"metadata 'config' lacks {missing}")
    return metadata


def _read_tensor(path, data: memoryview, name: str, entry: dict) -> np.ndarray:
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        _fail(path, f"tensor {name!r}: unsupported dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        _fail(path, f"tensor {name!r}: bad shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= len(data)):
        _fail(path, f"tensor {name!r}: data_offsets {offsets!r} are outside the data section "
                    f"({len(data)} bytes); the file is truncated or corrupt")
    numel = 1
    for n in shape:
        numel *= n
    if offsets[1] - offsets[0] != numel * DTYPE_SIZES[dtype]:
        _fail(path, f"tensor {name!r}: data_offsets span {offsets[1] - offsets[0]} bytes but {dtype} {shape} "
                    f"needs {numel * DTYPE_SIZES[dtype]}")
    raw = data[offsets[0]:offsets[1]]
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    return bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2")).reshape(shape)


def read_model_file(path, check_spec: bool = True) -> tuple[dict, dict]:
    """(metadata, tensors) of a model file. metadata: "format", "format_version" and the
    decoded sections "config", "tokenizer", "head", "fca", "provenance"; tensors: name ->
    float32 numpy array (bf16 widened), in file order. With check_spec, every expected tensor
    must be present with its shape and nothing else. Raises ModelFileError."""
    header, data_start = read_header(path)
    metadata = parse_metadata(path, header)
    data = memoryview(Path(path).read_bytes())[data_start:]
    tensors = {}
    entries = sorted(((k, v) for k, v in header.items() if k != METADATA_KEY),
                     key=lambda kv: kv[1].get("data_offsets", [0])[0] if isinstance(kv[1], dict) else 0)
    for name, entry in entries:
        if not isinstance(entry, dict):
            _fail(path, f"tensor {name!r}: header entry is not an object")
        tensors[name] = _read_tensor(path, data, name, entry)
    if check_spec:
        check_tensors(path, metadata, {name: a.shape for name, a in tensors.items()})
    return metadata, tensors


def check_tensors(path, metadata: dict, shapes: dict) -> None:
    """Every expected tensor is present with its shape, and there is nothing else."""
    spec = expected_tensors(metadata["config"], len(metadata["head"]["labels"]))
    for name, shape in spec:
        if name not in shapes:
            _fail(path, f"missing tensor {name!r} (expected shape {list(shape)})")
        if tuple(shapes[name]) != tuple(shape):
            _fail(path, f"tensor {name!r} has shape {list(shapes[name])}, expected {list(shape)}")
    extra = sorted(set(shapes) - {name for name, _ in spec})
    if extra:
        _fail(path, f"unexpected tensor {extra[0]!r} (not part of BertForSequenceClassification)")
