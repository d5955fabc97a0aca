"""The fcabert model file in Python: the tensor spec, a writer and a reader.

A model file is a safetensors file (docs/MODEL_FORMAT.md): an 8-byte little-endian header
length N, N bytes of JSON header (padded with spaces so the data section starts at a multiple
of 64), then the tensors, contiguous, row-major, little-endian. The header's "__metadata__"
holds string values: "format" = "fcabert", "format_version" = "1", and the JSON texts
"config", "tokenizer", "head", "fca" and "provenance".

Tensors are stored as F32, BF16 or I8: int8 with one F32 scale per row in a companion tensor
NAME + "_scale" (2-D tensors only; value = int8 * scale[row]).

This module mirrors the C++ reader/writer (src/format/) and is shared by the tools:
  expected_tensors(config, num_outputs)  the one spec of tensor names and shapes
  write_model_file(path, metadata, tensors)
  copy_with_metadata(source, output, sections)   the same tensors, new metadata sections
  read_model_file(path) -> (metadata, {name: float32 array})   I8 dequantized, scales folded in
  read_stored_tensors(path) -> {name: array as stored}          int8 codes and "_scale" tensors too
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
DTYPE_SIZES = {"F32": 4, "BF16": 2, "I8": 1}
STORED_NUMPY_DTYPES = {"F32": "<f4", "BF16": "<u2", "I8": "i1"}  # BF16 as its bit patterns
SCALE_SUFFIX = "_scale"  # NAME + SCALE_SUFFIX holds the per-row scales of the I8 tensor NAME
INT8_LIMIT = 127  # symmetric: -128 is never written
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
# int8 with per-row scales (the same float32 arithmetic as src/format/int8.cpp, so both writers
# store the same bytes for the same values)

def int8_row_scales(values: np.ndarray) -> np.ndarray:
    """max|row| / 127 per row of a 2-D float32 array, in float32 (0 for an all-zero row)."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape[1] == 0:
        return np.zeros(values.shape[0], np.float32)
    return (np.abs(values).max(axis=1) / np.float32(INT8_LIMIT)).astype(np.float32)


def quantize_int8_rows(values: np.ndarray, scales: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, float32 scales) of a 2-D float32 array: code = rint(value / scale) (ties to
    even), clamped to [-127, 127], 0 in a row whose scale is 0. The scales default to
    int8_row_scales(values); given ones (e.g. a file's own) are used as they are."""
    values = np.asarray(values, dtype=np.float32)
    scales = int8_row_scales(values) if scales is None else np.asarray(scales, dtype=np.float32)
    divisor = np.where(scales > 0, scales, np.float32(1))[:, None]
    codes = np.clip(np.rint(values / divisor), -INT8_LIMIT, INT8_LIMIT)
    codes[scales == 0] = 0
    return codes.astype(np.int8), scales


def dequantize_int8_rows(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 values = code * scale[row]."""
    return codes.astype(np.float32) * np.asarray(scales, dtype=np.float32)[:, None]


# ---------------------------------------------------------------------------------------------
# writing

def _check_int8_source(path, name, array, scale_entry):
    """An I8 tensor to write: 2-D, finite; its given scales (if any) F32, one per row, >= 0."""
    if array.ndim != 2:
        raise ModelFileError(f"{path}: tensor {name!r} has shape {list(array.shape)}: dtype I8 (one scale per "
                             f"row) is only for 2-D tensors; store it as F32 or BF16")
    if not np.isfinite(array).all():
        row, column = (int(i[0]) for i in np.nonzero(~np.isfinite(array)))
        raise ModelFileError(f"{path}: tensor {name!r} cannot be stored as I8: the value at row {row}, column "
                             f"{column} is not finite")
    if scale_entry is None:
        return
    scale_name, scales, scale_dtype = scale_entry
    if scale_dtype != "F32" or scales.shape != (array.shape[0],):
        raise ModelFileError(f"{path}: tensor {scale_name!r} holds the scales of I8 tensor {name!r} and must be "
                             f"F32 [{array.shape[0]}], not {scale_dtype} {list(scales.shape)}")
    if not (np.isfinite(scales) & (scales >= 0)).all():
        row = int(np.nonzero(~(np.isfinite(scales) & (scales >= 0)))[0][0])
        raise ModelFileError(f"{path}: tensor {scale_name!r}: scale of row {row} is not finite and >= 0")


def _stored_arrays(path, entries):
    """(name, dtype, array as stored) for (name, float32 array, dtype) entries: F32 as is, BF16
    as its bit patterns, I8 as int8 codes followed by its "_scale" tensor unless the entries
    hold that already (its scales are then used: a file read back is copied bit for bit)."""
    by_name = {e[0]: e for e in entries}
    stored = []
    for name, array, dtype in entries:
        if dtype == "F32":
            stored.append((name, dtype, array.astype("<f4", copy=False)))
        elif dtype == "BF16":
            stored.append((name, dtype, f32_to_bf16_bits(array).astype("<u2", copy=False)))
        else:
            given = by_name.get(name + SCALE_SUFFIX)
            _check_int8_source(path, name, array, given)
            codes, scales = quantize_int8_rows(array, None if given is None else given[1])
            stored.append((name, dtype, codes))
            if given is None:
                stored.append((name + SCALE_SUFFIX, "F32", scales.astype("<f4", copy=False)))
    return stored


def _storage_order(stored):
    """Tensors whose byte size is a multiple of 64 first (so each starts 64-aligned), then
    the others by decreasing element size (F32, BF16, I8): every tensor stays aligned to its
    element size. safetensors allows no gaps between tensors, so this is how alignment is kept."""
    aligned = [e for e in stored if e[2].nbytes % ALIGNMENT == 0]
    rest = [e for dtype in ("F32", "BF16", "I8") for e in stored if e[2].nbytes % ALIGNMENT != 0 and e[1] == dtype]
    return aligned + rest


def metadata_strings(metadata: dict) -> dict:
    """The "__metadata__" map (all values strings) for metadata sections given as objects."""
    strings = {"format": FORMAT_NAME, "format_version": str(metadata.get("format_version", FORMAT_VERSION))}
    for key in METADATA_SECTIONS:
        value = metadata[key]
        strings[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return strings


def header_bytes(metadata: dict, stored) -> bytes:
    """The padded JSON header for (name, dtype, array as stored) entries in storage order."""
    header = {METADATA_KEY: metadata_strings(metadata)}
    offset = 0
    for name, dtype, array in stored:
        nbytes = int(np.prod(array.shape, dtype=np.int64)) * DTYPE_SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": [int(n) for n in array.shape], "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return text + b" " * ((-(8 + len(text))) % ALIGNMENT)


def write_model_file(path, metadata: dict, tensors) -> int:
    """Writes a model file atomically (tools/atomic_write.py); returns its size in bytes.

    metadata: {"config", "tokenizer", "head", "fca", "provenance"} as dicts (or JSON text);
    tensors: iterable of (name, float32 array, dtype "F32" | "BF16" | "I8"). An I8 tensor (2-D)
    is quantized per row (quantize_int8_rows) and its "_scale" tensor added, unless `tensors`
    holds that too (F32, one scale per row), whose scales are then used. No checks against the
    config are made here; convert.py validates before it writes."""
    entries = [(name, np.asarray(array, dtype=np.float32), dtype) for name, array, dtype in tensors]
    names = [e[0] for e in entries]
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path}: duplicate tensor names")
    for name, _, dtype in entries:
        if dtype not in DTYPE_SIZES:
            raise ModelFileError(f"{path}: tensor {name!r}: unsupported dtype {dtype!r}; use F32, BF16 or I8")
    stored = _storage_order(_stored_arrays(path, entries))
    header = header_bytes(metadata, stored)
    path = Path(path)
    with atomic_output(path) as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        for _, _, array in stored:
            out.write(np.ascontiguousarray(array).tobytes(order="C"))
    return path.stat().st_size


def copy_with_metadata(source, output, sections: dict) -> int:
    """Writes a copy of the model file `source` to `output` (atomically) with the metadata
    sections in `sections` (e.g. {"fca": {...}, "provenance": {...}}) replaced; the tensor
    bytes are copied unchanged. Returns the new file's size. Raises ModelFileError."""
    unknown = sorted(set(sections) - set(METADATA_SECTIONS))
    if unknown:
        raise ModelFileError(f"{source}: {unknown[0]!r} is not a metadata section ({', '.join(METADATA_SECTIONS)})")
    header, data_start = read_header(source)
    metadata = parse_metadata(source, header)
    metadata.update(sections)
    tensors = {k: v for k, v in header.items() if k != METADATA_KEY}
    text = json.dumps({METADATA_KEY: metadata_strings(metadata), **tensors}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % ALIGNMENT)
    output = Path(output)
    with open(source, "rb") as src, atomic_output(output) as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        src.seek(data_start)
        for chunk in iter(lambda: src.read(1 << 22), b""):
            out.write(chunk)
    return output.stat().st_size


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
    """The tensor as stored: float32, BF16 bit patterns (uint16) or int8 codes."""
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        _fail(path, f"tensor {name!r}: unsupported dtype {dtype!r}; this reader reads F32, BF16 and I8")
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
    return np.frombuffer(raw, dtype=STORED_NUMPY_DTYPES[dtype]).copy().reshape(shape)


def _stored_dtype(array: np.ndarray) -> str:
    return {np.dtype("<f4"): "F32", np.dtype("<u2"): "BF16", np.dtype("i1"): "I8"}[array.dtype]


def _check_int8_tensors(path, stored: dict) -> None:
    """The rules of the C++ reader (src/format/int8.cpp): every I8 tensor is 2-D and has its
    "_scale" tensor; every "_scale" tensor belongs to an I8 tensor, is F32 [rows] and holds
    finite scales >= 0."""
    for name, array in stored.items():
        if _stored_dtype(array) != "I8":
            continue
        if array.ndim != 2:
            _fail(path, f"tensor {name!r}: dtype I8 (int8 with one scale per row) is only for 2-D tensors, "
                        f"but the shape is {list(array.shape)}")
        if name + SCALE_SUFFIX not in stored:
            _fail(path, f"tensor {name!r}: I8 tensor without its scale tensor {name + SCALE_SUFFIX!r} "
                        f"(F32 [{array.shape[0]}], one scale per row); the file is incomplete")
    for name, scales in stored.items():
        if not name.endswith(SCALE_SUFFIX) or name == SCALE_SUFFIX:
            continue
        owner_name = name[:-len(SCALE_SUFFIX)]
        owner = stored.get(owner_name)
        if owner is None:
            _fail(path, f"tensor {name!r}: scale tensor without its I8 tensor {owner_name!r}")
        if _stored_dtype(owner) != "I8":
            _fail(path, f"tensor {name!r}: scale tensor for {owner_name!r}, which is "
                        f"{_stored_dtype(owner)}, not I8")
        if _stored_dtype(scales) != "F32" or scales.shape != (owner.shape[0],):
            _fail(path, f"tensor {name!r}: the scales of I8 tensor {owner_name!r} "
                        f"{list(owner.shape)} must be F32 [{owner.shape[0]}] (one per row), but this is "
                        f"{_stored_dtype(scales)} {list(scales.shape)}")
        bad = ~(np.isfinite(scales) & (scales >= 0))
        if bad.any():
            row = int(np.nonzero(bad)[0][0])
            _fail(path, f"tensor {name!r}: scale of row {row} is {scales[row]}; scales must be finite and >= 0")


def read_stored_tensors(path) -> dict:
    """name -> numpy array as stored, in file order: float32 (F32), uint16 bit patterns (BF16),
    int8 codes (I8), the "_scale" tensors of I8 ones included. The I8 rules are checked; the
    metadata only for its format and version. Raises ModelFileError."""
    header, data_start = read_header(path)
    parse_metadata(path, header)
    return _read_stored(path, header, data_start)


def _read_stored(path, header: dict, data_start: int) -> dict:
    data = memoryview(Path(path).read_bytes())[data_start:]
    stored = {}
    entries = sorted(((k, v) for k, v in header.items() if k != METADATA_KEY),
                     key=lambda kv: kv[1].get("data_offsets", [0])[0] if isinstance(kv[1], dict) else 0)
    for name, entry in entries:
        if not isinstance(entry, dict):
            _fail(path, f"tensor {name!r}: header entry is not an object")
        stored[name] = _read_tensor(path, data, name, entry)
    _check_int8_tensors(path, stored)
    return stored


def read_model_file(path, check_spec: bool = True) -> tuple[dict, dict]:
    """(metadata, tensors) of a model file. metadata: "format", "format_version" and the
    decoded sections "config", "tokenizer", "head", "fca", "provenance"; tensors: name ->
    float32 numpy array (bf16 widened, I8 dequantized with its scales; the "_scale" tensors are
    not listed), in file order. With check_spec, every expected tensor must be present with its
    shape and nothing else. Raises ModelFileError."""
    header, data_start = read_header(path)
    metadata = parse_metadata(path, header)
    stored = _read_stored(path, header, data_start)
    scales = {name + SCALE_SUFFIX for name, array in stored.items() if _stored_dtype(array) == "I8"}
    tensors = {}
    for name, array in stored.items():
        dtype = _stored_dtype(array)
        if dtype == "I8":
            tensors[name] = dequantize_int8_rows(array, stored[name + SCALE_SUFFIX])
        elif dtype == "BF16":
            tensors[name] = bf16_bits_to_f32(array)
        elif name not in scales:
            tensors[name] = array
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
