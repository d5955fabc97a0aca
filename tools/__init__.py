"""fcabert's Python tools, one package: conversion, training and the Hugging Face / PyTorch
references the tests compare the engine against.

scripts/setup.sh installs it into .venv in editable mode (pyproject.toml), so the tools
import each other as `tools.<module>`, the tests and fuzz/make_corpus.py import them the same
way, with no edits of the import path anywhere. Every tool is also a command, run either way:

  .venv/bin/python tools/convert.py --help
  .venv/bin/python -m tools.convert --help

Modules:
  atomic_write         files written through a temporary and a rename (complete or absent)
  fcabert_model        the model file format: tensor spec, writer, reader (numpy only)
  fca_schedule         FCA schedules: keep counts, parsing and validation of keep ratios
  glue_data            GLUE .tsv reading
  tiny_model           tiny random model files for tests and fuzz seeds
  convert              Hugging Face checkpoint -> fcabert model file
  reference_logits     Hugging Face logits for a model file (the logit-parity reference)
  fca_reference        the PyTorch FCA reference (the FCA-parity reference)
  train_classifier     dense fine-tuning on a GLUE task
  train_fca            the FCA training pipeline
  tradeoff             the accuracy / FLOPs trade-off report (docs/TRADEOFF.md)
  make_parity_data, make_fca_parity_data   regenerate tests/data/parity/
  bench.run_bench      fcabert against ONNX Runtime, OpenVINO, CTranslate2 and PyTorch (docs/PERF.md)
"""
