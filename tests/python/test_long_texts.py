"""classify --long window on the real default model: a long text runs as windows whose logits
are averaged (checked against the windows classified one by one), outputs say how many
windows a text had, a 10 MB line is capped at --max-windows, and misuse gets one clear line."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import PARITY, read_jsonl, run_fcabert

SENTENCES = (PARITY / "sst2_dev.txt").read_text().splitlines()


def whole_word_text(fcabert_bin, sentences) -> list[str]:
    """The sentences' word pieces that are whole words: joined by spaces they tokenize back to
    exactly themselves, so a window's pieces can be written out as a text of their own."""
    rows = read_jsonl(run_fcabert(fcabert_bin, "tokenize", "-f", "jsonl", "-",
                                  stdin="\n".join(sentences) + "\n").stdout)
    words = []
    for row in rows:
        tokens = row["tokens"][1:-1]
        for i, token in enumerate(tokens):
            whole = not token.startswith("##") and (i + 1 == len(tokens) or not tokens[i + 1].startswith("##"))
            if whole and token.isalpha():
                words.append(token)
    return words


def test_a_windowed_text_is_the_mean_of_its_windows_run_alone(fcabert_bin, tmp_path):
    words = whole_word_text(fcabert_bin, SENTENCES[:40])[:700]
    max_len, stride = 128, 32
    keep, step = max_len - 2, max_len - 2 - stride
    windows = []
    for start in range(0, len(words), step):
        windows.append(" ".join(words[start:start + keep]))
        if start + keep >= len(words):
            break
    (tmp_path / "long.txt").write_text(" ".join(words) + "\n")
    (tmp_path / "windows.txt").write_text("\n".join(windows) + "\n")
    row = read_jsonl(run_fcabert(fcabert_bin, "classify", "-q", "-f", "jsonl", "--long", "window", "--max-len",
                                 str(max_len), "--stride", str(stride), str(tmp_path / "long.txt")).stdout)[0]
    alone = read_jsonl(run_fcabert(fcabert_bin, "classify", "-q", "-f", "jsonl", "--max-len", str(max_len),
                                   str(tmp_path / "windows.txt")).stdout)
    assert row["windows"] == len(windows) == len(alone) >= 6
    assert not any(r.get("truncated") for r in alone)  # each window fits
    for k in range(2):
        mean = sum(r["logits"][k] for r in alone) / len(alone)
        assert abs(row["logits"][k] - mean) < 1e-4


def test_outputs_say_how_many_windows(fcabert_bin, tmp_path):
    path = tmp_path / "two.txt"
    path.write_text(" ".join(SENTENCES[:30]) + "\n" + SENTENCES[1] + "\n")
    base = ["classify", "-q", "--long", "window", "--max-len", "64"]
    text = run_fcabert(fcabert_bin, *base, str(path)).stdout.splitlines()
    assert text[0].split("\t")[2].startswith("windows=") and text[1].endswith("\twindows=1")
    tsv = run_fcabert(fcabert_bin, *base, "-f", "tsv", str(path)).stdout.splitlines()
    assert tsv[0].split("\t")[-1] == "windows" and tsv[2].split("\t")[-1] == "1"


def test_a_10_mb_line_is_capped_at_max_windows(fcabert_bin, tmp_path):
    path = tmp_path / "huge.txt"
    path.write_text(("a fine , moving film . " * 450_000)[:10_000_000] + "\n" + SENTENCES[2] + "\n")
    start = time.monotonic()
    done = run_fcabert(fcabert_bin, "classify", "-f", "jsonl", "--long", "window", "--max-windows", "4",
                       str(path))
    rows = read_jsonl(done.stdout)
    assert len(rows) == 2 and rows[0]["windows"] == 4 and rows[0]["truncated"] is True
    assert rows[1]["windows"] == 1 and rows[1]["line"] == 2
    assert "needed more than 4 windows" in done.stderr
    assert time.monotonic() - start < 120


@pytest.mark.parametrize("args, message", [
    (["--long", "window", "--explain"], "does not combine with --long window"),
    (["--long", "sliding"], "--long 'sliding': use truncate or window"),
    (["--stride", "8"], "apply to --long window"),
    (["--long", "window", "--max-len", "64", "--stride", "62"], "--stride 62"),
    (["--long", "window", "-m", "PAIRS"], "takes sentence pairs"),
])
def test_misuse_is_one_clear_line(fcabert_bin, minilm_models, args, message):
    args = [minilm_models["pairs"] if a == "PAIRS" else a for a in args]
    done = run_fcabert(fcabert_bin, "classify", *args, str(PARITY / "sst2_dev.txt"), check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
