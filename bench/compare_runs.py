#!/usr/bin/env python3
"""Compares two flash_bench JSON files point by point: a change against its baseline.

    python3 bench/compare_runs.py NEW.json BASE.json [--json OUT.json]

For every point both files hold (the same grid, case, dtype, shape and mask) it prints both
TFLOP/s, their ratio and whether the sampled rows' errors are identical (the same seed gives the
same inputs, so a change that keeps the arithmetic gives the same errors bit for bit), then the
geometric mean of the ratios per grid and overall. Both runs should come from one call on one GPU
(tools/device_run.sh bench baseline). The standard library only.
"""
import argparse
import json
import math
import sys

SHAPE_FIELDS = ("grid", "case", "dtype", "head_dim", "causal", "batch", "heads", "heads_k", "seqlen_q", "seqlen_k",
                "page_size", "window_left", "window_right", "softcap", "num_splits")


def point_key(point):
    return tuple(point.get(field) for field in SHAPE_FIELDS)


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def compare(new, base):
    base_points = {point_key(p): p for p in base["points"]}
    rows = []
    for p in new["points"]:
        q = base_points.get(point_key(p))
        if q is None or not p.get("tflops") or not q.get("tflops"):
            continue
        rows.append({
            "grid": p["grid"], "case": p["case"], "dtype": p["dtype"], "head_dim": p["head_dim"],
            "causal": p["causal"], "batch": p["batch"], "seqlen_q": p["seqlen_q"], "seqlen_k": p["seqlen_k"],
            "new_tflops": p["tflops"], "base_tflops": q["tflops"], "ratio": p["tflops"] / q["tflops"],
            "new_rel_l2": p.get("rel_l2"), "base_rel_l2": q.get("rel_l2"),
            "same_error": p.get("rel_l2") == q.get("rel_l2"), "passed": bool(p.get("passed")),
        })
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("new")
    parser.add_argument("base")
    parser.add_argument("--json", help="write the comparison as JSON")
    args = parser.parse_args()
    with open(args.new) as f:
        new = json.load(f)
    with open(args.base) as f:
        base = json.load(f)
    rows = compare(new, base)
    if not rows:
        print("no point is in both files", file=sys.stderr)
        return 1
    print(f"new {new.get('git_commit')} against base {base.get('git_commit')}, {new.get('gpu')} / {base.get('gpu')}")
    for r in rows:
        mask = "causal" if r["causal"] else "full"
        error = "same error" if r["same_error"] else f"error {r['new_rel_l2']:.3e} (base {r['base_rel_l2']:.3e})"
        print(f"{r['grid']:9s} {r['case'][:16]:16s} {r['dtype']:5s} d{r['head_dim']:<4d}{mask:7s}"
              f"b{r['batch']:<4d}{r['seqlen_q']:>6d} x{r['seqlen_k']:<6d} {r['new_tflops']:8.1f} {r['base_tflops']:8.1f} "
              f"{r['ratio']:6.3f}  {error}{'' if r['passed'] else '  FAILED'}")
    summary = {}
    for grid in sorted({r["grid"] for r in rows}):
        summary[grid] = geomean([r["ratio"] for r in rows if r["grid"] == grid])
    summary["all"] = geomean([r["ratio"] for r in rows])
    for name, value in summary.items():
        print(f"geometric mean of new / base, {name}: {value:.4f}")
    print(f"points with identical errors: {sum(r['same_error'] for r in rows)} of {len(rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"new_commit": new.get("git_commit"), "base_commit": base.get("git_commit"),
                       "gpu": new.get("gpu"), "geomean": summary, "points": rows}, f, indent=1)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
