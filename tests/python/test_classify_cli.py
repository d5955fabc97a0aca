"""`fcabert classify` end to end: counts, order, formats and the documented behaviour on
awkward input (empty lines, invalid UTF-8, missing files, empty files, bad pair lines)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_fcabert

DEFAULT_MODEL = str(REPO / "models" / "sst2-minilm-l6.fcab")
SST2_TRAIN = REPO.parent / "shared" / "data" / "glue" / "SST-2" / "train.tsv"


def jsonl(stdout: str):
    return [json.loads(line) for line in stdout.splitlines()]


def test_ten_thousand_lines_in_order(fcabert_bin, tmp_path):
    sentences = [line.split("\t")[0] for line in SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:10001]]
    sentences[5000] = ""  # an empty line in the middle must not shift anything
    path = tmp_path / "many.txt"
    path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    result = run_fcabert(fcabert_bin, "classify", "--format", "jsonl", str(path))
    rows = jsonl(result.stdout)
    assert len(rows) == 10000
    assert [row["line"] for row in rows] == list(range(1, 10001))
    assert all(row["label"] in ("negative", "positive") for row in rows)
    assert "10000 examples in" in result.stderr
    assert "1 empty line(s)" in result.stderr


def test_same_result_alone_and_in_a_batch(fcabert_bin, tmp_path):
    lines = ["a gorgeous , witty , seductive movie .", "", "the film is strictly routine ."]
    path = tmp_path / "three.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    together = jsonl(run_fcabert(fcabert_bin, "classify", "-f", "jsonl", "-q", str(path)).stdout)
    for index, line in enumerate(lines):
        alone = jsonl(run_fcabert(fcabert_bin, "classify", "-f", "jsonl", "-q", "-", stdin=line + "\n").stdout)
        assert alone[0]["logits"] == pytest.approx(together[index]["logits"], abs=1e-5)


def test_sentiment_of_the_sample_file(fcabert_bin):
    result = run_fcabert(fcabert_bin, "classify", "-q", str(REPO / "examples" / "reviews.txt"))
    labels = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert len(labels) == 10
    # Only the unambiguous lines are asserted (line 4, an idiom, fools this small model).
    assert labels[0] == "positive" and labels[1] == "negative" and labels[5] == "positive"
    assert labels[6] == "negative" and labels[8] == "negative" and labels[9] == "positive"
    probability = float(result.stdout.splitlines()[0].split("\t")[1])
    assert 0.5 < probability <= 1.0


def test_tsv_output_has_header_and_one_row_per_line(fcabert_bin, tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("great\nawful\n", encoding="utf-8")
    rows = run_fcabert(fcabert_bin, "classify", "-f", "tsv", "-q", str(path)).stdout.splitlines()
    assert rows[0] == "file\tline\tlabel\tp_negative\tp_positive"
    assert len(rows) == 3 and rows[1].split("\t")[1] == "1" and rows[2].split("\t")[1] == "2"


def test_last_line_without_newline_is_classified(fcabert_bin, tmp_path):
    path = tmp_path / "no_newline.txt"
    path.write_bytes(b"first line\nsecond line")
    assert len(run_fcabert(fcabert_bin, "classify", "-q", str(path)).stdout.splitlines()) == 2


@pytest.mark.parametrize("batch_size", ["1", "32"])  # 32: the bad line is in the batch of lines 1 and 2
def test_invalid_utf8_names_the_line_and_keeps_earlier_results(fcabert_bin, tmp_path, batch_size):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good movie\nfine film\nbad \xff\xfe bytes\nnever reached\n")
    result = run_fcabert(fcabert_bin, "classify", "-q", "--batch-size", batch_size, str(path), check=False)
    assert result.returncode == 1
    assert f"{path}:3:" in result.stderr and "UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(result.stdout.splitlines()) == 2  # lines 1 and 2 were written before the error


def test_missing_input_file(fcabert_bin, tmp_path):
    result = run_fcabert(fcabert_bin, "classify", str(tmp_path / "nope.txt"), check=False)
    assert result.returncode == 1
    assert "nope.txt" in result.stderr and "no such file" in result.stderr
    assert result.stdout == ""


def test_empty_input_file_gives_no_rows(fcabert_bin, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    result = run_fcabert(fcabert_bin, "classify", str(path))
    assert result.stdout == ""
    assert "0 examples" in result.stderr


def test_missing_model_file(fcabert_bin, tmp_path):
    result = run_fcabert(fcabert_bin, "classify", "--model", str(tmp_path / "none.fcab"), "-",
                         stdin="x\n", check=False)
    assert result.returncode == 1
    assert "none.fcab" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_options(fcabert_bin):
    for args in (["--batch-size", "0"], ["--threads", "0"], ["--format", "xml"], ["--max-len", "1"]):
        result = run_fcabert(fcabert_bin, "classify", *args, "-", stdin="x\n", check=False)
        assert result.returncode != 0, args
        assert "error" in result.stderr.lower(), args


def test_pair_model_requires_two_columns(fcabert_bin, minilm_models, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("one\ttwo\nonly one column\n", encoding="utf-8")
    result = run_fcabert(fcabert_bin, "classify", "--model", minilm_models["pairs"], "-q", "-b", "1",
                         str(path), check=False)
    assert result.returncode == 1
    assert f"{path}:2:" in result.stderr and "two tab-separated columns" in result.stderr
    assert len(result.stdout.splitlines()) == 1
