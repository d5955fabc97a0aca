"""The benchmark driver: fcabert against ONNX Runtime, OpenVINO, CTranslate2 and PyTorch, each
peer in its best configuration, in one invocation (docs/PERF.md).

  run_bench      the command line and the run: workloads, round-robin, report
  workloads      inputs: GLUE dev sets, long inputs, token files, padded batch plans (numpy only)
  models         the benchmarked model files (the committed pair, a random BERT-base)
  engines        the timed engines as served processes, logit checks, the round-robin loop
  peer_models    the peers' model files (ONNX, int8 ONNX, OpenVINO IR, CTranslate2, Hugging Face)
  peer_runtime   the peers' inference, one interface (imports each engine library only when used)
  peer_worker    one peer as a served process (python -m tools.bench.peer_worker)
  whole_job      classify a file as one process per engine, wall clock
  classify_peer  a peer's whole-job script (python -m tools.bench.classify_peer)
  report         machine, versions, targets and the markdown
"""
