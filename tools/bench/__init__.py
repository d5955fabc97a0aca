"""Benchmark drivers (tools.bench.run_bench: fcabert against ONNX Runtime and PyTorch)."""
