#!/usr/bin/env python3
"""Puts the GPU's clock and power beside each flash_bench point: were two points measured at the
same clock?

    python3 tools/bench_clocks.py --json bench.json --log bench.log --clocks clocks.csv
    python3 tools/bench_clocks.py --self-test

Inputs, as tools/device_run.sh's bench stage writes them:
- bench.log: flash_bench's stdout, line-buffered, each line prefixed with the Unix time at which it
  was printed ("1765139000.123456789 fa3paper sweep ..."). flash_bench prints a point's line once
  its timed launches (and the reference check) are done, so point k was timed between the lines
  of points k - 1 and k (for the first point: the table header). The point table ends where the
  derived figures begin.
- clocks.csv: `nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw.instant,clocks_event_reasons.active
  --format=csv,noheader,nounits -lms 20` for the bench's GPU (timestamps in the machine's local
  time, as Python reads them on the same machine).
A window also holds work that leaves the GPU idle (input generation and upload, the CPU reference
check), so only samples whose event reasons lack the GPU-idle bit count. Each point of bench.json
whose line is found gets, from those samples: sm_clock_mhz (median), sm_clock_min_mhz, power_w
(median), power_capped_share (the share whose event reasons hold the software power cap,
hardware slowdown or power brake bit) and clock_samples (0: no busy sample, and no other field).
A point of a few milliseconds may get none. The file is replaced once the new text is written; a
table is printed. The standard library only.
"""
import argparse
import datetime
import json
import os
import statistics
import sys

# nvidia-smi clocks event reasons: GPU idle; SW power cap, HW slowdown, HW power brake slowdown.
IDLE_REASON_BIT = 0x1
POWER_REASON_BITS = 0x4 | 0x8 | 0x80
# Fields a point's printed line and its JSON record share, in the line's column order.
LINE_FIELDS = (("grid", 0, str), ("dtype", 2, str), ("batch", 3, int), ("heads", 4, int), ("heads_k", 5, int),
               ("seqlen_q", 6, int), ("seqlen_k", 7, int), ("head_dim", 8, int))


def is_point_line(tokens, grids):
    """A row of the point table: grid, case, dtype, then batch .. head_dim as integers and the mask."""
    if len(tokens) < 10 or tokens[0] not in grids or tokens[9] not in ("yes", "no"):
        return False
    return all(t.isdigit() for t in tokens[3:9])


def parse_log(lines, grids):
    """(time, tokens) of each point line, and the time of the table header (None if absent)."""
    header_time = None
    points = []
    for line in lines:
        stamp, _, text = line.rstrip("\n").partition(" ")
        try:
            t = float(stamp)
        except ValueError:
            continue
        if text.startswith("derived figures"):
            break
        tokens = text.split()
        if tokens and tokens[0] == "grid" and header_time is None:
            header_time = t
        elif is_point_line(tokens, grids):
            points.append((t, tokens))
    return header_time, points


def parse_clocks(lines):
    """(time, sm_mhz, power_w or None, reasons) per sample; lines whose time, clock or reasons do
    not parse are skipped (a GPU may report its power as "[N/A]")."""
    samples = []
    for line in lines:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        try:
            t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            sample = (t, float(parts[1]), int(parts[3], 16))
        except ValueError:
            continue
        try:
            power = float(parts[2])
        except ValueError:
            power = None
        samples.append((sample[0], sample[1], power, sample[2]))
    return samples


def line_matches(point, tokens):
    return all(kind(tokens[index]) == point.get(field) for field, index, kind in LINE_FIELDS)


def annotate(points, header_time, point_lines, samples):
    """Adds the clock fields to each point whose line matches it; returns how many got them."""
    if len(point_lines) != len(points):
        return 0
    annotated = 0
    start = header_time
    for point, (end, tokens) in zip(points, point_lines):
        if start is not None and line_matches(point, tokens):
            inside = [s for s in samples if start < s[0] <= end and not s[3] & IDLE_REASON_BIT]
            point["clock_samples"] = len(inside)
            if inside:
                clocks = [s[1] for s in inside]
                point["sm_clock_mhz"] = statistics.median(clocks)
                point["sm_clock_min_mhz"] = min(clocks)
                powers = [s[2] for s in inside if s[2] is not None]
                point["power_w"] = statistics.median(powers) if powers else None
                point["power_capped_share"] = sum(1 for s in inside if s[3] & POWER_REASON_BITS) / len(inside)
                annotated += 1
        start = end
    return annotated


def print_table(points):
    print(f"{'grid':<8} {'dtype':<5} {'d':>4} {'causal':<6} {'batch':>5} {'seq_q':>6} {'TFLOP/s':>8} "
          f"{'SM MHz':>7} {'min':>5} {'W':>5} {'capped':>6} {'n':>4}")
    for p in points:
        if "sm_clock_mhz" not in p:
            continue
        print(f"{p['grid']:<8} {p['dtype']:<5} {p['head_dim']:>4} {str(p['causal']).lower():<6} {p['batch']:>5} "
              f"{p['seqlen_q']:>6} {p.get('tflops') or 0:>8.1f} {p['sm_clock_mhz']:>7.0f} {p['sm_clock_min_mhz']:>5.0f} "
              f"{p['power_w'] if p['power_w'] is not None else float('nan'):>5.0f} {p['power_capped_share']:>6.2f} "
              f"{p['clock_samples']:>4}")


def self_test():
    """Two synthetic points: the second timed while the power cap held the clock down."""
    base = datetime.datetime(2026, 12, 7, 20, 0, 0)
    def stamp(seconds):
        return (base + datetime.timedelta(seconds=seconds)).timestamp()
    def sample(seconds, mhz, watts, reasons):
        when = (base + datetime.timedelta(seconds=seconds)).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]
        return f"{when}, {mhz}, {watts}, {reasons}"
    row = "fa3paper sweep bf16 {b} 16 8 {s} {k} 128 no - dense no 1.0 600.0 0.1 1e-3 1e-3 ok"
    log = [f"{stamp(0.0)} flash_bench: header line", f"{stamp(0.1)} grid case dtype ...",
           f"{stamp(1.0)} " + row.format(b=2, s=8192, k=4096), f"{stamp(2.0)} " + row.format(b=1, s=16384, k=8192),
           f"{stamp(2.05)} derived figures (issue 5; ratios of the points above)",
           f"{stamp(2.06)} fa3paper bf16  full layer packed / dense 0.938 >= 0.95 x y z w",
           f"{stamp(2.1)} flash_bench: 2 points, all passed"]
    clocks = [sample(0.3, 345, 80.0, "0x0000000000000001"),   # idle: input upload, not counted
              sample(0.5, 1980, 690.5, "0x0000000000000000"), sample(0.9, 1970, 695.0, "0x0000000000000000"),
              sample(1.5, 1755, 700.1, "0x0000000000000004"), sample(1.9, 1800, "[N/A]", "0x0000000000000000"),
              "not a sample"]
    def fresh_points():
        return [{"grid": "fa3paper", "dtype": "bf16", "batch": 2, "heads": 16, "heads_k": 8, "seqlen_q": 8192,
                 "seqlen_k": 4096, "head_dim": 128},
                {"grid": "fa3paper", "dtype": "bf16", "batch": 1, "heads": 16, "heads_k": 8, "seqlen_q": 16384,
                 "seqlen_k": 8192, "head_dim": 128}]
    points = fresh_points()
    header_time, point_lines = parse_log(log, {"fa3paper"})
    checks = [
        ("two point lines (not the derived figures)", len(point_lines) == 2),
        ("both annotated", annotate(points, header_time, point_lines, parse_clocks(clocks)) == 2),
        ("first point's clock", points[0]["sm_clock_mhz"] == 1975 and points[0]["power_capped_share"] == 0.0),
        ("second point's clock", points[1]["sm_clock_min_mhz"] == 1755 and points[1]["power_capped_share"] == 0.5),
        ("power without the sample that has none", points[1]["power_w"] == 700.1),
        ("samples per window", points[0]["clock_samples"] == 2 and points[1]["clock_samples"] == 2),
    ]
    mismatched = fresh_points()
    mismatched[0]["seqlen_k"] = 8192   # each field is read from its own column
    checks.append(("a line that does not match its point is left alone",
                   annotate(mismatched, header_time, point_lines, parse_clocks(clocks)) == 1
                   and "sm_clock_mhz" not in mismatched[0] and "sm_clock_mhz" in mismatched[1]))
    unmatched = fresh_points()
    checks.append(("a missing line leaves every point alone",
                   annotate(unmatched, header_time, point_lines[:1], parse_clocks(clocks)) == 0
                   and not any("sm_clock_mhz" in p for p in unmatched)))
    failed = [name for name, ok in checks if not ok]
    for name in failed:
        print(f"bench_clocks self-test FAILED: {name}")
    if not failed:
        print(f"bench_clocks self-test: {len(checks)} checks passed")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="flash_bench JSON, annotated in place")
    parser.add_argument("--log", help="flash_bench stdout, each line prefixed with its Unix time")
    parser.add_argument("--clocks", help="nvidia-smi samples (timestamp, SM MHz, W, event reasons)")
    parser.add_argument("--self-test", action="store_true", help="check the matching on synthetic input")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not (args.json and args.log and args.clocks):
        parser.error("--json, --log and --clocks are required")
    with open(args.json) as f:
        bench = json.load(f)
    points = bench.get("points", [])
    with open(args.log) as f:
        header_time, point_lines = parse_log(f, {p.get("grid") for p in points})
    with open(args.clocks) as f:
        samples = parse_clocks(f)
    annotated = annotate(points, header_time, point_lines, samples)
    head = json.dumps({k: v for k, v in bench.items() if k != "points"})
    text = head[:-1] + ', "points": [\n' + ",\n".join("  " + json.dumps(p) for p in points) + "\n]}\n"
    partial = args.json + ".partial"   # one point per line, as flash_bench writes it
    with open(partial, "w") as f:
        f.write(text)
    os.replace(partial, args.json)
    print(f"bench_clocks: {annotated} of {len(points)} points annotated from {len(samples)} clock samples "
          f"({len(point_lines)} point lines in the log)")
    print_table(points)
    return 0


if __name__ == "__main__":
    sys.exit(main())
