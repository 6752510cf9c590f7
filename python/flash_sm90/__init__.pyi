from typing import Any, Dict, List, Optional, Tuple

__version__: str

SUCCESS: int
ERROR_NULL_POINTER: int
ERROR_INVALID_SIZE: int
ERROR_HEAD_RATIO: int
ERROR_UNSUPPORTED_DTYPE: int
ERROR_UNSUPPORTED_HEAD_DIM: int
ERROR_MISALIGNED_POINTER: int
ERROR_MISALIGNED_STRIDE: int
ERROR_SIZE_OVERFLOW: int
ERROR_INVALID_SCALE: int
ERROR_ALIASING: int
ERROR_NO_DEVICE: int
ERROR_UNSUPPORTED_DEVICE: int
ERROR_CUDA_FAILURE: int
ERROR_INVALID_STRUCT: int
ERROR_UNSUPPORTED_VERSION: int
ERROR_INTERNAL: int
ERROR_INVALID_WINDOW: int
ERROR_INVALID_SOFTCAP: int
ERROR_INVALID_VARLEN: int
ERROR_INVALID_SPLITS: int
ERROR_INVALID_WORKSPACE: int
ERROR_INVALID_PAGING: int
ERROR_INVALID_DESCALE: int
STATUS_CODES: Dict[str, int]

class FlashAttentionError(RuntimeError):
    status: int

def forward(
    q: Any,
    k: Any,
    v: Any,
    out: Any,
    *,
    causal: bool = ...,
    softmax_scale: float = ...,
    lse: Optional[Any] = ...,
    stream: Optional[int] = ...,
    dtype: Optional[str] = ...,
    cu_seqlens_q: Optional[Any] = ...,
    cu_seqlens_k: Optional[Any] = ...,
    max_seqlen_q: Optional[int] = ...,
    max_seqlen_k: Optional[int] = ...,
    seqused_k: Optional[Any] = ...,
    window_size: Tuple[int, int] = ...,
    softcap: float = ...,
    page_table: Optional[Any] = ...,
    num_splits: int = ...,
    workspace: Optional[Any] = ...,
) -> None: ...
def workspace_size(
    q: Any,
    k: Any,
    v: Any,
    out: Any,
    *,
    causal: bool = ...,
    softmax_scale: float = ...,
    lse: Optional[Any] = ...,
    dtype: Optional[str] = ...,
    cu_seqlens_q: Optional[Any] = ...,
    cu_seqlens_k: Optional[Any] = ...,
    max_seqlen_q: Optional[int] = ...,
    max_seqlen_k: Optional[int] = ...,
    seqused_k: Optional[Any] = ...,
    window_size: Tuple[int, int] = ...,
    softcap: float = ...,
    page_table: Optional[Any] = ...,
    num_splits: int = ...,
) -> int: ...
def status_string(status: int) -> str: ...
def supported_head_dims(dtype: str = ...) -> List[int]: ...
