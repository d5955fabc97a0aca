"""The benchmark's report: the machine and versions, the targets, and the markdown tables.

Every ratio compares figures of the same run. "The best peer" of a workload is the fastest
row of any peer configuration (length-sorted or file order) at batch > 1, the lowest median
batch latency at batch 1.
"""
from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

CPU_FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
PEER_PACKAGES = ("onnxruntime", "onnx", "openvino", "ctranslate2", "torch", "transformers", "tokenizers", "numpy")


def machine() -> dict:
    """The CPU by name and the flags that decide which precision is fast on it."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    field = lambda key: next((l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith(key)), "?")  # noqa: E731
    flags = set(field("flags").split())
    uname = os.uname()
    return {"cpu": field("model name"), "family": field("cpu family"), "model": field("model"),
            "cpus": os.cpu_count(), "flags": [f for f in CPU_FLAGS if f in flags],
            "missing_flags": [f for f in CPU_FLAGS if f not in flags], "kernel": f"{uname.sysname} {uname.release}"}


def versions() -> dict:
    # metadata, not imports: importing every engine into the driver would load their thread
    # pools (Intel's OpenMP with CTranslate2) into one process for nothing
    out = {}
    for name in PEER_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    if out["torch"] == "not installed":  # Debian's python3-torch may ship without metadata
        import torch
        out["torch"] = torch.__version__
    return out


# ---------------------------------------------------------------------------------------------
# best rows and targets

def peers_of(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["kind"] == "peer"]


def fcabert_of(rows: list[dict], prefix: str) -> list[dict]:
    return [r for r in rows if r["kind"] == "fcabert" and r["engine"].startswith(prefix + " ")]


def best(rows: list[dict], batch_size: int) -> dict | None:
    """The fastest row: most examples/s at batch > 1, lowest median latency at batch 1."""
    if not rows:
        return None
    if batch_size == 1:
        return min(rows, key=lambda r: r["latency_ms_median"])
    return max(rows, key=lambda r: r["examples_per_s"])


def workload_label(w: dict) -> str:
    return f"{w['model']} {w['dataset']} b{w['batch_size']}"


def evaluate_targets(report: dict) -> list[dict]:
    out = []
    peaks = report["gemm"]["peak_gflops"]

    def add(target, workload, measured, met):
        out.append({"target": target, "workload": workload, "measured": measured, "met": bool(met)})

    for w in report["workloads"]:
        rows, b, label = w["engines"], w["batch_size"], workload_label(w)
        ours, peer = best(fcabert_of(rows, "fcabert dense"), b), best(peers_of(rows), b)
        if ours and peer and b == 1:
            r = ours["latency_ms_median"] / peer["latency_ms_median"]
            add("batch-1 latency, dense fcabert at its best precision <= 0.8x the best peer's median", label,
                f"{ours['latency_ms_median']:.2f} ms ({ours['engine']}) vs {peer['latency_ms_median']:.2f} ms "
                f"({peer['engine']}) = {r:.2f}x", r <= 0.8)
        elif ours and peer:
            r = ours["examples_per_s"] / peer["examples_per_s"]
            add(f"dense fcabert at its best precision, batch {b} >= 1.3x the best peer configuration", label,
                f"{r:.2f}x ({ours['engine']} {ours['examples_per_s']:.0f} vs {peer['engine']} "
                f"{peer['examples_per_s']:.0f} ex/s)", r >= 1.3)
        if b == 1:
            continue
        for dense in fcabert_of(rows, "fcabert dense"):
            peak = peaks.get(dense["precision"])
            if peak:
                frac = dense["linear_gflops"] / peak
                add(f"encoder GEMMs >= 80% of oneDNN's {dense['precision']} peak (dense, batch {b})", label,
                    f"{dense['linear_gflops']:.0f} / {peak:.0f} GFLOP/s = {frac:.0%} (GEMMs "
                    f"{dense['linear_share_of_time']:.0%} of the time)", frac >= 0.8)
        fca_speedup_targets(rows, label, add)
    whole = report.get("whole_job")
    if whole:
        ours = max((r for r in whole["engines"] if r["engine"].startswith("fcabert FCA model")),
                   key=lambda r: r["sentences_per_s"], default=None)
        peer = max(peers_of(whole["engines"]), key=lambda r: r["sentences_per_s"], default=None)
        if ours and peer:
            r = ours["sentences_per_s"] / peer["sentences_per_s"]
            add("whole job, FCA model at its best precision >= 2.5x the best peer's sentences/s",
                f"{whole['lines']} lines of {whole['file']}",
                f"{r:.2f}x ({ours['engine']} {ours['sentences_per_s']:.0f} vs {peer['engine']} "
                f"{peer['sentences_per_s']:.0f} sentences/s{accuracy_note(ours, whole)})", r >= 2.5)
    return out


def fca_speedup_targets(rows: list[dict], label: str, add) -> None:
    """FCA turns its saved FLOPs into time: speed-up >= 85% of the FLOPs ratio (fp32)."""
    dense = next((r for r in rows if r["engine"] == "fcabert dense fp32"), None)
    for fca in (r for r in rows if r["engine"] in ("fcabert FCA fp32", "fcabert FCA model fp32")):
        if dense:
            speed = fca["examples_per_s"] / dense["examples_per_s"]
            flops = dense["flops_per_pass"] / fca["flops_per_pass"]
            add(f"FCA speed-up >= 85% of FLOPs ratio ({fca['engine']})", label,
                f"{speed:.2f}x time / {flops:.2f}x FLOPs = {speed / flops:.0%}", speed >= 0.85 * flops)


def accuracy_note(row: dict, whole: dict) -> str:
    """The accuracy cost of the FCA model at that precision, against dense fcabert fp32."""
    dense = next((r for r in whole["engines"] if r["engine"] == "fcabert dense fp32"), None)
    if "accuracy" not in row or not dense:
        return f"; labels agree with {row['agreement_with']} on {row['agreement']:.1%}"
    return f"; accuracy {row['accuracy']:.2%} vs {dense['accuracy']:.2%} for {dense['engine']}"


# ---------------------------------------------------------------------------------------------
# markdown

def fmt(value, digits=2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def header(report: dict) -> list[str]:
    m, v = report["machine"], report["versions"]
    peak = report["gemm"]["peak_gflops"]
    return ["# fcabert benchmark results", "",
            f"- date (UTC): {report['date']}; load average at start / end: {report['load_start']} / "
            f"{report['load_end']}",
            f"- CPU: **{m['cpu']}** (family {m['family']} model {m['model']}), {m['cpus']} CPUs, {m['kernel']}; "
            f"flags present: {', '.join(m['flags']) or 'none of ' + ', '.join(CPU_FLAGS)}; absent: "
            f"{', '.join(m['missing_flags']) or 'none'}",
            f"- fcabert: {report['fcabert_version']} ({report['gemm'].get('dnnl', '?')})",
            "- peers: " + ", ".join(f"{k} {x}" for k, x in v.items()),
            f"- threads: {report['threads']}; repetitions per figure: {report['repeat']} (median, round-robin)"
            + (f"; CT2_FORCE_CPU_ISA={report['ct2_isa']}" if report.get("ct2_isa") else ""),
            f"- command: `{report['command']}`",
            "- oneDNN matmul peak measured in this run: " + ", ".join(f"{k} {x:.0f} GFLOP/s" for k, x in peak.items()),
            ""]


def best_peer_table(report: dict) -> list[str]:
    lines = ["## The best peer against fcabert, per workload", "",
             "| model | data | batch | best peer | its precision | its figure | best fcabert dense | x | "
             "best fcabert FCA | x |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for w in report["workloads"]:
        rows, b = w["engines"], w["batch_size"]
        peer = best(peers_of(rows), b)
        if not peer:
            continue
        unit, key = ("ms", "latency_ms_median") if b == 1 else ("ex/s", "examples_per_s")
        cells = []
        for ours in (best(fcabert_of(rows, "fcabert dense"), b), best(fcabert_of(rows, "fcabert FCA"), b)):
            x = None if not ours else (peer[key] / ours[key] if b == 1 else ours[key] / peer[key])
            cells += [f"{ours['engine']} {ours[key]:.2f} {unit}" if ours else "", fmt(x)]
        lines.append(f"| {w['model']} | {w['dataset']} | {b} | {peer['engine']} | {peer['precision']} | "
                     f"{peer[key]:.2f} {unit} | " + " | ".join(cells) + " |")
    whole = report.get("whole_job")
    if whole:
        rows = whole["engines"]
        peer = max(peers_of(rows), key=lambda r: r["sentences_per_s"], default=None)
        if peer:
            cells = []
            for prefix in ("fcabert dense", "fcabert FCA model"):
                ours = max(fcabert_of(rows, prefix), key=lambda r: r["sentences_per_s"], default=None)
                cells += [f"{ours['engine']} {ours['sentences_per_s']:.0f} sentences/s",
                          fmt(ours["sentences_per_s"] / peer["sentences_per_s"])] if ours else ["", ""]
            lines.append(f"| whole job | {whole['lines']} lines | {whole['batch_size']} | {peer['engine']} | | "
                         f"{peer['sentences_per_s']:.0f} sentences/s | " + " | ".join(cells) + " |")
    return lines + ["", "x > 1: fcabert is faster (throughput ratio; at batch 1 the peer's median latency over ours).",
                    ""]


def sort_rows(rows: list[dict], batch_size: int) -> list[dict]:
    """The best peer first, then the other peers by speed, then fcabert's rows by speed."""
    key = (lambda r: r["latency_ms_median"]) if batch_size == 1 else (lambda r: -r["examples_per_s"])
    return sorted(peers_of(rows), key=key) + sorted((r for r in rows if r["kind"] != "peer"), key=key)


def throughput_table(report: dict) -> list[str]:
    peaks = report["gemm"]["peak_gflops"]
    lines = ["## Throughput and latency", "",
             "| model | data | batch | engine | precision | ex/s | median ms/batch | p90 ms/batch | tokens computed | "
             "GFLOP/s | linear GFLOP/s | % of its precision's peak | x best peer |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in report["workloads"]:
        rows, b = w["engines"], w["batch_size"]
        peer = best(peers_of(rows), b)
        for r in sort_rows(rows, b):
            x = None
            if peer and r is not peer:
                x = peer["latency_ms_median"] / r["latency_ms_median"] if b == 1 else \
                    r["examples_per_s"] / peer["examples_per_s"]
            linear = r.get("linear_gflops")
            share = 100 * linear / peaks[r["precision"]] if linear and r["precision"] in peaks else None
            lines.append(f"| {w['model']} | {w['dataset']} | {b} | {r['engine']} | {r['precision']} | "
                         f"{r['examples_per_s']:.1f} | {r['latency_ms_median']:.2f} | {r['latency_ms_p90']:.2f} | "
                         f"{r.get('padded_tokens', w['tokens'])} | {r.get('gflops', 0):.0f} | {fmt(linear, 0)} | "
                         f"{fmt(share, 0)} | {fmt(x)} |")
    return lines + ["", "tokens computed: real tokens for fcabert (packed, no padding), padded tokens for the peers. "
                    "GFLOP/s = the dense model's FLOPs (include/fcabert/flops.h, real tokens) per second, the FCA "
                    "runs' own FLOPs for FCA. linear GFLOP/s (fcabert) = the encoder GEMMs' FLOPs per second of the "
                    "time in those calls (int8: input quantization included), against oneDNN's peak for the same "
                    "precision. Peers' rows without a suffix ran length-sorted batches (outputs put back in file "
                    "order inside the timed pass); \"(file order)\" rows ran file-order batches padded to their "
                    "longest row.", ""]


def checks_table(report: dict) -> list[str]:
    lines = ["## Peer logit checks (against PyTorch fp32 with the same weights)", "",
             "| workload | engine | precision | max abs logit diff | argmax agreement | rule |",
             "|---|---|---|---|---|---|"]
    for w in report["workloads"]:
        for c in w["checks"]:
            lines.append(f"| {workload_label(w)} | {c['engine']} | {c['precision']} | {c['max_abs_diff']:.2g} | "
                         f"{c['argmax_agreement']:.1%} | {c['rule']} |")
    return lines + ["", "Checked on the warm-up pass and again on the last timed pass; a failure stops the run.", ""]


def whole_job_table(whole: dict) -> list[str]:
    lines = [f"## The whole job: {whole['lines']} lines of {whole['file']}", "",
             f"One process per engine from start to exit (load, tokenization, batches of {whole['batch_size']}, "
             f"output), median of {whole['repeat']} round-robin runs.", "",
             "| engine | sentences/s | wall s | labels agree with | share of lines | accuracy |",
             "|---|---|---|---|---|---|"]
    for r in sorted(whole["engines"], key=lambda r: (r["kind"] != "peer", -r["sentences_per_s"])):
        lines.append(f"| {r['engine']} | {r['sentences_per_s']:.0f} | {r['wall_s']:.2f} | {r['agreement_with']} | "
                     f"{r['agreement']:.1%} | "
                     f"{fmt(100 * r['accuracy']) + '%' if 'accuracy' in r else ''} |")
    return lines + [""]


def markdown(report: dict) -> str:
    lines = header(report) + best_peer_table(report)
    lines += ["## Targets", "", "| target | workload | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['workload']} | {t['measured']} | {'yes' if t['met'] else 'no'} |"
              for t in report["targets"]]
    lines += [""]
    if report.get("whole_job"):
        lines += whole_job_table(report["whole_job"])
    lines += throughput_table(report) + checks_table(report) + facts_tables(report)
    lines += ["## Notes", "",
              "- ONNX Runtime int8: quantize_dynamic of the BERT-fused graph, s8 weights per channel. OpenVINO: "
              "converted from the ONNX export, dynamic shapes; LATENCY hint at batch 1, THROUGHPUT with an "
              "AsyncInferQueue above; \"default\" leaves the inference precision to OpenVINO (bf16 where the CPU "
              "has AVX512_BF16 or AMX). CTranslate2: TransformersConverter, Encoder; the classifier head in numpy.",
              "- CTranslate2 picks its kernels by CPU vendor and flags (AVX2 on AMD CPUs even with AVX-512); "
              "CT2_FORCE_CPU_ISA (--ct2-isa) overrides it: in an earlier run on an AMD EPYC (Zen 5), AVX512 was "
              "its fastest.", ""]
    return "\n".join(lines) + "\n"


def facts_tables(report: dict) -> list[str]:
    lines = ["## Engine facts", "",
             "| model | engine | load ms | weights file MB | peak RSS MB | heap allocations in the steady-state "
             "forwards (all batches) | of them outside oneDNN calls | allocations per Session::run |",
             "|---|---|---|---|---|---|---|---|"]
    for f in report["facts"]:
        lines.append(f"| {f['model']} | {f['engine']} | {f['load_ms']:.0f} | {f['weights_mb']:.1f} | "
                     f"{f['peak_rss_mb']:.1f} | {f['forward_allocations']} ({f['batches']} batches) | "
                     f"{f['forward_allocations_outside_onednn']} | {fmt(f['run_allocations_per_batch'], 1)} |")
    lines += ["", "## oneDNN matmul (GFLOP/s)", "", "| precision | M | K | N | primitive | implementation | GFLOP/s |",
              "|---|---|---|---|---|---|---|"]
    for g in report["gemm"]["gemm"]:
        lines.append(f"| {g['precision']} | {g['m']} | {g['k']} | {g['n']} | "
                     f"{'engine Linear' if g['engine_linear'] else 'bare, fixed shape'} | {g['implementation']} | "
                     f"{g['gflops']:.0f} |")
    return lines + [""]
