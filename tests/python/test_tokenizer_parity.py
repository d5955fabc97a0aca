"""Token-id parity of `fcabert tokenize` with Hugging Face's slow `transformers.BertTokenizer`.

Every test writes the exact texts it compares to a temporary file (one per line, pairs as two
tab-separated columns), runs the CLI once on that file with `--format jsonl`, and compares
input_ids and token_type_ids of every line with `BertTokenizer(vocab)(text[, pair],
truncation=True, max_length=N)`. A failure names the first mismatching line and shows both id
lists (and both token lists).

Inputs: all GLUE dev sets in ../shared/data/glue (or $FCABERT_SHARED_DATA/glue), split on
"\\n" and "\\t" only, no quote handling, as raw text; the edge-case files in tests/data; every
Unicode code point; and seeded random strings built from troublesome characters.

Run: FCABERT_BIN=build-tok/fcabert .venv/bin/python -m pytest tests/python/test_tokenizer_parity.py -s
(-s shows how many lines each test compared).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

import transformers  # noqa: E402
from transformers import BertTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()  # "overflowing tokens are not returned" etc.

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FCABERT_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
VOCABS = {
    "uncased": SHARED / "vocab" / "bert-base-uncased-vocab.txt",
    "cased": SHARED / "vocab" / "bert-base-cased-vocab.txt",
}
EDGE_SINGLE = REPO / "tests" / "data" / "tokenizer_edge_cases.txt"
EDGE_PAIRS = REPO / "tests" / "data" / "tokenizer_edge_pairs.tsv"

# task: (dev file, has a header line, text columns)
GLUE = {
    "SST-2": ("SST-2/dev.tsv", True, (0,)),
    "CoLA": ("CoLA/dev.tsv", False, (3,)),
    "MRPC": ("MRPC/dev.tsv", True, (3, 4)),  # the file starts with a UTF-8 BOM (in the header)
    "STS-B": ("STS-B/dev.tsv", True, (7, 8)),
    "QNLI": ("QNLI/dev.tsv", True, (1, 2)),
    "RTE": ("RTE/dev.tsv", True, (1, 2)),
    "WNLI": ("WNLI/dev.tsv", True, (1, 2)),
}
CASED_TASKS = ("SST-2", "RTE", "MRPC", "CoLA")
MAX_LENS = (128, 24)

_tokenizers: dict = {}
_ids_cache: dict = {}


def hf_tokenizer(vocab: str) -> BertTokenizer:
    if vocab not in _tokenizers:
        _tokenizers[vocab] = BertTokenizer(str(VOCABS[vocab]), do_lower_case=(vocab == "uncased"))
    return _tokenizers[vocab]


def hf_encode(vocab: str, example: tuple[str, ...], max_len: int) -> dict:
    """BertTokenizer(vocab)(*example, truncation=True, max_length=max_len), with the
    tokenization of each text cached across max_lens. It is the same code path: __call__ ->
    _encode_plus runs convert_tokens_to_ids(tokenize(text)) on each text and hands the ids to
    prepare_for_model, which adds [CLS]/[SEP], the token types and truncates.
    compare() checks this against the public call on a sample of every input."""
    tokenizer = hf_tokenizer(vocab)
    ids = []
    for text in example:
        key = (vocab, text)
        if key not in _ids_cache:
            _ids_cache[key] = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
        ids.append(_ids_cache[key])
    return tokenizer.prepare_for_model(*ids, truncation=True, max_length=max_len)


def raw_lines(path: Path) -> list[str]:
    """The lines of a file exactly as stored: UTF-8, split on "\\n" only (no universal
    newlines: "\\r", U+0085 and U+2028 stay inside the line)."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def glue_examples(task: str) -> list[tuple[str, ...]]:
    name, header, columns = GLUE[task]
    path = SHARED / "glue" / name
    if not path.is_file():
        pytest.fail(f"{path} not found: set FCABERT_SHARED_DATA to the shared data directory")
    lines = raw_lines(path)
    if header:
        lines = lines[1:]
    examples = []
    for number, line in enumerate(lines, start=2 if header else 1):
        fields = line.split("\t")
        assert len(fields) > max(columns), f"{path}:{number}: only {len(fields)} columns"
        examples.append(tuple(fields[c] for c in columns))
    assert examples, f"{path}: no examples"
    return examples


def run_cli(fcabert_bin: str, tmp_path: Path, examples: list[tuple[str, ...]], vocab: str, max_len: int,
            model: str | None = None) -> list[dict]:
    """Runs `fcabert tokenize` once on all examples; with `model`, takes the tokenizer (and
    pair mode) from that model file and relies on its default max_len."""
    pairs = len(examples[0]) == 2
    for example in examples:  # tabs are ordinary characters in single-text mode
        assert all("\n" not in text and (not pairs or "\t" not in text) for text in example), example
    path = tmp_path / ("input.tsv" if pairs else "input.txt")
    path.write_bytes("".join("\t".join(example) + "\n" for example in examples).encode("utf-8"))
    command = [fcabert_bin, "tokenize", "--format", "jsonl"]
    if model is not None:
        command += ["--model", model]
    else:
        command += ["--vocab", str(VOCABS[vocab]), "--max-len", str(max_len)]
        if vocab == "cased":
            command.append("--cased")
        if pairs:
            command.append("--pairs")
    result = subprocess.run(command + [str(path)], capture_output=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr.decode(errors='replace')}"
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert len(records) == len(examples), f"{len(examples)} lines in, {len(records)} lines out"
    return records


def compare(fcabert_bin: str, tmp_path: Path, examples: list[tuple[str, ...]], vocab: str, max_len: int, label: str,
            model: str | None = None):
    records = run_cli(fcabert_bin, tmp_path, examples, vocab, max_len, model)
    tokenizer = hf_tokenizer(vocab)
    for number, (example, record) in enumerate(zip(examples, records), start=1):
        assert record["line"] == number
        expected = hf_encode(vocab, example, max_len)
        if number % 50 == 1:  # the shortcut equals the public API
            direct = tokenizer(*example, truncation=True, max_length=max_len)
            assert direct["input_ids"] == expected["input_ids"], f"line {number}"
            assert direct["token_type_ids"] == expected["token_type_ids"], f"line {number}"
        if record["input_ids"] != expected["input_ids"] or record["token_type_ids"] != expected["token_type_ids"]:
            pytest.fail(
                f"{label} ({vocab}, max_len {max_len}): first mismatch on line {number}: {example!r}\n"
                f"  BertTokenizer ids:  {expected['input_ids']}\n"
                f"  fcabert ids:        {record['input_ids']}\n"
                f"  BertTokenizer tokens: {tokenizer.convert_ids_to_tokens(expected['input_ids'])}\n"
                f"  fcabert tokens:       {record['tokens']}\n"
                f"  BertTokenizer types: {expected['token_type_ids']}\n"
                f"  fcabert types:       {record['token_type_ids']}",
                pytrace=False,
            )
        # The tokens printed must be the vocabulary entries of the ids.
        assert record["tokens"] == tokenizer.convert_ids_to_tokens(record["input_ids"]), f"line {number}"
    print(f"\n{label} ({vocab}, max_len {max_len}): {len(examples)} lines identical")


GLUE_CASES = [(task, "uncased", n) for task in GLUE for n in MAX_LENS] + [
    (task, "cased", n) for task in CASED_TASKS for n in MAX_LENS
]


@pytest.mark.parametrize("task,vocab,max_len", GLUE_CASES)
def test_glue_dev_parity(fcabert_bin, tmp_path, task, vocab, max_len):
    compare(fcabert_bin, tmp_path, glue_examples(task), vocab, max_len, f"GLUE {task} dev")


@pytest.mark.parametrize("vocab", ["uncased", "cased"])
@pytest.mark.parametrize("max_len", [512, 24, 5, 2])
def test_edge_cases_parity(fcabert_bin, tmp_path, vocab, max_len):
    examples = [(line,) for line in raw_lines(EDGE_SINGLE)]
    if max_len == 2:
        # HF skips truncation (and logs an error) when it would remove every token of a
        # single text; fcabert returns [CLS] [SEP]. Compare on texts with no tokens only.
        # test_text_tokenizer.cpp checks fcabert's result for the others.
        tokenizer = hf_tokenizer(vocab)
        examples = [e for e in examples if not tokenizer.tokenize(e[0])]
        assert examples
    compare(fcabert_bin, tmp_path, examples, vocab, max_len, "edge cases")


@pytest.mark.parametrize("vocab", ["uncased", "cased"])
@pytest.mark.parametrize("max_len", [512, 24, 7, 3])
def test_edge_pairs_parity(fcabert_bin, tmp_path, vocab, max_len):
    examples = [tuple(line.split("\t")) for line in raw_lines(EDGE_PAIRS)]
    assert all(len(e) == 2 for e in examples)
    compare(fcabert_bin, tmp_path, examples, vocab, max_len, "edge pairs")


def test_model_file_tokenizer_parity(fcabert_bin, tmp_path, minilm_models):
    """--model takes the tokenizer, its max_len (512) and pair mode from the model file.
    The MiniLM models carry the bert-base-uncased vocabulary (lower-casing)."""
    singles = [(line,) for line in raw_lines(EDGE_SINGLE)]
    compare(fcabert_bin, tmp_path, singles, "uncased", 512, "edge cases via --model", str(minilm_models["single"]))
    pairs = [tuple(line.split("\t")) for line in raw_lines(EDGE_PAIRS)]
    compare(fcabert_bin, tmp_path, pairs, "uncased", 512, "edge pairs via pair --model", str(minilm_models["pairs"]))


def all_code_points() -> list[int]:
    return [c for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF) and c != 0x0A]


@pytest.mark.parametrize("vocab", ["uncased", "cased"])
def test_every_code_point_parity(fcabert_bin, tmp_path, vocab):
    """Every code point once on its own (space-separated) and once in a run with its
    neighbours, which exercises categories, case mapping, NFC/NFD and the CJK ranges."""
    points = all_code_points()
    examples = []
    for start in range(0, len(points), 48):
        chunk = [chr(c) for c in points[start:start + 48]]
        examples.append((" ".join(chunk),))
        examples.append(("".join(chunk),))
    compare(fcabert_bin, tmp_path, examples, vocab, 100000, "every code point")


# Building blocks of the random texts: the characters and strings the rules treat specially.
PIECES = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    + [" ", " ", " ", "\t", "\r", "\u00a0", "\u2028", "\u2029", "\u3000", "\u1680", "\u200a"]
    + ["\x00", "\x07", "\x1c", "\x7f", "\u0085", "\u200b", "\u200d", "\ufeff", "\u00ad", "\ufffd", "\ue000", "\u180e"]
    + list("àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝßæœøÆŒØĲĳŉ")
    + [chr(c) for c in range(0x300, 0x370)] + ["\u0316", "\u0323", "\u0345", "\u20e3", "\ufe0f", "\u1dc0"]
    + ["\U0001d165", "\U0001d16d", "\u0f39", "\u302e", "\u093c", "\u0bbe", "\u0b3e", "\u0cd5"]
    + list("ΣσςΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΤΥΦΧΨΩάέήίόύώΐΰ") + ["\u0130", "\u0131", "\u212a", "\u212b", "\u2126", "\u1e9e"]
    + list("我爱北京天安门東京日本語한국어텍스트カタカナひらがなｶﾀｶﾅＡＢＣ１２３！")
    + ["\u1100", "\u1161", "\u11a8", "\uac00", "\uf900", "\ufa0e", "\U0002f800", "\U00020000", "\U00031350"]
    + ["🍕", "👍", "🏽", "👨", "🫨", "❤", "☺", "①", "½", "²", "ﬁ", "ǅ", "Ⅻ", "𝐀", "١", "ה", "ע", "ب"]
    + ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[cls]", "[", "]", "CLS", "SEP", "##", "#"]
    + ["the", "un", "##able", "aff", "able", "ing", "tion", "x" * 30, "é" * 40, "a" * 99]
)


@pytest.mark.parametrize("vocab", ["uncased", "cased"])
def test_random_text_parity(fcabert_bin, tmp_path, vocab):
    rng = random.Random(20240601)
    singles = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60))) for _ in range(3000)]
    compare(fcabert_bin, tmp_path, [(s,) for s in singles], vocab, 64, "random texts")
    pairs = [(singles[i].replace("\t", " "), singles[i + 1].replace("\t", " ")) for i in range(0, 3000, 2)]
    compare(fcabert_bin, tmp_path, pairs, vocab, 20, "random pairs")
