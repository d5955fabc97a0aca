"""Minimal GLUE TSV reading for the Python tools (training and reference scripts).

GLUE files contain unbalanced quote characters, so rows are split on tabs with no quote
handling, exactly as the official scripts do. Each task names the columns that hold its
text(s) and gold label; a row with too few columns is an error naming file and line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TaskSpec:
    name: str
    has_header: bool
    text_columns: tuple[int, ...]  # one column: single text; two: a pair
    label_column: int  # negative counts from the end
    labels: tuple[str, ...]  # label names in class-index order; () = regression


TASKS = {
    "sst2": TaskSpec("sst2", True, (0,), 1, ("negative", "positive")),
    "cola": TaskSpec("cola", False, (3,), 1, ("unacceptable", "acceptable")),
    "mrpc": TaskSpec("mrpc", True, (3, 4), 0, ("not_equivalent", "equivalent")),
    "stsb": TaskSpec("stsb", True, (7, 8), -1, ()),
    "qnli": TaskSpec("qnli", True, (1, 2), -1, ("entailment", "not_entailment")),
    "rte": TaskSpec("rte", True, (1, 2), -1, ("entailment", "not_entailment")),
    "wnli": TaskSpec("wnli", True, (1, 2), -1, ("not_entailment", "entailment")),
}

# Files store labels either as class indices ("0"/"1") or as names ("entailment").
_NUMERIC_LABEL_TASKS = {"sst2", "cola", "mrpc", "wnli"}


@dataclass(frozen=True)
class Example:
    texts: tuple[str, ...]
    label: float  # class index, or the score for regression


def read_glue_tsv(path: str | Path, task: str) -> list[Example]:
    spec = TASKS[task]
    raw = Path(path).read_bytes().decode("utf-8")
    if raw.startswith("\ufeff"):  # MRPC files begin with a byte-order mark
        raw = raw[1:]
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline; CoLA dev has none
    if spec.has_header:
        lines = lines[1:]
    first_line = 2 if spec.has_header else 1
    needed = max(max(spec.text_columns), spec.label_column if spec.label_column >= 0 else 0) + 1
    examples = []
    for offset, line in enumerate(lines):
        fields = line.split("\t")
        if len(fields) < needed:
            raise ValueError(f"{path}:{first_line + offset}: expected at least {needed} "
                             f"tab-separated fields for task {task}, found {len(fields)}")
        texts = tuple(fields[c] for c in spec.text_columns)
        gold = fields[spec.label_column]
        if not spec.labels:
            label = float(gold)
        elif task in _NUMERIC_LABEL_TASKS:
            label = float(int(gold))
        else:
            label = float(spec.labels.index(gold))
        examples.append(Example(texts, label))
    return examples
