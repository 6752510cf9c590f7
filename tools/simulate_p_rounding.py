#!/usr/bin/env python3
"""The kernels' online softmax in numpy, to see what rounding P costs in accuracy.

    python3 tools/simulate_p_rounding.py --dtype fp8 --seqlen 1024 --head-dim 64 --block-n 128
    python3 tools/simulate_p_rounding.py --dtype bf16 --seqlen 2048 --head-dim 128 --block-n 128

Per key block, as the kernels do: the running max moves only where the block's max exceeds it
by more than the threshold (log2 units; 0: whenever it rises), O and the row sum are rescaled
where it moved, P = 2^(score - max + offset) is rounded to the dtype (round to nearest even) for
the P V product, the row sum adds the unrounded P. Inputs are standard normal, rounded to the
dtype; the reference is attention in float64 on the same rounded inputs. Prints the relative L2
error of O (before the output's own rounding) per threshold and the share of (16-row warp, key
block) pairs that rescale O, the work the lazy rescale saves.
"""
import argparse

import numpy as np

# (mantissa bits, smallest normal exponent, largest finite, max offset, thresholds to compare)
DTYPES = {
    "fp8": (3, -6, 448.0, 7, (0.0, 1.0)),
    "bf16": (7, -126, 3.4e38, 0, (0.0, 1.0, 8.0)),
    "fp16": (10, -14, 65504.0, 0, (0.0, 1.0, 8.0)),
}


def rounder(mantissa_bits, min_exponent, largest):
    def round_to(x):
        x = np.asarray(x, dtype=np.float64)
        magnitude = np.abs(x)
        exponent = np.maximum(np.floor(np.log2(np.maximum(magnitude, 1e-300))), min_exponent)
        step = 2.0 ** (exponent - mantissa_bits)
        return np.sign(x) * np.minimum(np.round(magnitude / step) * step, largest)
    return round_to


def simulate(rng, round_to, seqlen, head_dim, rows, block_n, offset, threshold):
    q = round_to(rng.standard_normal((rows, head_dim)))
    k = round_to(rng.standard_normal((seqlen, head_dim)))
    v = round_to(rng.standard_normal((seqlen, head_dim)))
    scores = (q @ k.T) / np.sqrt(head_dim) * np.log2(np.e)
    weights = np.exp2(scores - scores.max(axis=1, keepdims=True))
    reference = (weights @ v) / weights.sum(axis=1, keepdims=True)

    row_max = np.full(rows, -np.inf)
    o = np.zeros((rows, head_dim))
    row_sum = np.zeros(rows)
    rescales = blocks = 0
    for begin in range(0, seqlen, block_n):
        block = scores[:, begin:begin + block_n]
        block_max = block.max(axis=1)
        move = block_max > row_max + threshold
        new_max = np.where(move, block_max, row_max)
        rescales += np.any(move.reshape(-1, 16), axis=1).sum()
        blocks += rows // 16
        factor = np.exp2(np.where(np.isinf(row_max), 0.0, row_max - new_max))
        o *= factor[:, None]
        row_sum *= factor
        p = np.exp2(block - new_max[:, None] + offset)
        o += round_to(p) @ v[begin:begin + block_n]
        row_sum += p.sum(axis=1)
        row_max = new_max
    out = o / row_sum[:, None]
    return np.linalg.norm(out - reference) / np.linalg.norm(reference), rescales / blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp8")
    parser.add_argument("--seqlen", type=int, default=1024)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--block-n", type=int, default=128)
    parser.add_argument("--rows", type=int, default=256, help="query rows (a multiple of 16)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mantissa_bits, min_exponent, largest, offset, thresholds = DTYPES[args.dtype]
    round_to = rounder(mantissa_bits, min_exponent, largest)
    for threshold in thresholds:
        rng = np.random.default_rng(0)   # the same inputs for every threshold
        runs = [simulate(rng, round_to, args.seqlen, args.head_dim, args.rows, args.block_n, offset, threshold)
                for _ in range(args.repeats)]
        error = np.mean([r[0] for r in runs])
        rescaled = np.mean([r[1] for r in runs])
        print(f"{args.dtype} seqlen {args.seqlen} d {args.head_dim} block_n {args.block_n} offset {offset} "
              f"threshold {threshold:g}: rel L2 {error:.4e}, warp-blocks rescaling O {rescaled:.3f}")


if __name__ == "__main__":
    main()
