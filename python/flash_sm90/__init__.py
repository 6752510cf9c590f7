"""FlashAttention forward for NVIDIA Hopper (SM90).

``forward(q, k, v, out, ...)`` runs exact scaled-dot-product attention on any DLPack-capable CUDA
arrays (CuPy, PyTorch, JAX, ...) without copying them, asynchronously on the stream you pass.
"""
from typing import Any, List, Optional

from . import _flash_sm90 as _ext
from ._flash_sm90 import (  # noqa: F401  (re-exported)
    ERROR_ALIASING,
    ERROR_CUDA_FAILURE,
    ERROR_HEAD_RATIO,
    ERROR_INTERNAL,
    ERROR_INVALID_SCALE,
    ERROR_INVALID_SIZE,
    ERROR_INVALID_STRUCT,
    ERROR_MISALIGNED_POINTER,
    ERROR_MISALIGNED_STRIDE,
    ERROR_NO_DEVICE,
    ERROR_NULL_POINTER,
    ERROR_SIZE_OVERFLOW,
    ERROR_UNSUPPORTED_DEVICE,
    ERROR_UNSUPPORTED_DTYPE,
    ERROR_UNSUPPORTED_HEAD_DIM,
    ERROR_UNSUPPORTED_VERSION,
    SUCCESS,
    FlashAttentionError,
)

__version__: str = _ext.__version__

#: Every status code, name -> value (SUCCESS is 0).
STATUS_CODES = {name: getattr(_ext, name) for name in dir(_ext) if name == "SUCCESS" or name.startswith("ERROR_")}


def forward(
    q: Any,
    k: Any,
    v: Any,
    out: Any,
    *,
    causal: bool = False,
    softmax_scale: float = 0.0,
    lse: Optional[Any] = None,
    stream: Optional[int] = None,
    dtype: Optional[str] = None,
) -> None:
    """Attention forward: ``out = softmax(softmax_scale * q k^T [+ causal mask]) v``.

    Arrays are taken through DLPack without copies and must live on a CUDA device:

    - ``q``: ``[batch, seqlen_q, heads, head_dim]``; ``k``, ``v``: ``[batch, seqlen_k, heads_k,
      head_dim]`` (``heads_k`` divides ``heads``: GQA/MQA); ``out``: like ``q``, written.
      float16 or bfloat16, all four the same; any strides (in elements, multiples of 16 bytes, e.g.
      slices of a packed QKV array) as long as ``head_dim`` is contiguous.
    - ``lse`` (optional): float32 ``[batch, heads, seqlen_q]``, C-contiguous; receives the natural
      log-sum-exp of each row of scaled scores (``-inf`` for a row that sees no key).
    - ``causal``: bottom-right aligned mask when ``seqlen_q != seqlen_k``.
    - ``softmax_scale``: 0 means ``1 / sqrt(head_dim)``.
    - ``stream``: a ``cudaStream_t`` as an int (CuPy: ``cupy.cuda.get_current_stream().ptr``,
      PyTorch: ``torch.cuda.current_stream().cuda_stream``) or None for the legacy default stream
      (0). The call is asynchronous on that stream.
    - ``dtype``: None takes the type from the arrays. ``'bf16'`` or ``'fp16'`` also accepts 16-bit
      integer arrays (uint16/int16) holding that type's bits, for producers without bfloat16 such
      as CuPy (``x.view(cupy.uint16)``).

    Raises ValueError/TypeError (naming the argument) for what only the binding can see: a non-CUDA
    array, a wrong rank, a dtype mismatch, shapes that disagree, a non-unit last stride, a broadcast
    (zero) stride. Raises :class:`FlashAttentionError` (``.status`` is the code) when the library
    rejects the call (unsupported head dim, misaligned pointer or stride, aliasing, no SM90 device,
    ...) or CUDA fails; a rejected call writes nothing.
    """
    _ext.forward(q, k, v, out, causal=causal, softmax_scale=softmax_scale, lse=lse, stream=stream, dtype=dtype)


def status_string(status: int) -> str:
    """The library's fixed text of a status code ('unknown status' outside the enum)."""
    return _ext.status_string(status)


def supported_head_dims(dtype: str = "fp16") -> List[int]:
    """Head dims with a kernel of their own for 'fp16', 'bf16' (or 'fp8_e4m3'), ascending.

    Other multiples of 8 up to 256 run padded on the next wider kernel.
    """
    return list(_ext.supported_head_dims(dtype))


__all__ = [
    "__version__",
    "forward",
    "status_string",
    "supported_head_dims",
    "FlashAttentionError",
    "STATUS_CODES",
] + sorted(STATUS_CODES)
