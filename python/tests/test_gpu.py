"""GPU tests of flash_sm90 against a NumPy float64 reference.

Run only when CuPy is importable and a CUDA device of compute capability 9.0 (Hopper) is present;
otherwise every test is skipped with the reason. Tolerances are the C++ tests': relative L2 error
<= 2e-3 (fp16), 1e-2 (bf16).

bf16: CuPy has no bfloat16 dtype, so bf16 tensors are CuPy uint16 arrays holding bf16 bits (made
from float32 by rounding to nearest even on the host) and forward() gets dtype='bf16'.

test_cli_npy_roundtrip_bitwise also runs flash_attention_exec (path in the environment variable
FLASH_EXEC; skipped with the reason when it is unset) on .npy files and asserts that its saved output
and LSE equal forward()'s bit for bit.
"""
import math
import os
import subprocess

import numpy as np
import pytest

import flash_sm90

cp = pytest.importorskip("cupy", reason="CuPy is not installed: GPU tests need CuPy and an SM90 device")


def _sm90_available():
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            return False, "no CUDA device"
        props = cp.cuda.runtime.getDeviceProperties(0)
        cc = (props["major"], props["minor"])
        if cc != (9, 0):
            return False, f"device 0 has compute capability {cc[0]}.{cc[1]}, not 9.0 (SM90)"
        return True, ""
    except Exception as e:  # no driver, no device
        return False, f"no usable CUDA device ({e})"


_ok, _why = _sm90_available()
pytestmark = pytest.mark.skipif(not _ok, reason=f"GPU tests need an SM90 device: {_why}")

TOL = {"fp16": 2e-3, "bf16": 1e-2}


# --- host conversions ------------------------------------------------------------------------
def f32_to_bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def bf16_bits_to_f64(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)


def make(shape, dtype, rng):
    """(device array, host float64 values that the device array holds exactly)."""
    x = rng.standard_normal(shape).astype(np.float32)
    if dtype == "fp16":
        h = x.astype(np.float16)
        return cp.asarray(h), h.astype(np.float64)
    bits = f32_to_bf16_bits(x)
    return cp.asarray(bits), bf16_bits_to_f64(bits)


def to_f64(dev, dtype):
    h = cp.asnumpy(dev)
    return h.astype(np.float64) if dtype == "fp16" else bf16_bits_to_f64(h)


def empty_out(shape, dtype):
    return cp.full(shape, np.nan, dtype=np.float16) if dtype == "fp16" else cp.full(shape, 0x7FC0, dtype=np.uint16)


# --- reference --------------------------------------------------------------------------------
def softmax_attend(s, vv):
    """Softmax over the last axis of masked scores s [b, h, q, k] (-inf: not seen), then P V.
    Returns out [b, q, h, d] and lse [b, h, q]; a row that sees no key gets 0 and -inf."""
    m = s.max(axis=-1, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m_safe)
    l = p.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        o = np.einsum("bhqk,bkhd->bqhd", np.where(l > 0, p / l, 0.0), vv)
        lse = np.where(l[..., 0] > 0, np.log(l[..., 0]) + m_safe[..., 0], -np.inf)
    return o, lse


def reference(q, k, v, causal, scale):
    """float64 attention; q [b, sq, h, d], k/v [b, sk, hk, d]. Returns out [b, sq, h, d], lse [b, h, sq]."""
    return reference_local(q, k, v, scale, (-1, 0 if causal else -1), 0.0)


def reference_local(q, k, v, scale, window, softcap):
    """float64 attention with a (left, right) window (-1: unbounded; causal is (-1, 0)) and a softcap."""
    sq, sk = q.shape[1], k.shape[1]
    rep = q.shape[2] // k.shape[2]
    kk, vv = np.repeat(k, rep, axis=2), np.repeat(v, rep, axis=2)
    s = np.einsum("bqhd,bkhd->bhqk", q, kk) * scale
    if softcap > 0:
        s = softcap * np.tanh(s / softcap)
    i = np.arange(sq)[:, None] + sk - sq
    j = np.arange(sk)[None, :]
    left, right = window
    visible = np.ones((sq, sk), dtype=bool)
    if left >= 0:
        visible &= j >= i - left
    if right >= 0:
        visible &= j <= i + right
    return softmax_attend(np.where(visible, s, -np.inf), vv)


def rel_l2(x, ref):
    return float(np.linalg.norm((x - ref).ravel()) / max(np.linalg.norm(ref.ravel()), 1e-30))


def run_case(dtype, b, sq, sk, h, hk, d, causal, with_lse=False, seed=0):
    rng = np.random.default_rng(seed)
    q, qh = make((b, sq, h, d), dtype, rng)
    k, kh = make((b, sk, hk, d), dtype, rng)
    v, vh = make((b, sk, hk, d), dtype, rng)
    out = empty_out((b, sq, h, d), dtype)
    lse = cp.full((b, h, sq), np.nan, dtype=cp.float32) if with_lse else None
    stream = cp.cuda.get_current_stream()
    flash_sm90.forward(q, k, v, out, causal=causal, lse=lse, stream=stream.ptr,
                       dtype=None if dtype == "fp16" else "bf16")
    stream.synchronize()
    o_ref, lse_ref = reference(qh, kh, vh, causal, 1.0 / math.sqrt(d))
    o = to_f64(out, dtype)
    assert not np.isnan(o).any()
    err = rel_l2(o, o_ref)
    assert err <= TOL[dtype], f"rel L2 {err} > {TOL[dtype]}"
    if with_lse:
        l = cp.asnumpy(lse).astype(np.float64)
        finite = np.isfinite(lse_ref)
        assert np.array_equal(np.isfinite(l), finite)
        assert np.allclose(l[finite], lse_ref[finite], rtol=1e-4, atol=1e-3)


# --- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("d", [64, 128, 256])
def test_mha(dtype, d):
    run_case(dtype, b=2, sq=200, sk=200, h=4, hk=4, d=d, causal=False)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("sq,sk", [(256, 256), (100, 300), (300, 100)])
def test_causal(dtype, sq, sk):
    run_case(dtype, b=1, sq=sq, sk=sk, h=4, hk=4, d=128, causal=True, with_lse=True)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_gqa(dtype):
    run_case(dtype, b=2, sq=333, sk=333, h=16, hk=2, d=128, causal=True)


def test_padded_head_dim():
    run_case("fp16", b=1, sq=128, sk=128, h=2, hk=2, d=80, causal=False)


def test_lse():
    run_case("fp16", b=2, sq=130, sk=257, h=3, hk=1, d=64, causal=False, with_lse=True)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_packed_qkv_view(dtype):
    # One [b, s, 3, h, d] buffer; q, k, v are strided views (row stride 3*h*d), no copies.
    b, s, h, d = 2, 190, 4, 64
    rng = np.random.default_rng(7)
    qkv, qkvh = make((b, s, 3, h, d), dtype, rng)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    assert not q.flags.c_contiguous
    out = empty_out((b, s, h, d), dtype)
    flash_sm90.forward(q, k, v, out, causal=True, stream=cp.cuda.get_current_stream().ptr,
                       dtype=None if dtype == "fp16" else "bf16")
    cp.cuda.get_current_stream().synchronize()
    o_ref, _ = reference(qkvh[:, :, 0], qkvh[:, :, 1], qkvh[:, :, 2], True, 1.0 / math.sqrt(d))
    assert rel_l2(to_f64(out, dtype), o_ref) <= TOL[dtype]


def test_non_default_stream_and_scale():
    rng = np.random.default_rng(3)
    q, qh = make((1, 128, 2, 128), "fp16", rng)
    k, kh = make((1, 128, 2, 128), "fp16", rng)
    v, vh = make((1, 128, 2, 128), "fp16", rng)
    out = empty_out(q.shape, "fp16")
    with cp.cuda.Stream(non_blocking=True) as s:
        flash_sm90.forward(q, k, v, out, softmax_scale=0.05, stream=s.ptr)
        s.synchronize()
    o_ref, _ = reference(qh, kh, vh, False, 0.05)
    assert rel_l2(to_f64(out, "fp16"), o_ref) <= TOL["fp16"]


def test_validation_error_from_library():
    # head dim 72 is a multiple of 8 (runs padded); 36 is not: the library rejects it.
    q = cp.zeros((1, 64, 2, 36), dtype=cp.float16)
    out = cp.full(q.shape, 7, dtype=cp.float16)
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, q, q, out)
    e = info.value
    assert e.status == flash_sm90.ERROR_UNSUPPORTED_HEAD_DIM
    assert str(e).startswith(flash_sm90.status_string(e.status) + ": ")
    assert "36" in str(e)
    assert bool((out == 7).all())   # a rejected call writes nothing


def test_aliasing_error_from_library():
    q = cp.zeros((1, 64, 2, 64), dtype=cp.float16)
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, q, q, q)
    assert info.value.status == flash_sm90.ERROR_ALIASING


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("causal,window,softcap", [(True, (-1, -1), 0.0), (False, (48, 16), 0.0),
                                                   (True, (100, -1), 20.0)])
def test_varlen_window_softcap(dtype, causal, window, softcap):
    """Packed sequences (an empty one, one token, several tiles) through forward(), each checked
    against the NumPy reference of that sequence alone; the output rows of no sequence stay NaN."""
    lens_q, lens_k = [0, 1, 130, 77, 300], [5, 1, 260, 77, 129]
    h, hk, d = 4, 2, 64
    spare = 3   # unowned rows after the last sequence
    cu_q, cu_k = np.concatenate([[0], np.cumsum(lens_q)]), np.concatenate([[0], np.cumsum(lens_k)])
    total_q, total_k = int(cu_q[-1]) + spare, int(cu_k[-1])
    rng = np.random.default_rng(7)
    q, qh = make((total_q, h, d), dtype, rng)
    k, kh = make((total_k, hk, d), dtype, rng)
    v, vh = make((total_k, hk, d), dtype, rng)
    out = empty_out((total_q, h, d), dtype)
    lse = cp.full((h, total_q), np.nan, dtype=cp.float32)
    flash_sm90.forward(q, k, v, out, causal=causal, lse=lse, dtype=None if dtype == "fp16" else "bf16",
                       cu_seqlens_q=cp.asarray(cu_q, dtype=cp.int32), cu_seqlens_k=cp.asarray(cu_k, dtype=cp.int32),
                       max_seqlen_q=max(lens_q), max_seqlen_k=max(lens_k), window_size=window, softcap=softcap)
    cp.cuda.get_current_stream().synchronize()
    o, l = to_f64(out, dtype), cp.asnumpy(lse).astype(np.float64)
    right = 0 if causal else window[1]
    for b in range(len(lens_q)):
        rq, rk = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
        if lens_q[b] == 0:
            continue
        o_ref, lse_ref = reference_local(qh[None, rq], kh[None, rk], vh[None, rk], 1.0 / math.sqrt(d),
                                         (window[0], right), softcap)
        err = rel_l2(o[rq], o_ref[0])
        assert err <= TOL[dtype], f"sequence {b}: rel L2 {err} > {TOL[dtype]}"
        finite = np.isfinite(lse_ref[0])
        assert np.array_equal(np.isfinite(l[:, rq]), finite), f"sequence {b}: LSE -inf rows differ"
        assert np.allclose(l[:, rq][finite], lse_ref[0][finite], rtol=1e-4, atol=1e-3), f"sequence {b}: LSE"
    assert np.isnan(o[int(cu_q[-1]):]).all() and np.isnan(l[:, int(cu_q[-1]):]).all(), "unowned rows were written"


def test_binding_checks():
    q = cp.zeros((1, 64, 2, 64), dtype=cp.float16)
    out = cp.zeros_like(q)
    with pytest.raises(TypeError, match="k: expected float16 or bfloat16, got float32"):
        flash_sm90.forward(q, cp.zeros((1, 64, 2, 64), dtype=cp.float32), q, out)
    with pytest.raises(ValueError, match="last dimension"):
        flash_sm90.forward(q, q, q, cp.zeros((1, 64, 2, 128), dtype=cp.float16)[..., ::2])
    with pytest.raises(ValueError, match="v: shape"):
        flash_sm90.forward(q, q, q[:, :32], out)
    with pytest.raises(ValueError, match="lse"):
        flash_sm90.forward(q, q, q, out, lse=cp.zeros((1, 64, 2), dtype=cp.float32))


# --- the CLI's .npy path against forward(), bit for bit ------------------------------------------
# q, k, v are written with NumPy as the CLI documents (fp16 '<f2', bf16 '<u2' raw bits), run through
# flash_attention_exec --load-q/k/v --save-out --save-lse (its own reference check on), and what it
# saves must equal forward() on the same inputs bit for bit. FLASH_EXEC names the binary
# (tools/device_run.sh's python stage sets it to build-dev/apps/flash_attention_exec).
def _flash_exec():
    exe = os.environ.get("FLASH_EXEC", "")
    if not exe:
        pytest.skip("FLASH_EXEC is not set: point it at build*/apps/flash_attention_exec to compare the CLI "
                    "with forward() bit for bit")
    assert os.path.isfile(exe) and os.access(exe, os.X_OK), f"FLASH_EXEC={exe!r} is not an executable file"
    return exe


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize(
    "b,sq,sk,h,hk,d,causal",
    [
        (2, 173, 301, 8, 2, 128, True),    # GQA, causal, odd lengths, seqlen_q < seqlen_k
        (1, 301, 173, 4, 1, 64, True),     # MQA, causal, seqlen_q > seqlen_k: rows that see no key
        (1, 200, 200, 4, 4, 256, False),   # MHA, no mask
    ],
)
def test_cli_npy_roundtrip_bitwise(tmp_path, dtype, b, sq, sk, h, hk, d, causal):
    exe = _flash_exec()
    rng = np.random.default_rng(11)
    host = {}
    for name, shape in (("q", (b, sq, h, d)), ("k", (b, sk, hk, d)), ("v", (b, sk, hk, d))):
        x = rng.standard_normal(shape).astype(np.float32)
        host[name] = x.astype(np.float16) if dtype == "fp16" else f32_to_bf16_bits(x)
        np.save(tmp_path / f"{name}.npy", host[name])
    assert np.load(tmp_path / "q.npy").dtype.str == ("<f2" if dtype == "fp16" else "<u2")

    # The files set the shape; the shape flags given as well must agree with them.
    cmd = [exe, "--dtype", dtype, "--causal" if causal else "--no-causal",
           "--batch", str(b), "--seqlen-q", str(sq), "--seqlen-k", str(sk),
           "--heads", str(h), "--heads-k", str(hk), "--head-dim", str(d),
           "--load-q", str(tmp_path / "q.npy"), "--load-k", str(tmp_path / "k.npy"),
           "--load-v", str(tmp_path / "v.npy"),
           "--save-out", str(tmp_path / "out.npy"), "--save-lse", str(tmp_path / "lse.npy"),
           "--iters", "1", "--warmup", "0",
           # forward() passes no workspace, so it never splits the keys; the CLI must not either.
           "--num-splits", "1"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{' '.join(cmd)}\nexit {run.returncode}\n{run.stdout}\n{run.stderr}"
    assert "note:" not in run.stderr, run.stderr   # the dtype's own bits: taken as-is, not rounded
    out_cli = np.load(tmp_path / "out.npy")
    lse_cli = np.load(tmp_path / "lse.npy")
    assert out_cli.dtype.str == ("<f2" if dtype == "fp16" else "<u2") and out_cli.shape == (b, sq, h, d)
    assert lse_cli.dtype.str == "<f4" and lse_cli.shape == (b, h, sq)

    q, k, v = (cp.asarray(host[n]) for n in ("q", "k", "v"))
    out = empty_out((b, sq, h, d), dtype)
    lse = cp.full((b, h, sq), np.nan, dtype=cp.float32)
    stream = cp.cuda.get_current_stream()
    flash_sm90.forward(q, k, v, out, causal=causal, lse=lse, stream=stream.ptr,
                       dtype=None if dtype == "fp16" else "bf16")
    stream.synchronize()
    out_lib = cp.asnumpy(out)
    lse_lib = cp.asnumpy(lse)

    out_bits, out_cli_bits = out_lib.view(np.uint16), out_cli.view(np.uint16)
    lse_bits, lse_cli_bits = lse_lib.view(np.uint32), lse_cli.view(np.uint32)
    assert np.array_equal(out_cli_bits, out_bits), \
        f"out: {int((out_cli_bits != out_bits).sum())} of {out_bits.size} elements differ"
    assert np.array_equal(lse_cli_bits, lse_bits), \
        f"lse: {int((lse_cli_bits != lse_bits).sum())} of {lse_bits.size} values differ"
    if causal and sq > sk:
        assert np.isneginf(lse_lib[:, :, : sq - sk]).all()   # rows that see no key


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("page_size,num_splits", [(None, 0), (None, 5), (64, 0), (16, 3), (256, 1)])
def test_decode_paged_split(dtype, page_size, num_splits):
    """Decode steps (1 query, 16/2 heads, d 128) against caches of different lengths (seqused_k),
    contiguous or paged with the pages shuffled, split automatically or forced, with the workspace
    workspace_size() asks for; every entry against the NumPy reference of its own cache."""
    b, h, hk, d = 3, 16, 2, 128
    lens = [1000, 1, 2048]
    max_len = 2048
    rng = np.random.default_rng(11)
    q, qh = make((b, 1, h, d), dtype, rng)
    k_dense, kh = make((b, max_len, hk, d), dtype, rng)
    v_dense, vh = make((b, max_len, hk, d), dtype, rng)
    out = empty_out((b, 1, h, d), dtype)
    lse = cp.full((b, h, 1), np.nan, dtype=cp.float32)
    seqused = cp.asarray(np.array(lens, dtype=np.int32))
    kw = dict(dtype=None if dtype == "fp16" else "bf16", seqused_k=seqused, num_splits=num_splits, lse=lse)
    if page_size is None:
        k, v = k_dense, v_dense
    else:
        per_entry = max_len // page_size
        order = rng.permutation(b * per_entry)   # page i of entry e is stored at order[e * per_entry + i]
        pages_k = cp.zeros((b * per_entry, page_size, hk, d), dtype=k_dense.dtype)
        pages_v = cp.zeros_like(pages_k)
        for e in range(b):
            for i in range(per_entry):
                dst = int(order[e * per_entry + i])
                pages_k[dst] = k_dense[e, i * page_size:(i + 1) * page_size]
                pages_v[dst] = v_dense[e, i * page_size:(i + 1) * page_size]
        k, v = pages_k, pages_v
        kw["page_table"] = cp.asarray(order.reshape(b, per_entry).astype(np.int32))
    nbytes = flash_sm90.workspace_size(q, k, v, out, **kw)
    if num_splits > 1:
        assert nbytes > 0
        with pytest.raises(flash_sm90.FlashAttentionError) as info:
            flash_sm90.forward(q, k, v, out, **kw)   # no workspace
        assert info.value.status == flash_sm90.ERROR_INVALID_WORKSPACE
        assert bool(cp.isnan(lse).all()), "a rejected call wrote"
    elif num_splits == 1:
        assert nbytes == 0
    workspace = cp.empty((max(nbytes, 1),), dtype=cp.uint8)
    flash_sm90.forward(q, k, v, out, workspace=workspace, **kw)
    cp.cuda.get_current_stream().synchronize()
    o, l = to_f64(out, dtype), cp.asnumpy(lse).astype(np.float64)
    for e, n in enumerate(lens):
        o_ref, lse_ref = reference(qh[e:e + 1], kh[e:e + 1, :n], vh[e:e + 1, :n], False, 1.0 / math.sqrt(d))
        err = rel_l2(o[e:e + 1], o_ref)
        assert err <= TOL[dtype], f"entry {e} ({n} keys): rel L2 {err} > {TOL[dtype]}"
        assert np.allclose(l[e], lse_ref[0], rtol=1e-4, atol=1e-3), f"entry {e}: LSE"
