"""classify on the files people have: CSV (RFC 4180, header, quoted commas, quotes and line
breaks) and JSONL inputs with an id carried into every output format, CSV output that
Python's csv module reads back, and hostile rows (an unclosed quote, a JSONL line without the
field, an empty text, a row with too many fields): each a clear error naming FILE:LINE or an
error row in its place, never a lost or shifted row. Results equal the plain-text input's."""
from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import PARITY, read_jsonl, run_fcabert

SENTENCES = (PARITY / "sst2_dev.txt").read_text().splitlines()[:40]


@pytest.fixture
def reviews_csv(tmp_path):
    """40 real sentences as a CSV written by Python's csv module (quotes where needed), with an
    id column and a sentence holding a comma, a quote and a line break."""
    rows = [{"review_id": f"r{i}", "stars": str(i % 5), "review": text} for i, text in enumerate(SENTENCES)]
    rows[3]["review"] = 'a "so-called" film, with\na line break'
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["review_id", "stars", "review"])
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


def classify(fcabert_bin, *args, check=True):
    return run_fcabert(fcabert_bin, "classify", "-q", *map(str, args), check=check)


def test_csv_input_gives_the_plain_texts_results_with_ids(fcabert_bin, reviews_csv, tmp_path):
    path, rows = reviews_csv
    table = read_jsonl(classify(fcabert_bin, "--input-format", "csv", "--text-column", "review", "--id-column",
                                "review_id", "-f", "jsonl", path).stdout)
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(r["review"].replace("\n", " ") for r in rows) + "\n")
    expected = read_jsonl(classify(fcabert_bin, "-f", "jsonl", plain).stdout)
    assert [r["id"] for r in table] == [r["review_id"] for r in rows]
    for ours, ref in zip(table, expected):  # a line break inside a text is whitespace to BERT
        assert ours["label"] == ref["label"]
        assert max(abs(a - b) for a, b in zip(ours["logits"], ref["logits"])) < 1e-5
    # The record after the two-line one starts two lines later: "line" is the file's line.
    assert [r["line"] for r in table[:6]] == [2, 3, 4, 5, 7, 8]


def test_csv_output_reads_back_with_pythons_csv_module(fcabert_bin, reviews_csv):
    path, rows = reviews_csv
    out = classify(fcabert_bin, "--input-format", "csv", "--text-column", "review", "--id-column", "review_id",
                   "-f", "csv", path).stdout
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert list(parsed[0]) == ["file", "line", "id", "label", "p_negative", "p_positive"]
    assert [p["id"] for p in parsed] == [r["review_id"] for r in rows]
    for p in parsed:
        assert p["label"] in ("negative", "positive")
        assert abs(float(p["p_negative"]) + float(p["p_positive"]) - 1) < 2e-4


def test_jsonl_input_with_ids_in_every_format(fcabert_bin, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t, "uid": 100 + i}) + "\n" for i, t in enumerate(SENTENCES[:5])))
    base = ["--input-format", "jsonl", "--id-field", "uid", path]
    rows = read_jsonl(classify(fcabert_bin, *base, "-f", "jsonl").stdout)
    assert [r["id"] for r in rows] == ["100", "101", "102", "103", "104"]
    text = classify(fcabert_bin, *base).stdout.splitlines()
    assert [line.split("\t")[-1] for line in text] == [f"id={100 + i}" for i in range(5)]
    tsv = classify(fcabert_bin, *base, "-f", "tsv").stdout.splitlines()
    assert tsv[0].split("\t")[:4] == ["file", "line", "id", "label"]
    assert [line.split("\t")[2] for line in tsv[1:]] == [str(100 + i) for i in range(5)]


def one_error_line(done) -> str:
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fcabert: error: "), done.stderr
    return lines[0]


def test_hostile_rows_keep_their_place_or_stop_with_file_and_line(fcabert_bin, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a fine film", "id": 1}\n{"body": "no text field", "id": 2}\n'
                   '{"text": "", "id": 3}\n{"text": "the end", "id": 4}\n')
    base = ["--input-format", "jsonl", "--id-field", "id", "-f", "jsonl", bad]
    assert f"{bad}:2: no field \"text\"" in one_error_line(classify(fcabert_bin, *base, check=False))
    rows = read_jsonl(classify(fcabert_bin, *base, "--skip-bad-rows").stdout)
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"] and [r["line"] for r in rows] == [1, 2, 3, 4]
    assert "error" in rows[1] and "label" not in rows[1]
    assert "label" in rows[2]  # an empty text is classified, as an empty line is

    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('id,text\n1,fine\n2,"never closed\n3,more\n')
    message = one_error_line(classify(fcabert_bin, "--input-format", "csv", unclosed, "--skip-bad-rows",
                                      check=False))
    assert f"{unclosed}:3: a quoted field is never closed" in message and "fix the input" in message

    wide = tmp_path / "wide.csv"
    wide.write_text("id,text\n1,fine\n2,too,many\n3,last\n")
    rows = read_jsonl(classify(fcabert_bin, "--input-format", "csv", "--id-column", "id", "-f", "jsonl",
                               "--skip-bad-rows", wide).stdout)
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["error"].endswith("has 3 fields but the header has 2")

    assert "the header has no column \"review\"" in one_error_line(
        classify(fcabert_bin, "--input-format", "csv", "--text-column", "review", wide, check=False))
    assert "--id-column needs a table input" in one_error_line(
        classify(fcabert_bin, "--id-column", "id", wide, check=False))
    assert "--input-format 'xlsx'" in one_error_line(classify(fcabert_bin, "--input-format", "xlsx", wide,
                                                              check=False))
