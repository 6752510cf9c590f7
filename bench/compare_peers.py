#!/usr/bin/env python3
"""Puts flash_bench's numbers beside cuDNN and FlashAttention-2 on the same GPU, in the same run.

    python3 bench/compare_peers.py --bench out/bench.json --out out/peers.json \
        [--png out/peers.png] [--anchors ../shared/anchors/h100_attention_peers.json] \
        [--serving-anchors ../shared/anchors/h100_serving_peers.json]

Peers are timed through torch.nn.functional.scaled_dot_product_attention with
torch.nn.attention.sdpa_kernel(CUDNN_ATTENTION / FLASH_ATTENTION) on the shapes of the bench JSON,
with the same protocol as flash_bench: random inputs in [b, s, h, d] memory (the transpose to
[b, h, s, d] is a view), inputs rotated so that L2 does not hold them, CUDA events, warm-up, median.
Both sides count the FLOPs that flash_bench recorded for the point ("flops"; older bench files
without it: 4*b*h*sq*sk*d, halved when causal), so ours/theirs TFLOP/s ratios are time ratios.

Grids: fa3paper and qwen points are dense and run as they are. vit points (Qwen2.5-VL-3B vision
encoder): the packed batch of 88 windows runs on the peers as the padded batch of 88 x 64 tokens
(the longest window), FLOPs counted on the real windows only, as the serving anchors count
*_real_TFLOPs; the full layer (packed with one entry, and dense) runs as one 4,872-token sequence,
measured once for both. decode points (one query against a KV cache) run as they are, GQA through
enable_gqa, and add K/V bandwidth (the bytes of K and V over the time) beside the serving anchors'
cuDNN figures. varlen, window and paged points get no peer timing: issue 5 compares them with our
own kernel (flash_bench's derived figures), and SDPA's cuDNN/FA2 backends take no cu_seqlens,
sliding window or page table. The plot shows the fa3paper and qwen sweeps only.
Timed launches queue behind a spin kernel (torch.cuda._sleep) so that they run back to back and
the events time the GPU, not Python's per-call overhead, as flash_bench holds its stream.
Without PyTorch or a GPU the script still merges the anchors and draws the plot. PyTorch is used
only here, never by the library, the CLI or the tests.
"""
import argparse
import json
import math
import os
import statistics
import sys

L2_SPAN_FACTOR = 4                  # as flash_bench: input copies span 4x the L2
DEFAULT_L2_BYTES = 50 * 1024 ** 2   # H100's L2, when torch does not report it
ERROR_MAX_SEQLEN = 2048             # fp32 math reference materialises b*h*s*s scores: keep it small
TORCH_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}
PEERS = ("cudnn", "flash2")
PLOT_GRIDS = ("fa3paper", "qwen")   # sweeps over seqlen; the serving grids have no seqlen axis
# Grids whose points get no peer timing, and why (printed, and recorded as "peers_skipped").
PEERLESS_GRIDS = {
    "varlen": "compared with our dense kernel (flash_bench's derived figures); SDPA's cuDNN/FA2 take no cu_seqlens",
    "window": "compared with our full causal time (flash_bench's derived figures); SDPA's cuDNN/FA2 take no window",
    "paged": "compared with our contiguous layout (flash_bench's derived figures); SDPA takes no page table",
}
DECODE_GRID = "decode"
DECODE_TARGET_TBPS = 2.5            # issue 5: wherever the K/V read is >= 64 MB
DECODE_TARGET_MIN_BYTES = 64e6
DECODE_B1_16K_FACTOR = 2.0          # issue 5: batch 1 x 16k at least twice cuDNN's bandwidth
HOLD_CYCLES = 200_000_000           # the spin kernel the timed launches queue behind (~0.1 s)
VIT_GRID = "vit"
VIT_TARGET_SPEEDUP = 1.3            # issue 5: ours at least 1.3x faster than cuDNN on both vit layers
SERVING_ANCHORS_NAME = "h100_serving_peers.json"
# flash_bench's vit cases -> the serving anchors' vit layers.
VIT_ANCHOR_LAYERS = {"windows-packed": "window_padded_batch", "full-packed": "full", "full-dense": "full"}


def attention_flops(p):
    """The bench's own count when it recorded one; for older bench files 4*b*h*sq*sk*d, halved when
    causal with sq == sk, bottom-right visible pairs otherwise."""
    if p.get("flops"):
        return p["flops"]
    per_score = 4.0 * p["batch"] * p["heads"] * p["head_dim"]
    sq, sk = p["seqlen_q"], p["seqlen_k"]
    if not p["causal"]:
        return per_score * sq * sk
    if sq == sk:
        return per_score * sq * sk / 2
    return per_score * sum(min(max(i + sk - sq + 1, 0), sk) for i in range(sq))


def anchor_key(dtype, batch, heads, heads_k, seqlen, head_dim, causal):
    return (dtype, batch, heads, heads_k, seqlen, head_dim, bool(causal))


def load_anchors(path):
    if not path:
        return {}
    with open(path) as f:
        rows = json.load(f)["rows"]
    return {anchor_key(r["dtype"], r["b"], r["hq"], r["hkv"], r["s"], r["d"], r["causal"]): r for r in rows}


def load_serving_anchors(path):
    """shared/anchors/h100_serving_peers.json: its vit rows by layer name and its decode rows by
    (batch, cache)."""
    if not path:
        return {}
    with open(path) as f:
        data = json.load(f)
    anchors = {row["layer"]: row for row in data.get("vit", [])}
    anchors.update({("decode", row["b"], row["cache"]): row for row in data.get("decode", [])})
    return anchors


def serving_anchors_path(args):
    """--serving-anchors, or h100_serving_peers.json beside --anchors when it is there."""
    if args.serving_anchors:
        return args.serving_anchors
    if args.anchors:
        candidate = os.path.join(os.path.dirname(args.anchors), SERVING_ANCHORS_NAME)
        if os.path.isfile(candidate):
            return candidate
    return None


def point_anchor(anchors, p):
    if p["seqlen_q"] != p["seqlen_k"] or p.get("layout", "dense") != "dense":
        return None
    return anchors.get(anchor_key(p["dtype"], p["batch"], p["heads"], p["heads_k"], p["seqlen_q"], p["head_dim"],
                                  p["causal"]))


def peer_problem(p):
    """(problem, note): the dense problem the peers run for bench point p, with a note on how it
    relates to ours; or (None, why the point gets no peer timing)."""
    if p["grid"] in PEERLESS_GRIDS:
        return None, PEERLESS_GRIDS[p["grid"]]
    if p.get("window_left", -1) >= 0 or p.get("window_right", -1) >= 0 or p.get("softcap"):
        return None, "SDPA's cuDNN/FA2 backends take no sliding window or softcap"
    if p.get("layout", "dense") == "dense":
        return p, "the same problem"
    # Packed: batch is the number of sequences and seqlen_q/k the longest, so the dense batch of
    # the same batch and seqlen is the padded one.
    if p["batch"] == 1:
        return dict(p, layout="dense"), "the one sequence, dense"
    return (dict(p, layout="dense"),
            f"padded batch {p['batch']} x {p['seqlen_q']}, FLOPs of the real sequences ({p['total_q']} tokens)")


def peer_key(q, flops):
    return (q["dtype"], q["batch"], q["heads"], q["heads_k"], q["seqlen_q"], q["seqlen_k"], q["head_dim"],
            bool(q["causal"]), flops)


class PeerTimer:
    """Times SDPA backends with torch; constructed only when torch and a GPU are there."""

    def __init__(self, torch, iters, warmup):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        self.torch = torch
        self.F = torch.nn.functional
        self.sdpa_kernel = sdpa_kernel
        self.backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash2": SDPBackend.FLASH_ATTENTION,
                         "math": SDPBackend.MATH}
        self.iters = iters
        self.warmup = warmup
        props = torch.cuda.get_device_properties(0)
        self.gpu = props.name
        self.l2_bytes = getattr(props, "L2_cache_size", 0) or DEFAULT_L2_BYTES

    def make_inputs(self, p, copies):
        torch = self.torch
        dtype = getattr(torch, TORCH_DTYPES[p["dtype"]])
        b, sq, sk, d = p["batch"], p["seqlen_q"], p["seqlen_k"], p["head_dim"]
        # [b, s, h, d] in memory like ours; SDPA wants [b, h, s, d], so transpose the view.
        def tensor(s, h):
            return torch.randn(b, s, h, d, device="cuda", dtype=dtype).transpose(1, 2)
        return [(tensor(sq, p["heads"]), tensor(sk, p["heads_k"]), tensor(sk, p["heads_k"])) for _ in range(copies)]

    def attention(self, backend, q, k, v, causal):
        gqa = q.shape[1] != k.shape[1]
        with self.sdpa_kernel(self.backends[backend]):
            if not gqa:
                return self.F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            try:
                return self.F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
            except (TypeError, RuntimeError):
                # Older torch, or a backend without native GQA: share the KV heads explicitly.
                group = q.shape[1] // k.shape[1]
                return self.F.scaled_dot_product_attention(
                    q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), is_causal=causal)

    def time(self, backend, inputs, causal):
        torch = self.torch
        for i in range(self.warmup):
            self.attention(backend, *inputs[i % len(inputs)], causal)
        torch.cuda._sleep(HOLD_CYCLES)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(self.iters)]
        stops = [torch.cuda.Event(enable_timing=True) for _ in range(self.iters)]
        for i in range(self.iters):
            q, k, v = inputs[(self.warmup + i) % len(inputs)]
            starts[i].record()
            self.attention(backend, q, k, v, causal)
            stops[i].record()
        torch.cuda.synchronize()
        return statistics.median(s.elapsed_time(e) for s, e in zip(starts, stops))

    def rel_error(self, backend, inputs, causal):
        q, k, v = inputs[0]
        out = self.attention(backend, q, k, v, causal).float()
        ref = self.attention("math", q.float(), k.float(), v.float(), causal)
        return ((out - ref).norm() / ref.norm()).item()

    def measure(self, p, flops, with_error):
        """Times the peers on the dense problem p; flops is what both sides count."""
        torch = self.torch
        element = torch.tensor([], dtype=getattr(torch, TORCH_DTYPES[p["dtype"]])).element_size()
        input_bytes = element * p["batch"] * p["head_dim"] * (
            p["seqlen_q"] * p["heads"] + 2 * p["seqlen_k"] * p["heads_k"])
        copies = max(1, min(math.ceil(L2_SPAN_FACTOR * self.l2_bytes / input_bytes), self.warmup + self.iters))
        inputs = self.make_inputs(p, copies)
        result = {}
        for backend in PEERS:
            try:
                ms = self.time(backend, inputs, p["causal"])
                result[f"{backend}_ms"] = ms
                result[f"{backend}_tflops"] = flops / (ms * 1e-3) / 1e12
                if with_error:
                    result[f"{backend}_rel_l2"] = self.rel_error(backend, inputs, p["causal"])
            except RuntimeError as e:
                result[f"{backend}_error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
        del inputs
        torch.cuda.empty_cache()
        return result


def make_timer(iters, warmup):
    try:
        import torch
    except ImportError:
        print("compare_peers: torch is not importable: peers are not timed", file=sys.stderr)
        return None, {}
    info = {"torch": torch.__version__}
    if not torch.cuda.is_available():
        print("compare_peers: torch sees no CUDA device: peers are not timed", file=sys.stderr)
        return None, info
    info["cudnn"] = torch.backends.cudnn.version()
    timer = PeerTimer(torch, iters, warmup)
    info["peer_gpu"] = timer.gpu
    return timer, info


def ratio(ours, theirs):
    return ours / theirs if ours and theirs else None


def fmt(value, spec):
    """`value` formatted by `spec` (e.g. "7.1f"), or a dash of the same width when it is missing."""
    if isinstance(value, (int, float)):
        return format(value, spec)
    return "-".rjust(int(spec.split(".")[0]))


def print_table(points):
    header = (f"{'grid':9} {'case':14} {'dtype':5} {'b':>3} {'h':>3} {'hk':>3} {'seqlen':>6} {'d':>4} {'causal':6} "
              f"{'ours':>7} {'cudnn':>7} {'flash2':>7} {'fa3*':>7} {'/cudnn':>7} {'/best':>7} {'err':>9} {'cudnn_err':>9}")
    print(header)
    print("TFLOP/s; fa3* from the anchors file (another run on the same GPU model); /best = ours over the best peer;")
    print("packed points: b = sequences, seqlen = the longest; peers run them padded (see peer_problem in the JSON)")
    for p in points:
        print(f"{p['grid']:9} {p.get('case', '-'):14} {p['dtype']:5} {p['batch']:>3} {p['heads']:>3} {p['heads_k']:>3} "
              f"{p['seqlen_q']:>6} "
              f"{p['head_dim']:>4} {'yes' if p['causal'] else 'no':6} {fmt(p.get('tflops'), '7.1f')} "
              f"{fmt(p.get('cudnn_tflops'), '7.1f')} {fmt(p.get('flash2_tflops'), '7.1f')} "
              f"{fmt(p.get('fa3_tflops'), '7.1f')} {fmt(p.get('ratio_cudnn'), '7.3f')} "
              f"{fmt(p.get('ratio_best'), '7.3f')} {fmt(p.get('rel_l2'), '9.2e')} {fmt(p.get('cudnn_rel_l2'), '9.2e')}")


def speedup(ours_ms, theirs_ms):
    """How many times faster ours is: their time over ours."""
    return theirs_ms / ours_ms if ours_ms and theirs_ms else None


def add_vit_figures(p, serving_anchors):
    """Issue 5's vit figures: speedups over the peers timed in this run (and over the anchors)."""
    p["speedup_cudnn"] = speedup(p.get("ms"), p.get("cudnn_ms"))
    p["speedup_flash2"] = speedup(p.get("ms"), p.get("flash2_ms"))
    anchor = serving_anchors.get(VIT_ANCHOR_LAYERS.get(p.get("case"), ""))
    if anchor:
        p["cudnn_anchor_us"] = anchor.get("cudnn_us")
        p["flash2_anchor_us"] = anchor.get("flash2_us")
        p["speedup_cudnn_anchor"] = speedup(p.get("ms"), anchor["cudnn_us"] * 1e-3 if anchor.get("cudnn_us") else None)
    p["target_speedup_cudnn"] = VIT_TARGET_SPEEDUP
    p["target_met"] = p["speedup_cudnn"] >= VIT_TARGET_SPEEDUP if p["speedup_cudnn"] else None


def kv_bytes(p):
    """Bytes of K and V a dense point reads: 2 tensors of batch x seqlen_k x heads_k x head_dim."""
    element = 1 if p["dtype"] == "e4m3" else 2
    return 2.0 * p["batch"] * p["seqlen_k"] * p["heads_k"] * p["head_dim"] * element


def add_decode_figures(p, serving_anchors):
    """Issue 5's decode figures: K/V bandwidth of ours and the peers, and the anchors' cuDNN."""
    bytes_read = kv_bytes(p)
    for who, key in (("ours", "ms"), ("cudnn", "cudnn_ms"), ("flash2", "flash2_ms")):
        p[f"{who}_kv_tbps"] = bytes_read / (p[key] * 1e-3) / 1e12 if p.get(key) else None
    p["speedup_cudnn"] = speedup(p.get("ms"), p.get("cudnn_ms"))
    anchor = serving_anchors.get(("decode", p["batch"], p["seqlen_k"]))
    if anchor:
        p["cudnn_anchor_tbps"] = anchor.get("cudnn_TBps")
        p["flash2_anchor_tbps"] = anchor.get("flash2_TBps")
    targets = {"faster_than_cudnn": p["speedup_cudnn"] > 1.0 if p["speedup_cudnn"] else None}
    if bytes_read >= DECODE_TARGET_MIN_BYTES:
        targets["tbps_at_least_2.5"] = p["ours_kv_tbps"] >= DECODE_TARGET_TBPS if p["ours_kv_tbps"] else None
    if p["batch"] == 1 and p["seqlen_k"] == 16384 and p.get("case") == "decode":
        cudnn = p.get("cudnn_kv_tbps")
        targets["twice_cudnn_tbps"] = p["ours_kv_tbps"] >= DECODE_B1_16K_FACTOR * cudnn if cudnn and p["ours_kv_tbps"] else None
    p["decode_targets"] = targets


def print_decode(points):
    decode = [p for p in points if p["grid"] == DECODE_GRID]
    if not decode:
        return
    print(f"\ndecode: Qwen2.5-VL-3B heads (16/2, d 128), one query; TB/s = K and V bytes / time; issue 5: faster than "
          f"cuDNN in this run, >= {DECODE_TARGET_TBPS} TB/s where K/V >= 64 MB, b 1 x 16k >= 2x cuDNN's TB/s "
          "(cudnn*: the serving anchors, another GPU)")
    print(f"{'case':15} {'b':>3} {'cache':>7} {'split':5} {'ours_us':>8} {'cudnn_us':>8} {'fa2_us':>8} {'ours':>6} "
          f"{'cudnn':>6} {'fa2':>6} {'cudnn*':>6} {'x_cudnn':>7}  targets")
    for p in decode:
        us = {key: p[key] * 1e3 if p.get(key) else None for key in ("ms", "cudnn_ms", "flash2_ms")}
        targets = ", ".join(f"{name} {'met' if met else 'MISSED' if met is False else 'n/a'}"
                            for name, met in p.get("decode_targets", {}).items())
        print(f"{p.get('case', '-'):15} {p['batch']:>3} {p['seqlen_k']:>7} {'yes' if p.get('split') else 'no':5} "
              f"{fmt(us['ms'], '8.1f')} {fmt(us['cudnn_ms'], '8.1f')} {fmt(us['flash2_ms'], '8.1f')} "
              f"{fmt(p.get('ours_kv_tbps'), '6.3f')} {fmt(p.get('cudnn_kv_tbps'), '6.3f')} "
              f"{fmt(p.get('flash2_kv_tbps'), '6.3f')} {fmt(p.get('cudnn_anchor_tbps'), '6.3f')} "
              f"{fmt(p.get('speedup_cudnn'), '7.2f')}  {targets}")


def print_vit(points):
    vit = [p for p in points if p["grid"] == VIT_GRID]
    if not vit:
        return
    print(f"\nvit: Qwen2.5-VL-3B vision encoder; issue 5: ours >= {VIT_TARGET_SPEEDUP}x faster than cuDNN timed in this "
          "run (x = their time / ours; *anchor: the serving anchors file)")
    print(f"{'case':14} {'dtype':5} {'ours_us':>8} {'cudnn_us':>8} {'flash2_us':>9} {'cudnn*':>7} {'x_cudnn':>7} "
          f"{'x_flash2':>8} {'x_cudnn*':>8}  target  peers ran")
    for p in vit:
        us = {key: p[key] * 1e3 if p.get(key) else None for key in ("ms", "cudnn_ms", "flash2_ms")}
        met = {True: "met", False: "MISSED", None: "n/a"}[p.get("target_met")]
        print(f"{p.get('case', '-'):14} {p['dtype']:5} {fmt(us['ms'], '8.1f')} {fmt(us['cudnn_ms'], '8.1f')} "
              f"{fmt(us['flash2_ms'], '9.1f')} {fmt(p.get('cudnn_anchor_us'), '7.1f')} "
              f"{fmt(p.get('speedup_cudnn'), '7.2f')} {fmt(p.get('speedup_flash2'), '8.2f')} "
              f"{fmt(p.get('speedup_cudnn_anchor'), '8.2f')}  {met:6}  {p.get('peer_problem', '-')}")


def plot(points, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("compare_peers: matplotlib is not importable: no plot", file=sys.stderr)
        return False
    panels = {}
    for p in points:
        if p["grid"] not in PLOT_GRIDS:
            continue
        panels.setdefault((p["grid"], p["dtype"], p["head_dim"], p["causal"]), []).append(p)
    if not panels:
        print(f"compare_peers: no {'/'.join(PLOT_GRIDS)} points: no plot")
        return False
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    series = [("tflops", "ours"), ("cudnn_tflops", "cuDNN"), ("flash2_tflops", "FA2"), ("fa3_tflops", "FA3 (anchor)")]
    for ax, ((grid, dtype, head_dim, causal), pts) in zip(axes.flat, sorted(panels.items(), key=str)):
        pts = sorted(pts, key=lambda p: p["seqlen_q"])
        for key, label in series:
            xy = [(p["seqlen_q"], p[key]) for p in pts if p.get(key)]
            if xy:
                ax.plot(*zip(*xy), marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.set_title(f"{grid} {dtype} d{head_dim} {'causal' if causal else 'non-causal'}", fontsize=9)
        ax.set_xlabel("seqlen")
        ax.set_ylabel("TFLOP/s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True, help="flash_bench --json output")
    parser.add_argument("--out", required=True, help="merged JSON to write")
    parser.add_argument("--png", help="plot to write (default: --out with .png)")
    parser.add_argument("--anchors", help="shared/anchors/h100_attention_peers.json, for the FA3 line")
    parser.add_argument("--serving-anchors",
                        help=f"shared/anchors/{SERVING_ANCHORS_NAME}, for the vit points' anchor cuDNN/FA2 times "
                             f"(default: {SERVING_ANCHORS_NAME} beside --anchors, when there)")
    parser.add_argument("--iters", type=int, help="timed runs per peer (default: the bench's)")
    parser.add_argument("--warmup", type=int, help="untimed runs first (default: the bench's)")
    parser.add_argument("--error-max-seqlen", type=int, default=ERROR_MAX_SEQLEN,
                        help="measure peers' rel. L2 error vs fp32 SDPA math up to this seqlen (0: never)")
    args = parser.parse_args()

    with open(args.bench) as f:
        bench = json.load(f)
    anchors = load_anchors(args.anchors)
    serving_anchors_file = serving_anchors_path(args)
    serving_anchors = load_serving_anchors(serving_anchors_file)
    timer, info = make_timer(args.iters or bench.get("iters", 50), args.warmup or bench.get("warmup", 10))

    points = []
    measured = {}   # peer_key -> peer figures: points of the same dense problem share one measurement
    skipped = {}    # grid -> why its points get no peer timing
    for ours in bench["points"]:
        p = dict(ours)
        anchor = point_anchor(anchors, p)
        if anchor:
            p["fa3_tflops"] = anchor.get("fa3")
            p["fa3_rel_l2"] = anchor.get("fa3_rel_l2_err_vs_fp32")
        shape, note = peer_problem(p)
        if shape is None:
            p["peers_skipped"] = note
            skipped.setdefault(p["grid"], note)
        else:
            p["peer_problem"] = note
            if timer and p["dtype"] in TORCH_DTYPES:
                flops = attention_flops(p)
                key = peer_key(shape, flops)
                if key not in measured:
                    with_error = (shape["seqlen_q"] <= args.error_max_seqlen and
                                  shape["seqlen_k"] <= args.error_max_seqlen)
                    measured[key] = timer.measure(shape, flops, with_error)
                p.update(measured[key])
        for peer in PEERS + ("fa3",):
            p[f"ratio_{peer}"] = ratio(p.get("tflops"), p.get(f"{peer}_tflops"))
        best = max((p.get(f"{peer}_tflops") or 0 for peer in PEERS + ("fa3",)), default=0)
        p["ratio_best"] = ratio(p.get("tflops"), best)
        if p["grid"] == VIT_GRID:
            add_vit_figures(p, serving_anchors)
        if p["grid"] == DECODE_GRID:
            add_decode_figures(p, serving_anchors)
        points.append(p)

    merged = {key: value for key, value in bench.items() if key != "points"}
    merged.update(info)
    merged["anchors"] = args.anchors
    merged["serving_anchors"] = serving_anchors_file
    merged["peers_skipped"] = skipped
    merged["points"] = points
    with open(args.out, "w") as f:
        json.dump(merged, f, indent=1)
    print_table(points)
    for grid, why in skipped.items():
        print(f"compare_peers: {grid} points: peers not timed ({why})")
    print_vit(points)
    print_decode(points)
    png = args.png or (args.out.rsplit(".", 1)[0] + ".png")
    if plot(points, png):
        print(f"compare_peers: wrote {args.out} and {png}")
    else:
        print(f"compare_peers: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
