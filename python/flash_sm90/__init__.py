"""FlashAttention forward for NVIDIA Hopper (SM90).

``forward(q, k, v, out, ...)`` runs exact scaled-dot-product attention on any DLPack-capable CUDA
arrays (CuPy, PyTorch, JAX, ...) without copying them, asynchronously on the stream you pass.
Variable-length (packed) batches, sliding-window attention, softcapping, paged KV caches and split-KV
decoding (with a caller-owned workspace, sized by ``workspace_size``) are keyword options.
"""
from typing import Any, List, Optional, Tuple

from . import _flash_sm90 as _ext
from ._flash_sm90 import (  # noqa: F401  (re-exported)
    ERROR_ALIASING,
    ERROR_CUDA_FAILURE,
    ERROR_HEAD_RATIO,
    ERROR_INTERNAL,
    ERROR_INVALID_SCALE,
    ERROR_INVALID_SIZE,
    ERROR_INVALID_DESCALE,
    ERROR_INVALID_PAGING,
    ERROR_INVALID_SOFTCAP,
    ERROR_INVALID_SPLITS,
    ERROR_INVALID_STRUCT,
    ERROR_INVALID_VARLEN,
    ERROR_INVALID_WINDOW,
    ERROR_INVALID_WORKSPACE,
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
    cu_seqlens_q: Optional[Any] = None,
    cu_seqlens_k: Optional[Any] = None,
    max_seqlen_q: Optional[int] = None,
    max_seqlen_k: Optional[int] = None,
    seqused_k: Optional[Any] = None,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    page_table: Optional[Any] = None,
    num_splits: int = 0,
    workspace: Optional[Any] = None,
) -> None:
    """Attention forward: ``out = softmax(softmax_scale * q k^T [+ mask]) v``.

    Arrays are taken through DLPack without copies and must live on a CUDA device:

    - ``q``: ``[batch, seqlen_q, heads, head_dim]``; ``k``, ``v``: ``[batch, seqlen_k, heads_k,
      head_dim]`` (``heads_k`` divides ``heads``: GQA/MQA); ``out``: like ``q``, written.
      float16 or bfloat16, all four the same; any strides (in elements, multiples of 16 bytes, e.g.
      slices of a packed QKV array) as long as ``head_dim`` is contiguous.
    - ``lse`` (optional): float32 ``[batch, heads, seqlen_q]`` (``[heads, total_q]`` with
      ``cu_seqlens_q``), C-contiguous; receives the natural log-sum-exp of each row of scaled
      (and softcapped) scores (``-inf`` for a row that sees no key).
    - ``causal``: bottom-right aligned mask when ``seqlen_q != seqlen_k``; the same as
      ``window_size[1] == 0``.
    - ``softmax_scale``: 0 means ``1 / sqrt(head_dim)``.
    - ``stream``: a ``cudaStream_t`` as an int (CuPy: ``cupy.cuda.get_current_stream().ptr``,
      PyTorch: ``torch.cuda.current_stream().cuda_stream``) or None for the legacy default stream
      (0). The call is asynchronous on that stream.
    - ``dtype``: None takes the type from the arrays. ``'bf16'`` or ``'fp16'`` also accepts 16-bit
      integer arrays (uint16/int16) holding that type's bits, for producers without bfloat16 such
      as CuPy (``x.view(cupy.uint16)``).
    - ``cu_seqlens_q``, ``cu_seqlens_k`` (both or neither): variable-length batches. int32 device
      arrays of ``batch + 1`` non-decreasing offsets; sequence ``b`` is rows ``[cu_seqlens_q[b],
      cu_seqlens_q[b + 1])`` of the packed ``q``/``out`` ``[total_q, heads, head_dim]`` and rows
      ``[cu_seqlens_k[b], cu_seqlens_k[b + 1])`` of ``k``/``v`` ``[total_k, heads_k, head_dim]``.
      ``max_seqlen_q`` and ``max_seqlen_k`` (ints, required then) are the longest lengths. The
      offsets are read by the kernel only (no synchronisation): bad contents give wrong rows but
      no out-of-bounds access.
    - ``seqused_k`` (optional): int32 device array ``[batch]``; sequence ``b`` attends to its first
      ``seqused_k[b]`` keys only (with or without ``cu_seqlens``).
    - ``window_size``: ``(left, right)`` local attention: query ``i`` sees key ``j`` when ``i +
      seqlen_k - seqlen_q - left <= j <= i + seqlen_k - seqlen_q + right`` (per sequence); -1 is
      unbounded. With ``causal``, ``right`` must be -1 or 0.
    - ``softcap``: > 0 replaces each scaled score ``s`` by ``softcap * tanh(s / softcap)``; 0 is off.
    - ``page_table`` (optional, not with ``cu_seqlens``): a paged KV cache. ``k``, ``v`` are then
      ``[num_pages, page_size, heads_k, head_dim]`` (``page_size`` a multiple of 16) and the int32
      device array ``page_table`` ``[batch, pages_per_entry]`` names entry ``b``'s pages in order:
      key ``j`` is row ``j % page_size`` of page ``page_table[b, j // page_size]`` (pages in any
      order; entries are clamped to ``[0, num_pages)``). Every entry's cache is ``pages_per_entry *
      page_size`` keys long unless ``seqused_k`` gives its length.
    - ``num_splits``: split-KV (decode): the keys of each query tile are divided among that many
      CTAs and a second kernel merges their partial results. 0 (default) chooses automatically
      when a ``workspace`` is given (without one the call does not split); 1 never splits; ``n >
      1`` forces ``n`` (at most 256, clamped to the key blocks) and needs a workspace.
    - ``workspace`` (optional): a C-contiguous CUDA array of any dtype holding at least
      :func:`workspace_size` bytes, used by split calls only, that nothing else uses until the
      call has run on ``stream``. The library never allocates.

    Raises ValueError/TypeError (naming the argument) for what only the binding can see: a non-CUDA
    array, a wrong rank (4-D, or 3-D packed with ``cu_seqlens``), a dtype mismatch, shapes that
    disagree, a non-unit last stride, a broadcast (zero) stride, one ``cu_seqlens`` without the
    other, a missing or unexpected ``max_seqlen``, a ``cu_seqlens``/``seqused_k`` array that is not
    int32 of the right length, a ``window_size`` that is not two ints, a ``page_table`` that is not
    int32 ``[batch, pages]`` or comes with ``cu_seqlens``, a ``num_splits`` that is not an int, a
    ``workspace`` that is not one contiguous CUDA range. Raises
    :class:`FlashAttentionError` (``.status`` is the code) when the library rejects the call
    (unsupported head dim, misaligned pointer or stride, aliasing, a window size below -1, a
    negative or non-finite softcap, ``max_seqlen`` above the packed length, a page size that is not
    a multiple of 16, ``num_splits`` out of range, a split call without a large enough workspace,
    no SM90 device, ...) or
    CUDA fails; a rejected call writes nothing.
    """
    _ext.forward(
        q, k, v, out,
        causal=causal, softmax_scale=softmax_scale, lse=lse, stream=stream, dtype=dtype,
        cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q,
        max_seqlen_k=max_seqlen_k, seqused_k=seqused_k, window_size=window_size, softcap=softcap,
        page_table=page_table, num_splits=num_splits, workspace=workspace,
    )


def workspace_size(
    q: Any,
    k: Any,
    v: Any,
    out: Any,
    *,
    causal: bool = False,
    softmax_scale: float = 0.0,
    lse: Optional[Any] = None,
    dtype: Optional[str] = None,
    cu_seqlens_q: Optional[Any] = None,
    cu_seqlens_k: Optional[Any] = None,
    max_seqlen_q: Optional[int] = None,
    max_seqlen_k: Optional[int] = None,
    seqused_k: Optional[Any] = None,
    window_size: Tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    page_table: Optional[Any] = None,
    num_splits: int = 0,
) -> int:
    """Bytes of ``workspace`` that :func:`forward` needs with these arguments (0: the call does not
    split the keys). Checks the arguments as ``forward`` does (same errors) and launches nothing;
    the size depends on the shapes, the device and ``num_splits``, not on the arrays' contents."""
    return _ext.workspace_size(
        q, k, v, out,
        causal=causal, softmax_scale=softmax_scale, lse=lse, dtype=dtype,
        cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q,
        max_seqlen_k=max_seqlen_k, seqused_k=seqused_k, window_size=window_size, softcap=softcap,
        page_table=page_table, num_splits=num_splits,
    )


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
    "workspace_size",
    "status_string",
    "supported_head_dims",
    "FlashAttentionError",
    "STATUS_CODES",
] + sorted(STATUS_CODES)
