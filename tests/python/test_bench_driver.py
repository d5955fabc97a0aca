"""Smoke test of tools/bench/run_bench.py --quick on a tiny random model, with every peer
(ONNX Runtime fp32 / int8, OpenVINO default / f32, CTranslate2 int8 / fp32, PyTorch eager).

Asserts behaviour, never timing: every engine ran every repetition on the same sequences
(the peers' batches hash to the workload's sequences), every peer's logits were checked
against the reference with the order of the length-sorted batches restored, sorted batches
pad less than file-order ones, the long workload is long, the FCA model file ran its stored
schedule, the whole job ran every engine over the same lines with agreeing labels, and the
markdown names the CPU, every engine, every peer's version and the targets. The fcabert
engines run in fcabert-bench, found next to the fcabert binary. The peers are pinned in
requirements.txt (scripts/setup.sh installs them): no importorskip.
"""
from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

from tools.bench import engines as eng
from tools.bench import run_bench, whole_job
from tools.bench.peer_runtime import PEERS, expand_peers
from tools.bench.workloads import fingerprint, plan_batches, restore_order, unpadded

PEER_NAMES = {name for name, _ in PEERS.values()}
FILE_ORDER = {n + eng.FILE_ORDER_SUFFIX for n in PEER_NAMES}
FCABERT = {f"fcabert {kind} {p}" for kind in ("dense", "FCA", "FCA model") for p in ("fp32", "bf16", "int8")}
EXACT = {"ONNX Runtime fp32", "OpenVINO f32", "CTranslate2 fp32", "PyTorch eager fp32"}


def tiny_models(work):
    # std 0.3 (not BERT's 0.02): on a 32-wide model the logits then differ from one input to
    # the next by O(1), so an argmax check means something
    model = run_bench.write_random_bert_base(work / "tiny.fcab", run_bench.DEFAULT_MODEL, layers=2, hidden=32,
                                             heads=2, intermediate=64, std=0.3)
    fca = run_bench.write_random_bert_base(work / "tiny-fca.fcab", run_bench.DEFAULT_MODEL, layers=2, hidden=32,
                                           heads=2, intermediate=64, std=0.3, seed=1,
                                           fca={"keep_ratios": [1, 0.5], "clusters": 2, "pooling": "weighted"})
    return model, fca


@pytest.fixture(scope="module", autouse=True)
def passive_openmp():
    """OpenMP workers that sleep rather than spin while they wait. Figures do not matter here,
    and on a loaded machine (CI, or a test run next to other jobs) two spinning threads on two
    cores can stall each other for a scheduler slice per barrier: CTranslate2 fp32 took 350 ms
    per tiny batch that way, instead of 0.5 ms. Every engine process inherits it."""
    saved = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = "passive"
    yield
    if saved is None:
        del os.environ["OMP_WAIT_POLICY"]
    else:
        os.environ["OMP_WAIT_POLICY"] = saved


@pytest.fixture(scope="module")
def report(tmp_path_factory, fcabert_bin, passive_openmp):
    work = tmp_path_factory.mktemp("bench")
    model, fca = tiny_models(work)
    out_json, out_md = work / "r.json", work / "r.md"
    assert run_bench.main(["--quick", "--fcabert", fcabert_bin, "--model", str(model), "--fca-model", str(fca),
                           "--datasets", "mrpc,long", "--batch-sizes", "1,4", "--ct2-isa", "GENERIC",
                           "--work-dir", str(work), "--json", str(out_json), "--markdown", str(out_md)]) == 0
    return json.loads(out_json.read_text()), out_md.read_text(), work


def test_every_engine_ran_every_workload_on_the_same_sequences(report):
    data, _, _ = report
    assert [(w["dataset"], w["batch_size"]) for w in data["workloads"]] == [("mrpc", 1), ("mrpc", 4), ("long", 1),
                                                                           ("long", 4)]
    for w in data["workloads"]:
        names = {r["engine"] for r in w["engines"]}
        # batch 1 has no padding, hence no "(file order)" row
        assert names == FCABERT | PEER_NAMES | (FILE_ORDER if w["batch_size"] != 1 else set())
        assert w["sequences"] == (4 if w["batch_size"] == 1 or w["dataset"] == "long" else 16)
        for r in w["engines"]:
            assert r["runs"] == data["repeat"] == 2
            assert r["sequences_per_pass"] == [w["sequences"]] * 2
            assert r["examples_per_s"] > 0 and r["latency_ms_p90"] >= 0
            if r["kind"] == "peer":  # the batches the worker built hold exactly these sequences
                assert r["fingerprint"] == w["fingerprint"]


def test_every_peer_logit_was_checked_with_the_order_restored(report):
    data, _, _ = report
    for w in data["workloads"]:
        peers = {r["engine"] for r in w["engines"] if r["kind"] == "peer"}
        assert {c["engine"] for c in w["checks"]} == peers
        for c in w["checks"]:
            base = c["engine"].removesuffix(eng.FILE_ORDER_SUFFIX)
            if base in EXACT:
                assert c["max_abs_diff"] <= 1e-3, c
            assert c["argmax_agreement"] >= 0.9, c
        by = {r["engine"]: r for r in w["engines"]}
        assert by["OpenVINO f32"]["precision"] == "f32" and by["ONNX Runtime int8"]["precision"] == "int8"
        assert by["OpenVINO default"]["precision"] in ("bf16", "f32")


def test_sorted_batches_pad_less_than_file_order(report):
    data, _, _ = report
    strictly = 0
    for w in (w for w in data["workloads"] if w["batch_size"] != 1):
        by = {r["engine"]: r for r in w["engines"]}
        for name in PEER_NAMES:
            sorted_, file_ = by[name]["padded_tokens"], by[name + eng.FILE_ORDER_SUFFIX]["padded_tokens"]
            assert w["tokens"] <= sorted_ <= file_
            strictly += sorted_ < file_
    assert strictly > 0


def test_long_workload_is_long(report):
    data, _, work = report
    for w in (w for w in data["workloads"] if w["dataset"] == "long"):
        lines = (work / f"tiny-long-b{w['batch_size']}.tokens.jsonl").read_text().splitlines()
        lengths = [len(json.loads(line)["ids"]) for line in lines]
        assert len(lengths) == w["sequences"] and all(128 <= n <= 512 for n in lengths), lengths


def test_fca_engines_and_engine_facts(report):
    data, _, _ = report
    for w in data["workloads"]:
        by = {r["engine"]: r for r in w["engines"]}
        dense = by["fcabert dense fp32"]
        assert not dense["fca"] and dense["model_file"].endswith("tiny.fcab")
        for p in ("fp32", "bf16", "int8"):
            assert by[f"fcabert dense {p}"]["flops_per_pass"] == dense["flops_per_pass"]
            assert 0 < by[f"fcabert FCA {p}"]["flops_per_pass"] < dense["flops_per_pass"]
            fca_model = by[f"fcabert FCA model {p}"]
            # no schedule flag: fcabert-bench ran the schedule stored in the file
            assert fca_model["fca"] and fca_model["model_file"].endswith("tiny-fca.fcab")
            assert 0 < fca_model["flops_per_pass"] < dense["flops_per_pass"]
        for name in ("fcabert dense fp32", "fcabert FCA bf16", "fcabert FCA model int8"):
            r = by[name]
            assert r["load_ms"] > 0 and r["peak_rss_bytes"] > 0
            assert r["linear_gflops"] > 0 and 0 < r["linear_share_of_time"] < 1
            assert r["forward_allocations_outside_onednn"] == 0  # nothing of our own in the forward
    assert all(data["gemm"]["peak_gflops"][p] > 0 for p in ("fp32", "bf16", "int8"))
    fusions = data["peer_facts"]["tiny (L2 d32)"]["ort_fusions"]
    assert any("Attention" in name for name in fusions)


def test_ct2_isa_reaches_only_the_ctranslate2_processes(report):
    data, _, _ = report
    for r in (r for w in data["workloads"] for r in w["engines"] if r["kind"] == "peer"):
        assert r["ct2_force_cpu_isa"] == ("GENERIC" if r["peer"].startswith("ct2") else None)


def test_whole_job(report):
    data, _, _ = report
    whole = data["whole_job"]
    assert whole["lines"] == 64 and whole["batch_size"] == 32
    names = {r["engine"] for r in whole["engines"]}
    assert names == PEER_NAMES | {n for n in FCABERT if not n.startswith("fcabert FCA ") or "model" in n}
    for r in whole["engines"]:
        assert r["runs"] == 1 and r["sentences_per_s"] > 0 and 0 <= r["accuracy"] <= 1
        assert r["agreement_with"] == ("fcabert FCA model fp32" if "FCA model" in r["engine"] else "fcabert dense fp32")
        if r["engine"] in EXACT or r["engine"].endswith("fp32"):
            assert r["agreement"] == 1.0, r  # same weights, same arithmetic: the same labels


def test_markdown(report):
    data, text, _ = report
    for name in FCABERT | PEER_NAMES | FILE_ORDER:
        assert f"| {name} |" in text
    best_peer, targets, table = (text.index(s) for s in ("## The best peer", "## Targets", "## Throughput"))
    assert best_peer < targets < table  # the best peer first
    for target in ("dense fcabert at its best precision, batch 4 >= 1.3x the best peer configuration",
                   "batch-1 latency, dense fcabert at its best precision <= 0.8x the best peer's median",
                   "whole job, FCA model at its best precision >= 2.5x the best peer's sentences/s",
                   "encoder GEMMs >= 80% of oneDNN's int8 peak", "FCA speed-up >= 85% of FLOPs ratio"):
        assert target in text
    assert data["machine"]["cpu"] in text and "flags present:" in text
    for package in ("onnxruntime", "openvino", "ctranslate2", "torch"):
        assert f"{package} {data['versions'][package]}" in text
        assert data["versions"][package] != "not installed"
    assert data["command"].startswith(".venv/bin/python tools/bench/run_bench.py")


def test_a_broken_peer_stops_the_run(fcabert_bin, tmp_path):
    model, _ = tiny_models(tmp_path)
    # a tolerance no real fp32 engine meets: the check must refuse the figure
    with pytest.raises(SystemExit, match=r"ONNX Runtime fp32 \(f32\) fails its logit check after the warm-up"):
        run_bench.main(["--quick", "--fcabert", fcabert_bin, "--model", str(model), "--peers", "ort-fp32",
                        "--precisions", "fp32", "--fca", "", "--no-whole-job", "--datasets", "mrpc",
                        "--batch-sizes", "4", "--fp32-tolerance", "0", "--work-dir", str(tmp_path)])


def test_missing_fcabert_bench_is_named(fcabert_bin, tmp_path):
    lone = tmp_path / "fcabert"  # a fcabert without its fcabert-bench
    shutil.copy2(fcabert_bin, lone)
    beside = f"no fcabert-bench binary at {tmp_path / 'fcabert-bench'} next to {lone}"
    with pytest.raises(SystemExit, match=re.escape(beside)):
        run_bench.main(["--quick", "--fcabert", str(lone), "--work-dir", str(tmp_path)])
    given = f"no fcabert-bench binary at {tmp_path / 'nowhere'} (--fcabert-bench)"
    with pytest.raises(SystemExit, match=re.escape(given)):
        run_bench.main(["--quick", "--fcabert", str(lone), "--fcabert-bench", str(tmp_path / "nowhere"),
                        "--work-dir", str(tmp_path)])


# ---------------------------------------------------------------------------------------------
# the pieces, without engines

TOKENS = [{"ids": list(range(1, 2 + n)), "type_ids": [0] * (1 + n)} for n in (9, 2, 7, 1, 5, 3, 8)]


def test_sorted_batches_restore_file_order():
    batches = plan_batches(TOKENS, 3, "sorted")
    assert [b.index.tolist() for b in batches] == [[3, 1, 5], [4, 2, 6], [0]]
    assert [b.input_ids.shape[1] for b in batches] == [4, 9, 10]  # each padded to its own longest
    # an engine's per-batch outputs (here: each row's length) come back in file order
    restored = restore_order(batches, [b.lengths()[:, None].astype(np.float32) for b in batches], len(TOKENS))
    assert restored[:, 0].tolist() == [len(t["ids"]) for t in TOKENS]
    assert fingerprint(unpadded(batches, len(TOKENS))) == fingerprint(TOKENS)
    changed = [dict(t, type_ids=[1] * len(t["ids"])) if i == 4 else t for i, t in enumerate(TOKENS)]
    assert fingerprint(changed) != fingerprint(TOKENS)
    with pytest.raises(SystemExit, match="a batch plan lost sequences"):
        unpadded(batches[:2], len(TOKENS))


class FakeProcess:
    info = {"sequences": 4}


def engine(peer, precision):
    return eng.Engine(PEERS[peer][0], FakeProcess(), "run sorted", "peer", precision, peer, "sorted")


def test_logit_checks_refuse_wrong_outputs():
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.5], [0.1, 0.3]], np.float32)
    fp32, int8 = engine("ort-fp32", "f32"), engine("ort-int8", "int8")
    assert eng.check_logits(fp32, ref + 1e-4, ref, 1e-3, 0.9, "now")["argmax_agreement"] == 1.0
    with pytest.raises(SystemExit, match="ONNX Runtime fp32 .* fails its logit check now"):
        eng.check_logits(fp32, ref[[1, 0, 2, 3]], ref, 1e-3, 0.9, "now")  # order not restored
    assert eng.check_logits(int8, ref + 0.05, ref, 1e-3, 0.9, "now")["max_abs_diff"] > 1e-3  # int8: argmax only
    with pytest.raises(SystemExit, match="argmax agreement 75.0%"):
        eng.check_logits(int8, ref[[0, 1, 2, 2]], ref, 1e-3, 0.9, "now")
    # OpenVINO's default resolved to f32 (a CPU without bf16) is held to the fp32 rule
    with pytest.raises(SystemExit, match="max \\|diff\\| <= 0.001"):
        eng.check_logits(engine("ov", "f32"), ref + 0.05, ref, 1e-3, 0.9, "now")


def test_whole_job_agreement_check():
    whole = {"engines": [{"engine": "ONNX Runtime int8", "agreement": 0.5, "agreement_with": "fcabert dense fp32"}]}
    with pytest.raises(SystemExit, match="ONNX Runtime int8 agrees with fcabert dense fp32 on only 50.0%"):
        whole_job.check_agreement(whole, 0.9)
    whole_job.check_agreement(whole, 0.5)


def test_peer_names():
    assert expand_peers("ort,ct2-int8") == ["ort-fp32", "ort-int8", "ct2-int8"]
    assert expand_peers("") == []
    with pytest.raises(SystemExit, match="unknown peer 'tensorrt'"):
        expand_peers("tensorrt")
