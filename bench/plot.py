#!/usr/bin/env python3
"""
plot.py - the benchmark as a picture: fusec and torch.compile as % of the copy
roofline, one pair of bars per graph and dtype.

    python3 bench/plot.py results.json [-o results.png]

Reads the JSON of bench/compare_torch.py --json.  A bar is the roofline time
(every input read once, every output written once, at the measured copy
bandwidth) over the measured time, so 100% is the speed of a plain copy of the
same bytes.  Lines mark 90% (the target of issue 4) and 100%.  A graph whose
fusec output did not match eager's has its fusec bar hatched and "FAIL"
written over it; one that fusec could not compile or run gets "ERROR" where
its bar would be.  The matmul and convolution blocks (GPT-2 attention, LLaMA
MLP, ResNet bottleneck, decomposed attention) are bound by arithmetic, not by
memory: their bars are low by nature and are drawn apart, after a gap.
"""
import argparse
import json
import os
import sys

COMPUTE_BOUND = {"causal_attention", "gpt2_attention", "llama_mlp", "resnet_bottleneck"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", help="results of compare_torch.py --json")
    ap.add_argument("-o", "--output", help="PNG to write (default: the JSON's name, .png)")
    args = ap.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(args.json) as f:
        data = json.load(f)
    rows = data.get("rows", [])
    meta = data.get("meta", {})
    if not rows:
        print("plot: no rows in %s" % args.json, file=sys.stderr)
        return 1
    mem = [r for r in rows if r.get("graph") not in COMPUTE_BOUND]
    comp = [r for r in rows if r.get("graph") in COMPUTE_BOUND]
    ordered = mem + comp

    # x positions, with a gap before the compute-bound group
    xs, x = [], 0.0
    for i, r in enumerate(ordered):
        if i == len(mem) and mem and comp:
            x += 0.8
        xs.append(x)
        x += 1.0
    w = 0.38

    fig, ax = plt.subplots(figsize=(max(8.0, 0.62 * len(ordered) + 2.5), 5.2))
    tops = [100.0]
    for xi, r in zip(xs, ordered):
        c = r.get("compile_roof_pct")
        fz = r.get("fusec_roof_pct")
        if c is not None:
            ax.bar(xi - w / 2, c, w, color="#9aa5b1", edgecolor="#52606d", linewidth=0.6)
            ax.text(xi - w / 2, c + 1, "%.0f" % c, ha="center", va="bottom", fontsize=6)
            tops.append(c)
        failed = r.get("status") == "FAIL"
        if fz is not None:
            ax.bar(xi + w / 2, fz, w, color="#e4572e" if not failed else "#f4c7b8",
                   edgecolor="#8c2f14", linewidth=0.6, hatch="//" if failed else None)
            ax.text(xi + w / 2, fz + 1, "%.0f" % fz, ha="center", va="bottom", fontsize=6)
            tops.append(fz)
        label = None
        if failed:
            label = "FAIL"
        elif fz is None and r.get("status") != "ok":
            label = "not run" if r.get("status") == "SKIP" else "ERROR"
        if label:
            ax.text(xi + w / 2, (fz or 0) + 6, label, rotation=90, ha="center", va="bottom",
                    fontsize=7, color="#8c2f14")
    top = max(tops) * 1.12
    ax.set_ylim(0, top)
    ax.axhline(100, color="#333333", linewidth=0.8)
    ax.axhline(90, color="#333333", linewidth=0.8, linestyle="--")
    ax.text(xs[-1] + 0.6, 90, "90%", va="center", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels(["%s\n%s" % (r.get("graph", "?"), r.get("dtype") or "") for r in ordered],
                       rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("% of copy roofline (higher is better)")
    if mem and comp:
        ax.axvline((xs[len(mem) - 1] + xs[len(mem)]) / 2, color="#bbbbbb", linewidth=0.8)
        ax.text(xs[len(mem)] - 0.4, top * 0.97, "matmul / conv bound ->", fontsize=8,
                va="top", color="#555555")
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="#9aa5b1", label="torch.compile"),
                       Patch(color="#e4572e", label="fusec")], loc="upper left", fontsize=8)
    bw = meta.get("copy_bw_GBps")
    ax.set_title("fusec vs torch.compile on %s (copy bandwidth %s GB/s), %s, commit %s"
                 % (meta.get("device", "?"), "%.0f" % bw if bw else "?",
                    (meta.get("date") or "?").split(" ")[0], meta.get("commit", "?")),
                 fontsize=9)
    fig.tight_layout()
    out = args.output or os.path.splitext(args.json)[0] + ".png"
    fig.savefig(out, dpi=130)
    print("plot: wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
