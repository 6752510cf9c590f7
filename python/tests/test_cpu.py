"""CPU tests of the flash_sm90 package: run anywhere, no GPU needed."""
import numpy as np
import pytest

import flash_sm90


def test_import_and_version():
    assert isinstance(flash_sm90.__version__, str) and flash_sm90.__version__.count(".") == 2
    assert callable(flash_sm90.forward)


def test_status_codes():
    codes = flash_sm90.STATUS_CODES
    assert codes["SUCCESS"] == 0 == flash_sm90.SUCCESS
    # The values of flash::Status (include/flash_api.h), 0..23, each with its own text.
    assert sorted(codes.values()) == list(range(24))
    assert flash_sm90.ERROR_UNSUPPORTED_HEAD_DIM == 5
    assert flash_sm90.ERROR_UNSUPPORTED_DEVICE == 12
    assert flash_sm90.ERROR_INVALID_WINDOW == 17
    assert flash_sm90.ERROR_INVALID_SOFTCAP == 18
    assert flash_sm90.ERROR_INVALID_VARLEN == 19
    assert flash_sm90.ERROR_INVALID_SPLITS == 20
    assert flash_sm90.ERROR_INVALID_WORKSPACE == 21
    assert flash_sm90.ERROR_INVALID_PAGING == 22
    assert flash_sm90.ERROR_INVALID_DESCALE == 23
    texts = [flash_sm90.status_string(c) for c in codes.values()]
    assert all(isinstance(t, str) and t for t in texts)
    assert len(set(texts)) == len(texts)
    assert flash_sm90.status_string(12345) == "unknown status"


def test_supported_head_dims():
    # The kernel list is tools/generate_kernels.py's: ascending multiples of 8 up to 256, at least
    # 64, 128 and 256, the same for fp16 and bf16.
    dims = flash_sm90.supported_head_dims("fp16")
    assert dims == sorted(set(dims)) and {64, 128, 256} <= set(dims)
    assert all(d % 8 == 0 and 0 < d <= 256 for d in dims)
    assert flash_sm90.supported_head_dims("bf16") == dims
    assert flash_sm90.supported_head_dims("bfloat16") == flash_sm90.supported_head_dims("bf16")
    # FP8 has its own, shorter list (64, 128, 256; narrower multiples of 16 run padded), every one
    # also a 16-bit width.
    fp8 = flash_sm90.supported_head_dims("fp8_e4m3")
    assert fp8 == sorted(set(fp8)) and {64, 128, 256} <= set(fp8) <= set(dims)
    with pytest.raises(ValueError, match="unknown dtype name"):
        flash_sm90.supported_head_dims("int8")


def test_error_class():
    assert issubclass(flash_sm90.FlashAttentionError, RuntimeError)
    assert flash_sm90.FlashAttentionError.__name__ == "FlashAttentionError"


def _cpu(shape, dtype=np.float16):
    return np.zeros(shape, dtype=dtype)


def test_cpu_arrays_rejected_naming_the_argument():
    a = _cpu((1, 128, 2, 64))
    with pytest.raises(ValueError, match="cuda|CUDA") as info:
        flash_sm90.forward(a, a, a, a)
    msg = str(info.value)
    assert msg.startswith("q:") and "cpu" in msg


def test_non_array_rejected():
    with pytest.raises(TypeError):
        flash_sm90.forward([1, 2], [3], [4], [5])


def test_bad_stream_type_is_checked_after_device():
    a = _cpu((1, 16, 1, 64))
    with pytest.raises(ValueError, match="q: expected a CUDA device array"):
        flash_sm90.forward(a, a, a, a, stream="default")


def test_keyword_only_options():
    a = _cpu((1, 16, 1, 64))
    with pytest.raises(TypeError):
        flash_sm90.forward(a, a, a, a, True)  # causal is keyword-only


# --- the binding's and the library's checks, with fake CUDA arrays ----------------------------
# FakeCudaArray exports a DLPack capsule that claims device cuda:0 with a made-up address. Nothing
# dereferences it: every call below is rejected by the binding or by the library's checks, which
# run before any GPU work (the last of them is the device check: no CUDA device on CPU machines).
import ctypes  # noqa: E402


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


_DTYPES = {"float16": (2, 16), "bfloat16": (4, 16), "float32": (2, 32), "uint16": (1, 16), "int32": (0, 32),
           "int64": (0, 64)}
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "uint16": 2, "int32": 4, "int64": 8}


class FakeCudaArray:
    """A DLPack producer on 'cuda:0' at a fake address; strides in elements (None: C order)."""

    _next = 0x7F0000000000

    def __init__(self, shape, dtype="float16", strides=None, address=None, device_type=2):
        if strides is None:
            strides, acc = [], 1
            for n in reversed(shape):
                strides.insert(0, acc)
                acc *= n
        if address is None:
            address = FakeCudaArray._next
            FakeCudaArray._next += 1 << 32   # far apart: no accidental aliasing
        self.shape, self.strides, self.address, self.dtype = tuple(shape), tuple(strides), address, dtype
        self._device_type = device_type
        self._exports = []

    def view(self, shape, strides, offset_elems=0):
        return FakeCudaArray(shape, self.dtype, strides, self.address + offset_elems * _ITEMSIZE[self.dtype])

    def __dlpack_device__(self):
        return (self._device_type, 0)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        n = len(self.shape)
        keep = {"shape": (ctypes.c_int64 * n)(*self.shape), "strides": (ctypes.c_int64 * n)(*self.strides)}
        code, bits = _DTYPES[self.dtype]
        m = _DLManagedTensor()
        m.dl_tensor = _DLTensor(self.address, _DLDevice(self._device_type, 0), n, _DLDataType(code, bits, 1),
                                keep["shape"], keep["strides"], 0)
        keep["managed"] = m
        self._exports.append(keep)   # lives as long as this object (exported once per argument)
        return _capsule_new(ctypes.addressof(m), b"dltensor", None)


def _cuda_visible():
    """True when a CUDA driver with a device is present: then fake addresses must not reach a launch."""
    import ctypes.util

    name = ctypes.util.find_library("cuda")
    if not name:
        return False
    try:
        lib = ctypes.CDLL(name)
        count = ctypes.c_int(0)
        return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except OSError:
        return False


no_gpu_only = pytest.mark.skipif(_cuda_visible(), reason="passes validation: with a GPU it would launch on fake addresses")


def qkvo(b=1, sq=128, sk=128, h=2, hk=2, d=64, dtype="float16"):
    return (FakeCudaArray((b, sq, h, d), dtype), FakeCudaArray((b, sk, hk, d), dtype),
            FakeCudaArray((b, sk, hk, d), dtype), FakeCudaArray((b, sq, h, d), dtype))


def test_library_error_becomes_flash_attention_error():
    q, k, v, out = qkvo(d=36)   # not a multiple of 8: no kernel, not even padded
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, out)
    e = info.value
    assert isinstance(e, RuntimeError)
    assert e.status == flash_sm90.ERROR_UNSUPPORTED_HEAD_DIM
    prefix = flash_sm90.status_string(e.status) + ": "
    assert str(e).startswith(prefix) and "36" in str(e)[len(prefix):]


def test_library_checks_head_ratio_scale_alignment_aliasing():
    q, k, v, out = qkvo(h=3, hk=2)
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, out)
    assert info.value.status == flash_sm90.ERROR_HEAD_RATIO
    q, k, v, out = qkvo()
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, out, softmax_scale=-1.0)
    assert info.value.status == flash_sm90.ERROR_INVALID_SCALE
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, q)
    assert info.value.status == flash_sm90.ERROR_ALIASING
    shifted = FakeCudaArray(q.shape, address=q.address + 2 * 3)   # 6 bytes: not 16-byte aligned
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(shifted, k, v, out)
    assert info.value.status == flash_sm90.ERROR_MISALIGNED_POINTER


def test_packed_qkv_strides_reach_the_library():
    # [b, s, 3, h, d] buffer: q, k, v views with row stride 3*h*d. A misaligning head stride of the
    # packed layout would fail; here the only failure left is the device (or, with a GPU, skip).
    b, s, h, d = 2, 100, 4, 64
    base = FakeCudaArray((b, s, 3, h, d))
    strides = (s * 3 * h * d, 3 * h * d, d, 1)
    q, k, v = (base.view((b, s, h, d), strides, i * h * d) for i in range(3))
    out = FakeCudaArray((b, s, h, d))
    # Overlapping out with the packed buffer is caught, which needs the true strides.
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, base.view((b, s, h, d), strides, 0))
    assert info.value.status == flash_sm90.ERROR_ALIASING
    if _cuda_visible():
        pytest.skip("the valid call would launch on fake addresses")
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, out, causal=True)
    assert info.value.status in (flash_sm90.ERROR_NO_DEVICE, flash_sm90.ERROR_UNSUPPORTED_DEVICE)


@no_gpu_only
def test_valid_call_reaches_device_check():
    q, k, v, out = qkvo(b=2, sq=77, sk=130, h=8, hk=2, d=80, dtype="bfloat16")
    lse = FakeCudaArray((2, 8, 77), "float32")
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, out, lse=lse, stream=0)
    assert info.value.status in (flash_sm90.ERROR_NO_DEVICE, flash_sm90.ERROR_UNSUPPORTED_DEVICE)
    assert str(info.value).startswith(flash_sm90.status_string(info.value.status) + ": ")


@no_gpu_only
def test_uint16_storage_with_dtype_override():
    q, k, v, out = qkvo(dtype="uint16")
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(q, k, v, out, dtype="bf16")
    assert info.value.status in (flash_sm90.ERROR_NO_DEVICE, flash_sm90.ERROR_UNSUPPORTED_DEVICE)


def test_binding_checks_name_the_argument():
    q, k, v, out = qkvo()
    with pytest.raises(TypeError, match=r"^k: dtype bf16 differs from q's fp16"):
        flash_sm90.forward(q, FakeCudaArray(k.shape, "bfloat16"), v, out)
    with pytest.raises(TypeError, match=r"^out: expected float16 or bfloat16, got float32"):
        flash_sm90.forward(q, k, v, FakeCudaArray(out.shape, "float32"))
    with pytest.raises(TypeError, match=r"^q: expected float16 or bfloat16, got uint16 \(for bf16"):
        flash_sm90.forward(FakeCudaArray(q.shape, "uint16"), k, v, out)
    with pytest.raises(ValueError, match=r"^v: expected 4 dimensions"):
        flash_sm90.forward(q, k, FakeCudaArray((1, 128, 128)), out)
    with pytest.raises(ValueError, match=r"^out: the last dimension must be contiguous"):
        flash_sm90.forward(q, k, v, FakeCudaArray(out.shape, strides=(256 * 2 * 64, 2 * 64 * 2, 64 * 2, 2)))
    with pytest.raises(ValueError, match=r"^k: dimension 2 has stride 0"):
        flash_sm90.forward(q, FakeCudaArray(k.shape, strides=(128 * 64, 64, 0, 1)), v, out)
    with pytest.raises(ValueError, match=r"^v: shape \(1, 64, 2, 64\) differs from k's"):
        flash_sm90.forward(q, k, FakeCudaArray((1, 64, 2, 64)), out)
    with pytest.raises(ValueError, match=r"^out: shape"):
        flash_sm90.forward(q, k, v, FakeCudaArray((1, 128, 2, 128)))
    with pytest.raises(ValueError, match=r"^k: head_dim 128 differs"):
        flash_sm90.forward(q, FakeCudaArray((1, 128, 2, 128)), FakeCudaArray((1, 128, 2, 128)), out)
    with pytest.raises(ValueError, match=r"^lse: expected shape"):
        flash_sm90.forward(q, k, v, out, lse=FakeCudaArray((1, 128, 2), "float32"))
    with pytest.raises(TypeError, match=r"^lse: expected float32"):
        flash_sm90.forward(q, k, v, out, lse=FakeCudaArray((1, 2, 128), "float16"))
    with pytest.raises(ValueError, match=r"^lse: must be contiguous"):
        flash_sm90.forward(q, k, v, out, lse=FakeCudaArray((1, 2, 128), "float32", strides=(512, 256, 1)))
    with pytest.raises(TypeError, match=r"^stream: expected an int"):
        flash_sm90.forward(q, k, v, out, stream="default")
    with pytest.raises(ValueError, match=r"^stream: expected a non-negative int"):
        flash_sm90.forward(q, k, v, out, stream=-1)
    with pytest.raises(TypeError, match=r"^k: dtype='fp16' needs float16"):
        flash_sm90.forward(q, FakeCudaArray(k.shape, "bfloat16"), v, out, dtype="fp16")


# --- variable-length batches, window, softcap ----------------------------------------------------
def varlen_args(batch=2, total_q=300, total_k=500, h=8, hk=4, d=128, dtype="float16"):
    """Packed q/out [total_q, h, d], k/v [total_k, hk, d], cu_seqlens [batch + 1] int32 (fake CUDA)."""
    q, out = FakeCudaArray((total_q, h, d), dtype), FakeCudaArray((total_q, h, d), dtype)
    k, v = FakeCudaArray((total_k, hk, d), dtype), FakeCudaArray((total_k, hk, d), dtype)
    cu_q, cu_k = FakeCudaArray((batch + 1,), "int32"), FakeCudaArray((batch + 1,), "int32")
    return (q, k, v, out), dict(cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, max_seqlen_q=200, max_seqlen_k=400)


def test_new_options_are_keyword_only():
    (q, k, v, out), kw = varlen_args()
    with pytest.raises(TypeError):
        flash_sm90.forward(q, k, v, out, False, 0.0, None, None, None, kw["cu_seqlens_q"])


def test_varlen_needs_both_cu_seqlens():
    (q, k, v, out), kw = varlen_args()
    with pytest.raises(ValueError, match=r"^cu_seqlens_k: required with cu_seqlens_q \(variable-length batches need both\)"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_k": None})
    with pytest.raises(ValueError, match=r"^cu_seqlens_q: required with cu_seqlens_k"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_q": None})


def test_varlen_needs_max_seqlen_ints():
    (q, k, v, out), kw = varlen_args()
    with pytest.raises(ValueError, match=r"^max_seqlen_q: required with cu_seqlens_q/cu_seqlens_k"):
        flash_sm90.forward(q, k, v, out, **{**kw, "max_seqlen_q": None})
    with pytest.raises(ValueError, match=r"^max_seqlen_k: required with cu_seqlens_q/cu_seqlens_k"):
        flash_sm90.forward(q, k, v, out, **{**kw, "max_seqlen_k": None})
    with pytest.raises(TypeError, match=r"^max_seqlen_q: expected an int, got float"):
        flash_sm90.forward(q, k, v, out, **{**kw, "max_seqlen_q": 200.0})
    with pytest.raises(TypeError, match=r"^max_seqlen_k: expected an int, got bool"):
        flash_sm90.forward(q, k, v, out, **{**kw, "max_seqlen_k": True})
    with pytest.raises(ValueError, match=r"^max_seqlen_q = 1099511627776 does not fit in int32"):
        flash_sm90.forward(q, k, v, out, **{**kw, "max_seqlen_q": 1 << 40})


def test_max_seqlen_only_with_cu_seqlens():
    q, k, v, out = qkvo()
    with pytest.raises(ValueError, match=r"^max_seqlen_q: only with cu_seqlens_q/cu_seqlens_k"):
        flash_sm90.forward(q, k, v, out, max_seqlen_q=128)
    with pytest.raises(ValueError, match=r"^max_seqlen_k: only with cu_seqlens_q/cu_seqlens_k"):
        flash_sm90.forward(q, k, v, out, max_seqlen_k=128)


def test_varlen_tensors_are_3d_packed():
    (q, k, v, out), kw = varlen_args()
    q4, k4, v4, out4 = qkvo()
    with pytest.raises(ValueError, match=r"^q: expected 3 dimensions \[total_q, heads, head_dim\] \(packed, with cu_seqlens_q\), got 4"):
        flash_sm90.forward(q4, k, v, out, **kw)
    with pytest.raises(ValueError, match=r"^k: expected 3 dimensions \[total_k, heads_k, head_dim\]"):
        flash_sm90.forward(q, k4, v, out, **kw)
    with pytest.raises(ValueError, match=r"^v: expected 3 dimensions"):
        flash_sm90.forward(q, k, v4, out, **kw)
    with pytest.raises(ValueError, match=r"^out: expected 3 dimensions"):
        flash_sm90.forward(q, k, v, out4, **kw)
    # ...and without cu_seqlens a 3-D array is the wrong rank.
    with pytest.raises(ValueError, match=r"^q: expected 4 dimensions \[batch, seqlen, heads, head_dim\], got 3"):
        flash_sm90.forward(q, k4, v4, out4)


def test_varlen_shapes_must_agree():
    (q, k, v, out), kw = varlen_args()
    with pytest.raises(ValueError, match=r"^v: shape \(499, 4, 128\) differs from k's \(500, 4, 128\)"):
        flash_sm90.forward(q, k, FakeCudaArray((499, 4, 128)), out, **kw)
    with pytest.raises(ValueError, match=r"^out: shape \(300, 8, 64\) differs from q's"):
        flash_sm90.forward(q, k, v, FakeCudaArray((300, 8, 64)), **kw)
    with pytest.raises(ValueError, match=r"^k: head_dim 64 differs from q's 128"):
        flash_sm90.forward(q, FakeCudaArray((500, 4, 64)), FakeCudaArray((500, 4, 64)), out, **kw)


def test_cu_seqlens_arrays_are_checked():
    (q, k, v, out), kw = varlen_args(batch=2)
    with pytest.raises(TypeError, match=r"^cu_seqlens_q: expected int32, got float32"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_q": FakeCudaArray((3,), "float32")})
    with pytest.raises(TypeError, match=r"^cu_seqlens_k: expected int32, got int64"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_k": FakeCudaArray((3,), "int64")})
    with pytest.raises(ValueError, match=r"^cu_seqlens_k: expected shape \[batch \+ 1\] \(as cu_seqlens_q\) = \(3,\), got \(4,\)"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_k": FakeCudaArray((4,), "int32")})
    with pytest.raises(ValueError, match=r"^cu_seqlens_q: expected 1 dimensions \[batch \+ 1\], got 2"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_q": FakeCudaArray((1, 3), "int32")})
    with pytest.raises(ValueError, match=r"^cu_seqlens_q: expected batch \+ 1 >= 2 offsets, got shape \(1,\)"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_q": FakeCudaArray((1,), "int32")})
    with pytest.raises(ValueError, match=r"^cu_seqlens_q: the last dimension must be contiguous"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_q": FakeCudaArray((3,), "int32", strides=(2,))})
    with pytest.raises(ValueError, match=r"^cu_seqlens_k: expected a CUDA device array.*cpu"):
        flash_sm90.forward(q, k, v, out, **{**kw, "cu_seqlens_k": FakeCudaArray((3,), "int32", device_type=1)})


def test_seqused_k_is_checked():
    (q, k, v, out), kw = varlen_args(batch=2)
    with pytest.raises(ValueError, match=r"^seqused_k: expected shape \[batch\] = \(2,\), got \(3,\)"):
        flash_sm90.forward(q, k, v, out, seqused_k=FakeCudaArray((3,), "int32"), **kw)
    with pytest.raises(TypeError, match=r"^seqused_k: expected int32, got uint16"):
        flash_sm90.forward(q, k, v, out, seqused_k=FakeCudaArray((2,), "uint16"), **kw)
    q4, k4, v4, out4 = qkvo(b=3)   # without cu_seqlens the batch is q's first dimension
    with pytest.raises(ValueError, match=r"^seqused_k: expected shape \[batch\] = \(3,\), got \(2,\)"):
        flash_sm90.forward(q4, k4, v4, out4, seqused_k=FakeCudaArray((2,), "int32"))


def test_varlen_lse_is_heads_by_total_q():
    (q, k, v, out), kw = varlen_args(total_q=300, h=8)
    with pytest.raises(ValueError, match=r"^lse: expected 2 dimensions \[heads, total_q\], got 3"):
        flash_sm90.forward(q, k, v, out, lse=FakeCudaArray((2, 8, 200), "float32"), **kw)
    with pytest.raises(ValueError, match=r"^lse: expected shape \[heads, total_q\] = \(8, 300\), got \(300, 8\)"):
        flash_sm90.forward(q, k, v, out, lse=FakeCudaArray((300, 8), "float32"), **kw)
    with pytest.raises(ValueError, match=r"^lse: must be contiguous"):
        flash_sm90.forward(q, k, v, out, lse=FakeCudaArray((8, 300), "float32", strides=(512, 1)), **kw)


def test_window_size_must_be_two_ints():
    q, k, v, out = qkvo()
    with pytest.raises(ValueError, match=r"^window_size: expected a \(left, right\) tuple of two ints .*got 3 items"):
        flash_sm90.forward(q, k, v, out, window_size=(1, 2, 3))
    with pytest.raises(ValueError, match=r"^window_size: expected a \(left, right\) tuple .*got 1 items"):
        flash_sm90.forward(q, k, v, out, window_size=[4])
    with pytest.raises(TypeError, match=r"^window_size: expected a \(left, right\) tuple .*got int"):
        flash_sm90.forward(q, k, v, out, window_size=5)
    with pytest.raises(TypeError, match=r"^window_size\[0\] \(left\): expected an int, got float"):
        flash_sm90.forward(q, k, v, out, window_size=(1.5, 0))
    with pytest.raises(TypeError, match=r"^window_size\[1\] \(right\): expected an int, got bool"):
        flash_sm90.forward(q, k, v, out, window_size=(8, True))
    with pytest.raises(ValueError, match=r"^window_size\[1\] \(right\) = 4294967296 does not fit in int32"):
        flash_sm90.forward(q, k, v, out, window_size=(8, 1 << 32))


def _library_error(status, fragment, *args, **kwargs):
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(*args, **kwargs)
    e = info.value
    assert e.status == status, str(e)
    assert str(e).startswith(flash_sm90.status_string(status) + ": ")
    assert fragment in str(e), str(e)


def test_library_checks_window_and_softcap():
    q, k, v, out = qkvo()
    _library_error(flash_sm90.ERROR_INVALID_WINDOW, "window_size_left = -2", q, k, v, out, window_size=(-2, 0))
    _library_error(flash_sm90.ERROR_INVALID_WINDOW, "window_size_right = 4 conflicts with is_causal",
                   q, k, v, out, causal=True, window_size=(16, 4))
    _library_error(flash_sm90.ERROR_INVALID_SOFTCAP, "softcap = -1", q, k, v, out, softcap=-1.0)
    _library_error(flash_sm90.ERROR_INVALID_SOFTCAP, "softcap = nan", q, k, v, out, softcap=float("nan"))
    _library_error(flash_sm90.ERROR_INVALID_SOFTCAP, "softcap = inf", q, k, v, out, softcap=float("inf"))
    with pytest.raises(TypeError):
        flash_sm90.forward(q, k, v, out, softcap="30")


def test_library_checks_varlen_consistency():
    (q, k, v, out), kw = varlen_args(total_q=300, total_k=500)
    _library_error(flash_sm90.ERROR_INVALID_VARLEN, "seqlen_q = 301 exceeds total_q = 300",
                   q, k, v, out, **{**kw, "max_seqlen_q": 301})
    _library_error(flash_sm90.ERROR_INVALID_SIZE, "seqlen_k = 0", q, k, v, out, **{**kw, "max_seqlen_k": 0})
    misaligned = FakeCudaArray((3,), "int32", address=kw["cu_seqlens_k"].address + 2)
    _library_error(flash_sm90.ERROR_MISALIGNED_POINTER, "cu_seqlens_k = 0x", q, k, v, out,
                   **{**kw, "cu_seqlens_k": misaligned})
    inside_out = FakeCudaArray((3,), "int32", address=out.address + 64)
    _library_error(flash_sm90.ERROR_ALIASING, "overlap cu_seqlens_q bytes", q, k, v, out,
                   **{**kw, "cu_seqlens_q": inside_out})
    # out right after q's 300 packed rows does not overlap it; one row earlier it does.
    row_bytes = 8 * 128 * 2
    _library_error(flash_sm90.ERROR_ALIASING, "overlap q bytes", q, k, v,
                   FakeCudaArray(out.shape, address=q.address + 299 * row_bytes), **kw)


@no_gpu_only
def test_valid_varlen_call_reaches_device_check():
    (q, k, v, out), kw = varlen_args(total_q=300, total_k=500, h=8, hk=4, d=80, dtype="bfloat16")
    lse = FakeCudaArray((8, 300), "float32")
    seqused = FakeCudaArray((2,), "int32")
    _library_error_any_device(q, k, v, out, lse=lse, seqused_k=seqused, window_size=(64, 0), softcap=30.0,
                              causal=True, **kw)


@no_gpu_only
def test_packed_varlen_qkv_views_reach_device_check():
    # One packed [total, 3, h, d] buffer: q, k, v are strided 3-D views (row stride 3*h*d).
    total, h, d = 300, 4, 64
    base = FakeCudaArray((total, 3, h, d))
    strides = (3 * h * d, d, 1)
    q, k, v = (base.view((total, h, d), strides, i * h * d) for i in range(3))
    out = FakeCudaArray((total, h, d))
    cu = FakeCudaArray((4,), "int32")
    _library_error_any_device(q, k, v, out, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=150, max_seqlen_k=150)


@no_gpu_only
def test_window_and_softcap_without_varlen_reach_device_check():
    q, k, v, out = qkvo()
    _library_error_any_device(q, k, v, out, window_size=[32, 32], softcap=50.0,
                              seqused_k=FakeCudaArray((1,), "int32"))


def _library_error_any_device(*args, **kwargs):
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.forward(*args, **kwargs)
    assert info.value.status in (flash_sm90.ERROR_NO_DEVICE, flash_sm90.ERROR_UNSUPPORTED_DEVICE), str(info.value)


# --- paged KV caches, split-KV, workspace -------------------------------------------------------
def paged_args(b=2, sq=1, h=16, hk=2, d=128, num_pages=40, page_size=64, pages_per_entry=8, dtype="bfloat16"):
    """q/out [b, sq, h, d], k/v [num_pages, page_size, hk, d], page_table [b, pages_per_entry] int32."""
    q, out = FakeCudaArray((b, sq, h, d), dtype), FakeCudaArray((b, sq, h, d), dtype)
    k, v = FakeCudaArray((num_pages, page_size, hk, d), dtype), FakeCudaArray((num_pages, page_size, hk, d), dtype)
    return (q, k, v, out), dict(page_table=FakeCudaArray((b, pages_per_entry), "int32"))


def test_decode_options_are_keyword_only_and_typed():
    q, k, v, out = qkvo()
    with pytest.raises(TypeError, match=r"^num_splits: expected an int, got float"):
        flash_sm90.forward(q, k, v, out, num_splits=2.0)
    with pytest.raises(TypeError, match=r"^num_splits: expected an int, got bool"):
        flash_sm90.workspace_size(q, k, v, out, num_splits=True)
    with pytest.raises(TypeError):
        flash_sm90.workspace_size(q, k, v, out, workspace=FakeCudaArray((64,), "int32"))   # forward's only


def test_page_table_is_checked_by_the_binding():
    (q, k, v, out), kw = paged_args(b=2)
    with pytest.raises(TypeError, match=r"^page_table: expected int32, got int64"):
        flash_sm90.forward(q, k, v, out, page_table=FakeCudaArray((2, 8), "int64"))
    with pytest.raises(ValueError, match=r"^page_table: expected 2 rows \(q's batch\), got shape \(3, 8\)"):
        flash_sm90.forward(q, k, v, out, page_table=FakeCudaArray((3, 8), "int32"))
    with pytest.raises(ValueError, match=r"^page_table: expected 2 dimensions \[batch, pages_per_entry\], got 1"):
        flash_sm90.forward(q, k, v, out, page_table=FakeCudaArray((16,), "int32"))
    with pytest.raises(ValueError, match=r"^page_table: expected a CUDA device array"):
        flash_sm90.forward(q, k, v, out, page_table=FakeCudaArray((2, 8), "int32", device_type=1))
    with pytest.raises(ValueError, match=r"^k: expected 4 dimensions \[num_pages, page_size, heads_k, head_dim\] \(paged"):
        flash_sm90.forward(q, FakeCudaArray((40, 64, 256)), v, out, **kw)
    (vq, vk, vv, vout), vkw = varlen_args()
    with pytest.raises(ValueError, match=r"^page_table: not with cu_seqlens_q/cu_seqlens_k"):
        flash_sm90.forward(vq, vk, vv, vout, page_table=FakeCudaArray((2, 8), "int32"), **vkw)


def test_workspace_is_checked_by_the_binding():
    q, k, v, out = qkvo()
    with pytest.raises(ValueError, match=r"^workspace: expected a CUDA device array"):
        flash_sm90.forward(q, k, v, out, num_splits=2, workspace=FakeCudaArray((1024,), "int32", device_type=1))
    with pytest.raises(ValueError, match=r"^workspace: must be contiguous"):
        flash_sm90.forward(q, k, v, out, num_splits=2, workspace=FakeCudaArray((1024,), "int32", strides=(2,)))


def test_library_checks_paging_and_splits():
    # A page size that is not a multiple of 16, and the num_splits range, are the library's checks;
    # they come before the device check, so they hold on machines without a GPU.
    (q, k, v, out), kw = paged_args(page_size=24)
    _library_error(flash_sm90.ERROR_INVALID_PAGING, "page_size = 24", q, k, v, out, **kw)
    q, k, v, out = qkvo()
    _library_error(flash_sm90.ERROR_INVALID_SPLITS, "num_splits = -1", q, k, v, out, num_splits=-1)
    _library_error(flash_sm90.ERROR_INVALID_SPLITS, "num_splits = 257", q, k, v, out, num_splits=257)
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.workspace_size(q, k, v, out, num_splits=1000)
    assert info.value.status == flash_sm90.ERROR_INVALID_SPLITS


@no_gpu_only
def test_valid_paged_split_call_reaches_device_check():
    (q, k, v, out), kw = paged_args()
    ws = FakeCudaArray((1 << 20,), "int32")
    _library_error_any_device(q, k, v, out, seqused_k=FakeCudaArray((2,), "int32"), num_splits=4, workspace=ws, **kw)
    with pytest.raises(flash_sm90.FlashAttentionError) as info:
        flash_sm90.workspace_size(q, k, v, out, num_splits=4, **kw)
    assert info.value.status in (flash_sm90.ERROR_NO_DEVICE, flash_sm90.ERROR_UNSUPPORTED_DEVICE)
