"""`--precision auto`: the CLI times the candidates at load, says what it chose (a log line on
stderr, the JSON reports) and then computes exactly what that precision computes by name."""
from __future__ import annotations

import json
import re

from conftest import DEFAULT_MODEL, PARITY, read_jsonl, run_fcabert
from test_eval import GLUE

# The arithmetic, e.g. "int8 (FFN down-projection bf16, attention bf16)", then the timings.
CHOICE = re.compile(r"precision ((fp32|bf16|int8)(?: \([^)]*\))?), auto: one layer's GEMMs on 256 rows took fp32 [0-9.]+ ms")


def chosen(stderr: str) -> tuple[str, str]:
    """(precision name, arithmetic) from the load log line."""
    match = CHOICE.search(stderr)
    assert match, f"no precision choice logged:\n{stderr}"
    return match.group(2), match.group(1)


def test_classify_auto_logs_its_choice_and_matches_it(fcabert_bin):
    sentences = PARITY / "sst2_dev.txt"
    auto = run_fcabert(fcabert_bin, "classify", "--precision", "auto", "--format", "jsonl", str(sentences))
    name, arithmetic = chosen(auto.stderr)
    named = run_fcabert(fcabert_bin, "classify", "--precision", name, "--format", "jsonl", "--quiet", str(sentences))
    rows, expected = read_jsonl(auto.stdout), read_jsonl(named.stdout)
    assert len(rows) == len(expected) > 10
    assert [r["logits"] for r in rows] == [r["logits"] for r in expected], f"auto chose {arithmetic}"


def test_eval_and_profile_reports_name_the_arithmetic(fcabert_bin, tmp_path):
    report_path = tmp_path / "eval.json"
    result = run_fcabert(fcabert_bin, "eval", "--precision", "auto", "--data", str(GLUE / "SST-2"), "--dense",
                         "--limit", "40", "--json", str(report_path))
    _, arithmetic = chosen(result.stderr)
    assert json.loads(report_path.read_text())["precision"] == arithmetic

    result = run_fcabert(fcabert_bin, "profile", "--precision", "auto", "--model", str(DEFAULT_MODEL),
                         "--synthetic-length", "16", "--synthetic-count", "8", "--repeat", "1", "--json")
    _, arithmetic = chosen(result.stderr)
    assert json.loads(result.stdout)["precision"] == arithmetic


def test_a_named_precision_is_not_timed(fcabert_bin):
    result = run_fcabert(fcabert_bin, "classify", "--precision", "int8", str(PARITY / "sst2_dev.txt"))
    assert "auto:" not in result.stderr


def test_an_unknown_precision_is_refused(fcabert_bin):
    result = run_fcabert(fcabert_bin, "classify", "--precision", "fastest", str(PARITY / "sst2_dev.txt"), check=False)
    assert result.returncode != 0 and "auto" in result.stderr
