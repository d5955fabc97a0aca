"""Hostile and faulty input through `fcabert classify` (docs/ROBUSTNESS.md): nothing lost on
a bad row in a large input, --skip-bad-rows, --output written through a temporary and a
rename, SIGINT/SIGTERM leaving no half-written file, a 10 MB line, a million lines in bounded
memory, and identical outputs whatever the batch size, thread count and input order.

Uses tiny models (hidden size 8, a few KB) made here, so that big inputs stay CI-fast."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_fcabert
from tools.tiny_model import tiny_metadata, write_tiny_model

WORDS = ["the", "a", "movie", "film", "good", "bad", "great", "awful", "plot", "acting", "is", "was", "not",
         "very", "fun", "dull", ",", ".", "!"]


def make_tiny_model(path: Path, pair: bool = False, layers: int = 1, ratios: list | None = None) -> Path:
    # Single letters and digits and their ## continuations: any word of letters and digits
    # tokenizes without [UNK].
    words = WORDS + [c for c in "bcdefghijklmnopqrstuvwxyz0123456789" if c not in WORDS]
    words += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    metadata = tiny_metadata(words, layers=layers, hidden_size=8, num_heads=2, intermediate_size=16, max_len=64,
                             pair=pair, keep_ratios=ratios or [], clusters=1, pooling="weighted",
                             provenance={"source": "tests/python/test_robustness_cli.py"})
    rng = np.random.default_rng(3)
    return write_tiny_model(path, metadata, lambda name, shape: rng.normal(0.0, 0.5, shape))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.fcab"))


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny_pair.fcab", pair=True))


@pytest.fixture(scope="module")
def tiny_fca(tmp_path_factory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny_fca.fcab", layers=2, ratios=[0.6, 0.4]))


def sentences(count: int, seed: int = 1, max_words: int = 30) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, max_words))) for _ in range(count)]


def write_lines(path: Path, lines: list, bad: dict | None = None) -> Path:
    """Writes text lines; `bad` maps 1-based line numbers to raw bytes put there instead."""
    data = [line.encode() if isinstance(line, str) else line for line in lines]
    for number, raw in (bad or {}).items():
        data[number - 1] = raw
    path.write_bytes(b"\n".join(data) + b"\n")
    return path


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


# ---------------------------------------------------------------------------------------------
# Nothing lost on a bad row


def test_bad_row_in_a_large_input_keeps_every_earlier_result(fcabert_bin, tiny, tmp_path):
    texts = sentences(20000)
    clean = write_lines(tmp_path / "clean.txt", texts)
    bad_line = 12345  # in the middle of a batch of 32: lines 12321..12344 of its batch come first
    broken = write_lines(tmp_path / "broken.txt", texts, {bad_line: b"caf\xe9 au lait"})
    args = ["classify", "-m", tiny, "-f", "jsonl", "-q", "-t", "1"]  # the default batch size, 32
    expected = run_fcabert(fcabert_bin, *args, str(clean)).stdout.splitlines()
    result = run_fcabert(fcabert_bin, *args, str(broken), check=False)
    assert result.returncode == 1
    assert f"{broken}:{bad_line}: invalid UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout.splitlines() == expected[: bad_line - 1]


def test_skip_bad_rows_continues_with_a_count_and_an_error_row(fcabert_bin, tiny, tmp_path):
    texts = sentences(3000)
    bad = {7: b"\xff", 1500: b"ok \xc3(", 3000: b"\xed\xa0\x80 surrogate"}
    path = write_lines(tmp_path / "in.txt", texts, bad)
    clean = run_fcabert(fcabert_bin, "classify", "-m", tiny, "-f", "jsonl", "-q",
                        str(write_lines(tmp_path / "clean.txt", texts))).stdout.splitlines()
    result = run_fcabert(fcabert_bin, "classify", "-m", tiny, "-f", "jsonl", "--skip-bad-rows", str(path))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3000 and [row["line"] for row in rows] == list(range(1, 3001))
    for number in bad:
        assert "label" not in rows[number - 1]
        assert rows[number - 1]["error"].startswith(f"{path}:{number}: invalid UTF-8")
        assert f"{path}:{number}: invalid UTF-8" in result.stderr
    good = [line for i, line in enumerate(result.stdout.splitlines(), 1) if i not in bad]
    assert good == [line for i, line in enumerate(clean, 1) if i not in bad]
    assert "3 bad line(s) were skipped" in result.stderr
    assert "3000 examples in" in result.stderr


@pytest.mark.parametrize("fmt", ["text", "tsv"])
def test_skip_bad_rows_text_and_tsv_rows(fcabert_bin, tiny_pair, tmp_path, fmt):
    path = write_lines(tmp_path / "pairs.txt", ["good\tfilm", "only one column", "bad\tplot\textra", "a\tb"])
    result = run_fcabert(fcabert_bin, "classify", "-m", tiny_pair, "-f", fmt, "-q", "--skip-bad-rows", str(path))
    rows = result.stdout.splitlines()
    if fmt == "text":
        assert len(rows) == 4
        assert rows[1] == f"error: {path}:2: expected two tab-separated columns (a sentence pair), found 1"
        assert rows[2].startswith(f"error: {path}:3:") and "\t" not in rows[2]
        assert rows[0].split("\t")[0] in ("negative", "positive") and "\t" in rows[3]
    else:
        assert rows[0] == "file\tline\tlabel\tp_negative\tp_positive" and len(rows) == 5
        assert rows[2] == f"{path}\t2\t\t\t" and rows[3] == f"{path}\t3\t\t\t"
        assert rows[1].split("\t")[2] in ("negative", "positive")
    assert f"{path}:2: expected two tab-separated columns" in result.stderr
    assert f"{path}:3: expected two tab-separated columns (a sentence pair), found 3" in result.stderr
    assert "2 bad line(s) were skipped" in result.stderr


# ---------------------------------------------------------------------------------------------
# --output: a temporary, renamed on success


def test_output_file_is_complete_and_no_temporary_is_left(fcabert_bin, tiny, tmp_path):
    path = write_lines(tmp_path / "in.txt", sentences(500))
    stdout = run_fcabert(fcabert_bin, "classify", "-m", tiny, "-f", "tsv", "-q", str(path)).stdout
    out = tmp_path / "out" / "result.tsv"
    out.parent.mkdir()
    out.write_text("an older result\n")
    result = run_fcabert(fcabert_bin, "classify", "-m", tiny, "-f", "tsv", "-q", "-o", str(out), str(path))
    assert result.stdout == ""
    assert out.read_text() == stdout
    assert no_temporaries(out.parent)


def test_output_file_untouched_on_a_bad_row(fcabert_bin, tiny, tmp_path):
    path = write_lines(tmp_path / "in.txt", sentences(500), {400: b"\xc0\xaf"})
    out = tmp_path / "result.jsonl"
    out.write_text("an older result\n")
    result = run_fcabert(fcabert_bin, "classify", "-m", tiny, "-o", str(out), str(path), check=False)
    assert result.returncode == 1
    assert f"{path}:400: invalid UTF-8" in result.stderr and f"{out} was not written" in result.stderr
    assert out.read_text() == "an older result\n"
    assert no_temporaries(tmp_path)
    (tmp_path / "new.jsonl").unlink(missing_ok=True)
    result = run_fcabert(fcabert_bin, "classify", "-m", tiny, "-o", str(tmp_path / "new.jsonl"), str(path),
                         check=False)
    assert result.returncode == 1 and not (tmp_path / "new.jsonl").exists()
    assert no_temporaries(tmp_path)


def test_output_into_a_missing_directory_fails_clearly(fcabert_bin, tiny, tmp_path):
    result = run_fcabert(fcabert_bin, "classify", "-m", tiny, "-o", str(tmp_path / "nope" / "out.txt"), "-",
                         stdin="good\n", check=False)
    assert result.returncode == 1 and "cannot write" in result.stderr


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_leaves_no_half_written_output(fcabert_bin, tiny, tmp_path, signum, code):
    out = tmp_path / "result.txt"
    out.write_text("an older result\n")
    process = subprocess.Popen([fcabert_bin, "classify", "-m", tiny, "-q", "-b", "4", "-o", str(out), "-"],
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    # Feed some lines, keep stdin open: fcabert is mid-run (results flushed to the temporary,
    # waiting for more input) when the signal comes.
    process.stdin.write(("\n".join(sentences(100)) + "\n").encode())
    process.stdin.flush()
    deadline = time.monotonic() + 60
    temporary = None
    while time.monotonic() < deadline:
        found = [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
        if found and found[0].stat().st_size > 0:
            temporary = found[0]
            break
        time.sleep(0.05)
    assert temporary is not None, "no partial results appeared in a temporary"
    process.send_signal(signum)
    process.stdin.close()
    assert process.wait(timeout=60) == code
    assert out.read_text() == "an older result\n"
    assert not temporary.exists() and no_temporaries(tmp_path)


# ---------------------------------------------------------------------------------------------
# Limits: a 10 MB line, a million lines


def test_ten_megabyte_line_is_truncated_in_linear_time(fcabert_bin, tiny, tmp_path):
    rng = random.Random(5)
    line = " ".join(rng.choice(WORDS) for _ in range(2_000_000))[:10_000_000]
    path = write_lines(tmp_path / "huge.txt", [line, "good film"])
    started = time.monotonic()
    result = subprocess.run([fcabert_bin, "classify", "-m", tiny, "-f", "jsonl", "--max-len", "16", str(path)],
                            capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    rows = [json.loads(r) for r in result.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["truncated"] is True and "truncated" not in rows[1]
    assert "1 line(s) were longer than 16 tokens and were truncated" in result.stderr
    # Generous: ~1-4 s measured (linear); a quadratic pass over 10 MB would take hours.
    assert elapsed < 60, elapsed


def peak_rss_mb(args: list, stdin_path: Path | None = None) -> tuple[int, float]:
    """Runs a command; returns its exit status and its own peak RSS (wait4's rusage) in MB."""
    with open(stdin_path or os.devnull, "rb") as stdin:
        process = subprocess.Popen(args, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024.0


def test_a_million_lines_in_bounded_memory(fcabert_bin, tiny, tmp_path):
    lines = sentences(1000, max_words=4)
    small = write_lines(tmp_path / "small.txt", lines)
    big = write_lines(tmp_path / "big.txt", lines * 1000)  # 1,000,000 lines, ~14 MB
    # Kept CI-fast (~10 s): short lines, one thread, big batches, text output.
    args = [fcabert_bin, "classify", "-m", tiny, "-q", "-t", "1", "-b", "256", "-o", str(tmp_path / "out.txt")]
    status, small_mb = peak_rss_mb(args + [str(small)])
    assert status == 0
    status, big_mb = peak_rss_mb(args + [str(big)])
    assert status == 0
    with open(tmp_path / "out.txt", "rb") as out:
        assert sum(1 for _ in out) == 1_000_000
    # Streaming: the same peak for 1,000 and 1,000,000 lines (reading all lines into memory
    # would add well over 100 MB). Loose: 40 MB of slack.
    assert big_mb < small_mb + 40, (small_mb, big_mb)


# ---------------------------------------------------------------------------------------------
# Determinism: batch size, threads, input order


@pytest.mark.parametrize("model_name", ["tiny", "tiny_fca"])
def test_same_output_whatever_batch_size_threads_and_order(fcabert_bin, tmp_path, request, model_name):
    model = request.getfixturevalue(model_name)
    texts = sentences(100, seed=9)
    forward = write_lines(tmp_path / "forward.txt", texts)
    backward = write_lines(tmp_path / "backward.txt", texts[::-1])

    def run(path, *options):
        out = run_fcabert(fcabert_bin, "classify", "-m", model, "-f", "jsonl", "-q", *options, str(path)).stdout
        return [json.loads(line) for line in out.splitlines()]

    reference = run(forward, "-b", "1", "-t", "1")
    for batch in ("1", "7", "100"):
        for threads in ("1", "2"):
            got = run(forward, "-b", batch, "-t", threads)
            assert got == reference, (batch, threads)
            got = run(backward, "-b", batch, "-t", threads)[::-1]
            for row, want in zip(got, reference):
                assert {k: v for k, v in row.items() if k != "line"} == {k: v for k, v in want.items() if k != "line"}


# ---------------------------------------------------------------------------------------------
# Hostile model files through the CLI (the reader's cases: test_format_corrupt/limits.cpp)


def rewrite_header(source: str, target: Path, edit) -> Path:
    data = Path(source).read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    text = edit(header)
    if not isinstance(text, bytes):
        text = json.dumps(header).encode()
    text += b" " * ((-(8 + len(text))) % 64)
    target.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length:])
    return target


def test_hostile_model_files_are_refused_in_one_line(fcabert_bin, tiny, tmp_path):
    def config(**changes):
        def edit(header):
            section = json.loads(header["__metadata__"]["config"])
            section.update(changes)
            header["__metadata__"]["config"] = json.dumps(section)
        return edit

    def nested_shape(header):
        text = json.dumps(header).encode()
        return text.replace(b'"shape": [', b'"shape": [' + b"[" * 1_000_000 + b"]" * 1_000_000 + b",", 1)

    def tera_shape(header):
        header["bert.pooler.dense.weight"]["shape"] = [1_000_000, 1_000_000]

    cases = {
        "layers": (config(num_layers=10**12), "needs 16 tensors per layer"),
        "nested": (nested_shape, "nested more than 64 levels deep"),
        "tera": (tera_shape, "needs 4000000000000 bytes of f32, more than the whole data section"),
    }
    for name, (edit, phrase) in cases.items():
        path = rewrite_header(tiny, tmp_path / f"{name}.fcab", edit)
        result = run_fcabert(fcabert_bin, "classify", "-m", str(path), "-", stdin="good\n", check=False)
        assert result.returncode == 1, (name, result.stderr[-500:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"fcabert: error: {path}"), (name, result.stderr[-500:])
        assert phrase in lines[0].lower(), (name, lines[0][:300])
        assert result.stdout == ""
    huge = tmp_path / "huge_length.fcab"
    huge.write_bytes((2 << 30).to_bytes(8, "little") + Path(tiny).read_bytes()[8:])
    result = run_fcabert(fcabert_bin, "classify", "-m", str(huge), "-", stdin="good\n", check=False)
    assert result.returncode == 1 and "exceeds the 100 MB limit" in result.stderr
