"""Turns bench/run's JSON lines into a table of medians, ratios, peak memory and final quality."""
import json
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

# The peer each neutrino figure is compared with, and whether larger is better.
BASELINE = {
    "mlp_train": ("pytorch-tuned", True), "cnn_train": ("pytorch-tuned", True),
    "mlp_infer_b1": ("onnxruntime", False), "mlp_infer_b256": ("onnxruntime", True),
    "cnn_infer_b1": ("onnxruntime", False), "cnn_infer_b256": ("onnxruntime", True),
    "matmul_256": ("onednn", True), "matmul_512": ("onednn", True),
    "matmul_1024": ("onednn", True), "matmul_2048": ("onednn", True),
    "xor": ("pytorch-tuned", False), "xor_process": ("pytorch", False),
    "lstm_train": ("pytorch-tuned", True), "gpt_train": ("pytorch-tuned", True),
    "gpt_generate_b1": ("pytorch-tuned", True), "gpt_generate_b8": ("pytorch-tuned", True),
}
# Rows compared with another of neutrino's own rows instead (bf16 against fp32, generation
# without the KV cache against with it, the composite attention's memory against the fused).
SELF_BASELINE = {"mlp_train_bf16": "mlp_train", "cnn_train_bf16": "cnn_train",
                 "gpt_train_bf16": "gpt_train", "gpt_generate_b1_nocache": "gpt_generate_b1",
                 "gpt_generate_b8_nocache": "gpt_generate_b8",
                 "attention_memory_composite": "attention_memory_fused"}
SYSTEMS = ["neutrino", "pytorch", "pytorch-tuned", "onnxruntime", "onednn", "openblas", "openblas-tuned"]


def cpu_name():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def slowdowns(idle_rows, contended, larger_better):
    """How many times slower each system ran with a busy process beside it than idle."""
    parts = []
    for system, value in contended.items():
        idle = [r["value"] for r in idle_rows.get(system, [])]
        if idle and value:
            idle_value = statistics.median(idle)
            factor = idle_value / value if larger_better else value / idle_value
            parts.append(f"{system} {factor:.2f}x slower")
    return ", ".join(parts) if parts else "-"


def main(path):
    rows = {}
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        rows.setdefault(r["workload"], {}).setdefault(r["system"], []).append(r)
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(f"# neutrino benchmark: {cpu_name()}, {cpus} CPUs, "
          f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print("Medians of the runs; ratio = neutrino against the peer named (>1 is better for neutrino).\n")
    present = [s for s in SYSTEMS if any(s in v for v in rows.values())]
    print("| workload | unit | " + " | ".join(present) + " | ratio | peak RSS MB (neutrino / peer) | loss / accuracy (neutrino; peer) | max abs diff |")
    print("|---|---|" + "---|" * len(present) + "---|---|---|---|")
    for workload, systems in rows.items():
        med = {s: statistics.median(r["value"] for r in rs) for s, rs in systems.items()}
        unit = next(iter(systems.values()))[0]["unit"]
        base, larger_better = BASELINE.get(workload.removesuffix("_contended"), (None, True))
        ratio = "-"
        if base in med and "neutrino" in med and med[base] and med["neutrino"]:
            ratio = f"{(med['neutrino'] / med[base]) if larger_better else (med[base] / med['neutrino']):.2f}x vs {base}"
        if workload.endswith("_contended"):
            ratio = slowdowns(rows.get(workload[: -len("_contended")], {}), med, larger_better)
        own = rows.get(SELF_BASELINE.get(workload), {}).get("neutrino")
        if own and med.get("neutrino"):
            ratio = f"{med['neutrino'] / statistics.median(r['value'] for r in own):.2f}x vs {SELF_BASELINE[workload]}"

        def rss(s):
            vals = [r["rss_mb"] for r in systems.get(s, []) if r.get("rss_mb") is not None]
            return fmt(statistics.median(vals)) if vals else "-"

        def quality(s):
            rs = systems.get(s, [])
            if not rs or rs[-1].get("loss") is None:
                return "-"
            if rs[-1].get("accuracy") is None:  # language models: the validation loss alone
                return f"{rs[-1]['loss']:.4f}"
            return f"{rs[-1]['loss']:.4f} / {rs[-1]['accuracy']:.4f}"

        diffs = [r["max_abs_diff"] for r in systems.get("neutrino", []) if r.get("max_abs_diff") is not None]
        cells = [fmt(med.get(s)) for s in present]
        print(f"| {workload} | {unit} | " + " | ".join(cells) +
              f" | {ratio} | {rss('neutrino')} / {rss(base) if base else '-'} | {quality('neutrino')}; {quality(base) if base else '-'} | "
              f"{fmt(max(diffs)) if diffs else '-'} |")


if __name__ == "__main__":
    main(sys.argv[1])
