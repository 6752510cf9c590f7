// _flash_sm90: the nanobind extension behind the flash_sm90 Python package.
//
// forward() takes any DLPack-capable CUDA array (CuPy, PyTorch, JAX, ...) without copying: the
// data pointer, shape and element strides go straight into flash::FlashAttentionParams, and the
// kernel runs on the stream the caller names. What the library checks itself (sizes, head dims,
// alignment, aliasing, window, softcap, varlen consistency, device) comes back as
// FlashAttentionError with the library's message; what only the binding can see (device type,
// rank, dtypes, shapes that must agree, unit last stride, the varlen arguments' presence and
// shapes, the window tuple) raises ValueError or TypeError naming the argument.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "flash_api.h"

namespace nb = nanobind;

namespace {

using InArray = nb::ndarray<nb::ro>;   // q, k, v: read-only views are fine (JAX)
using OutArray = nb::ndarray<>;        // out, lse: written

// The Python exception class FlashAttentionError (a RuntimeError), created at import.
PyObject* g_flash_error = nullptr;

// Thrown after the call with the GIL held again; translated into FlashAttentionError.
struct FlashCallError {
  int status;
  std::string message;
};

constexpr int kDlCuda = 2;            // kDLCUDA
constexpr int kDlCudaManaged = 13;    // kDLCUDAManaged

std::string device_name(int device_type) {
  switch (device_type) {
    case 1: return "cpu";
    case 2: return "cuda";
    case 3: return "cuda_host";
    case 4: return "opencl";
    case 7: return "vulkan";
    case 8: return "metal";
    case 10: return "rocm";
    case 13: return "cuda_managed";
    default: return "device type " + std::to_string(device_type);
  }
}

std::string dtype_name(nb::dlpack::dtype t) {
  std::string base;
  switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
    case nb::dlpack::dtype_code::Int: base = "int"; break;
    case nb::dlpack::dtype_code::UInt: base = "uint"; break;
    case nb::dlpack::dtype_code::Float: base = "float"; break;
    case nb::dlpack::dtype_code::Bfloat: base = "bfloat"; break;
    case nb::dlpack::dtype_code::Complex: base = "complex"; break;
    case nb::dlpack::dtype_code::Bool: return "bool";
    default: base = "dtype code " + std::to_string(t.code) + " bits "; break;
  }
  std::string s = base + std::to_string(t.bits);
  if (t.lanes != 1) s += "x" + std::to_string(t.lanes);
  return s;
}

bool is_dtype(nb::dlpack::dtype t, nb::dlpack::dtype_code code, int bits) {
  return t.code == static_cast<uint8_t>(code) && t.bits == bits && t.lanes == 1;
}

template <typename Array>
std::string shape_string(const Array& a) {
  std::string s = "(";
  for (size_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// Device, rank, extents that fit in int, last stride 1, no broadcast (zero) strides. `layout`
// names the expected dimensions for the rank message, e.g. "[batch, seqlen, heads, head_dim]".
template <typename Array>
void check_cuda(const char* name, const Array& a) {
  if (a.device_type() != kDlCuda && a.device_type() != kDlCudaManaged) {
    throw nb::value_error((std::string(name) + ": expected a CUDA device array (DLPack device cuda), got a " +
                           device_name(a.device_type()) + " array; move it to the GPU first (e.g. cupy.asarray)")
                              .c_str());
  }
}

template <typename Array>
void check_tensor(const char* name, const Array& a, size_t ndim, const char* layout) {
  check_cuda(name, a);
  if (a.ndim() != ndim) {
    throw nb::value_error((std::string(name) + ": expected " + std::to_string(ndim) + " dimensions " + layout +
                           ", got " + std::to_string(a.ndim()) + " with shape " + shape_string(a))
                              .c_str());
  }
  for (size_t i = 0; i < ndim; ++i) {
    if (a.shape(i) > static_cast<size_t>(INT_MAX)) {
      throw nb::value_error((std::string(name) + ": extent " + std::to_string(a.shape(i)) + " of dimension " +
                             std::to_string(i) + " exceeds INT_MAX")
                                .c_str());
    }
    if (a.shape(i) > 1 && a.stride(i) == 0) {
      throw nb::value_error((std::string(name) + ": dimension " + std::to_string(i) +
                             " has stride 0 (a broadcast view); materialise it first")
                                .c_str());
    }
  }
  if (a.shape(ndim - 1) > 1 && a.stride(ndim - 1) != 1) {
    throw nb::value_error((std::string(name) + ": the last dimension must be contiguous (stride 1), got stride " +
                           std::to_string(a.stride(ndim - 1)))
                              .c_str());
  }
}

// A stride for the library: 0 (its "contiguous default") when the extent is 1, where the stride
// never multiplies a non-zero index and producers may report any value.
template <typename Array>
int64_t lib_stride(const Array& a, size_t i) {
  return a.shape(i) <= 1 ? 0 : a.stride(i);
}

// The library's dtype of a 16-bit array. `override_dtype` ("fp16"/"bf16") also accepts 16-bit
// integer storage holding that type's bits (CuPy has no bfloat16).
flash::DataType parse_dtype_name(const std::string& s) {
  if (s == "fp16" || s == "float16" || s == "half") return flash::DataType::FP16;
  if (s == "bf16" || s == "bfloat16") return flash::DataType::BF16;
  if (s == "fp8" || s == "fp8_e4m3" || s == "float8_e4m3fn") return flash::DataType::FP8_E4M3;
  throw nb::value_error(("unknown dtype name '" + s + "'; expected 'fp16', 'bf16' or 'fp8_e4m3'").c_str());
}

template <typename Array>
flash::DataType tensor_dtype(const char* name, const Array& a, const std::optional<std::string>& override_dtype) {
  const nb::dlpack::dtype t = a.dtype();
  using C = nb::dlpack::dtype_code;
  if (override_dtype) {
    const flash::DataType want = parse_dtype_name(*override_dtype);
    if (want == flash::DataType::FP8_E4M3) {
      throw nb::value_error("dtype: forward supports 'fp16' and 'bf16' inputs");
    }
    const bool native = want == flash::DataType::FP16 ? is_dtype(t, C::Float, 16) : is_dtype(t, C::Bfloat, 16);
    if (native || is_dtype(t, C::UInt, 16) || is_dtype(t, C::Int, 16)) return want;
    throw nb::type_error((std::string(name) + ": dtype='" + *override_dtype + "' needs " +
                          (want == flash::DataType::FP16 ? "float16" : "bfloat16") +
                          " or 16-bit integer storage (uint16/int16), got " + dtype_name(t))
                             .c_str());
  }
  if (is_dtype(t, C::Float, 16)) return flash::DataType::FP16;
  if (is_dtype(t, C::Bfloat, 16)) return flash::DataType::BF16;
  throw nb::type_error((std::string(name) + ": expected float16 or bfloat16, got " + dtype_name(t) +
                        (is_dtype(t, C::UInt, 16) || is_dtype(t, C::Int, 16)
                             ? " (for bf16/fp16 bits in 16-bit integer storage pass dtype='bf16' or 'fp16')"
                             : ""))
                           .c_str());
}

const char* dtype_label(flash::DataType d) {
  switch (d) {
    case flash::DataType::FP16: return "fp16";
    case flash::DataType::BF16: return "bf16";
    case flash::DataType::FP8_E4M3: return "fp8_e4m3";
    case flash::DataType::AUTO: break;
  }
  return "?";
}

cudaStream_t parse_stream(nb::handle stream) {
  if (stream.is_none()) return nullptr;   // the legacy default stream
  if (PyLong_Check(stream.ptr())) {
    const unsigned long long v = PyLong_AsUnsignedLongLong(stream.ptr());
    if (PyErr_Occurred()) {
      PyErr_Clear();
      throw nb::value_error("stream: expected a non-negative int (a cudaStream_t address) or None");
    }
    return reinterpret_cast<cudaStream_t>(static_cast<uintptr_t>(v));
  }
  throw nb::type_error(("stream: expected an int (a cudaStream_t address, e.g. cupy.cuda.get_current_stream().ptr "
                        "or torch.cuda.current_stream().cuda_stream) or None, got " +
                        std::string(nb::type_name(stream.type()).c_str()))
                           .c_str());
}

// C order, as the library reads lse (a dimension of extent 1 may have any stride).
template <typename Array>
void check_contiguous(const char* name, const Array& a) {
  int64_t expected = 1;
  for (size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) > 1 && a.stride(i) != expected) {
      throw nb::value_error((std::string(name) + ": must be contiguous (C order)").c_str());
    }
    expected *= static_cast<int64_t>(a.shape(i));
  }
}

template <typename Array>
void check_same_device(const char* name, const Array& a, int device_id) {
  if (a.device_id() != device_id) {
    throw nb::value_error((std::string(name) + ": on CUDA device " + std::to_string(a.device_id()) + ", q on device " +
                           std::to_string(device_id))
                              .c_str());
  }
}

// An int32 device vector of `length` entries (cu_seqlens_q/k: batch + 1, seqused_k: batch).
void check_int32_vector(const char* name, const InArray& a, size_t length, const std::string& length_text,
                        int device_id) {
  check_tensor(name, a, 1, length_text.c_str());
  if (!is_dtype(a.dtype(), nb::dlpack::dtype_code::Int, 32)) {
    throw nb::type_error((std::string(name) + ": expected int32, got " + dtype_name(a.dtype())).c_str());
  }
  if (a.shape(0) != length) {
    throw nb::value_error((std::string(name) + ": expected shape " + length_text + " = (" + std::to_string(length) +
                           ",), got " + shape_string(a))
                              .c_str());
  }
  check_same_device(name, a, device_id);
}

// A Python int (not a bool, not a float) that fits int32; `name` for the messages.
int int32_argument(const std::string& name, nb::handle value) {
  if (!PyLong_Check(value.ptr()) || PyBool_Check(value.ptr())) {
    throw nb::type_error((name + ": expected an int, got " + std::string(nb::type_name(value.type()).c_str())).c_str());
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow != 0 || v < INT_MIN || v > INT_MAX) {
    throw nb::value_error((name + " = " + nb::str(value).c_str() + " does not fit in int32").c_str());
  }
  return static_cast<int>(v);
}

// window_size: a (left, right) pair of ints, -1 meaning unbounded; the library checks the values.
std::pair<int, int> parse_window(nb::handle window) {
  const std::string usage = "window_size: expected a (left, right) tuple of two ints (-1: no limit on that side)";
  if (!PyTuple_Check(window.ptr()) && !PyList_Check(window.ptr())) {
    throw nb::type_error((usage + ", got " + std::string(nb::type_name(window.type()).c_str())).c_str());
  }
  const Py_ssize_t count = PySequence_Size(window.ptr());
  if (count != 2) {
    throw nb::value_error((usage + ", got " + std::to_string(count) + " items").c_str());
  }
  const nb::object left = nb::steal(PySequence_GetItem(window.ptr(), 0));
  const nb::object right = nb::steal(PySequence_GetItem(window.ptr(), 1));
  if (!left.is_valid() || !right.is_valid()) throw nb::python_error();
  return {int32_argument("window_size[0] (left)", left), int32_argument("window_size[1] (right)", right)};
}

// a x b for two extents, which must stay within int; `what` names the product for the message.
int64_t checked_extent_product(const char* what, int64_t a, int64_t b) {
  if (a != 0 && b > INT_MAX / a) {
    throw nb::value_error((std::string(what) + " = " + std::to_string(a) + " x " + std::to_string(b) +
                           " exceeds INT_MAX")
                              .c_str());
  }
  return a * b;
}

// Everything forward() and workspace_size() take but the workspace and the stream, checked as far
// as the binding can see, in the library's parameter struct.
struct CallArgs {
  flash::FlashAttentionParams params;
  int device_id = 0;
};

CallArgs make_params(const InArray& q, const InArray& k, const InArray& v, const OutArray& out, bool causal,
                     double softmax_scale, const std::optional<OutArray>& lse, const std::optional<std::string>& dtype,
                     const std::optional<InArray>& cu_seqlens_q, const std::optional<InArray>& cu_seqlens_k,
                     nb::handle max_seqlen_q, nb::handle max_seqlen_k, const std::optional<InArray>& seqused_k,
                     nb::handle window_size, double softcap, const std::optional<InArray>& page_table,
                     nb::handle num_splits) {
  // Variable-length batches: packed [total, heads, head_dim] tensors described by cu_seqlens_q/k
  // (both) and max_seqlen_q/k (both required then, not allowed otherwise).
  const bool varlen = cu_seqlens_q.has_value() || cu_seqlens_k.has_value();
  if (varlen && !cu_seqlens_k) {
    throw nb::value_error("cu_seqlens_k: required with cu_seqlens_q (variable-length batches need both)");
  }
  if (varlen && !cu_seqlens_q) {
    throw nb::value_error("cu_seqlens_q: required with cu_seqlens_k (variable-length batches need both)");
  }
  const std::pair<const char*, nb::handle> maxima[] = {{"max_seqlen_q", max_seqlen_q}, {"max_seqlen_k", max_seqlen_k}};
  for (const auto& [name, value] : maxima) {
    if (varlen && value.is_none()) {
      throw nb::value_error((std::string(name) +
                             ": required with cu_seqlens_q/cu_seqlens_k (the longest sequence's length, an int)")
                                .c_str());
    }
    if (!varlen && !value.is_none()) {
      throw nb::value_error((std::string(name) +
                             ": only with cu_seqlens_q/cu_seqlens_k; fixed-length batches take it from the shapes")
                                .c_str());
    }
  }
  const bool paged = page_table.has_value();
  if (paged && varlen) {
    throw nb::value_error("page_table: not with cu_seqlens_q/cu_seqlens_k (a paged cache takes each entry's length "
                          "from seqused_k)");
  }
  const size_t ndim = varlen ? 3 : 4;
  const char* q_layout = varlen ? "[total_q, heads, head_dim] (packed, with cu_seqlens_q)" : "[batch, seqlen, heads, head_dim]";
  const char* k_layout = varlen  ? "[total_k, heads_k, head_dim] (packed, with cu_seqlens_k)"
                         : paged ? "[num_pages, page_size, heads_k, head_dim] (paged, with page_table)"
                                 : "[batch, seqlen, heads, head_dim]";
  check_tensor("q", q, ndim, q_layout);
  check_tensor("k", k, ndim, k_layout);
  check_tensor("v", v, ndim, k_layout);
  check_tensor("out", out, ndim, q_layout);
  const flash::DataType dt = tensor_dtype("q", q, dtype);
  const std::pair<const char*, flash::DataType> others[] = {
      {"k", tensor_dtype("k", k, dtype)}, {"v", tensor_dtype("v", v, dtype)}, {"out", tensor_dtype("out", out, dtype)}};
  for (const auto& [name, d] : others) {
    if (d != dt) {
      throw nb::type_error((std::string(name) + ": dtype " + dtype_label(d) + " differs from q's " + dtype_label(dt))
                               .c_str());
    }
  }
  // Shapes the library cannot check (it receives one set of sizes). Dimension indices: the head
  // and head_dim dimensions are the last two; the batch dimension exists only without varlen.
  const size_t head_dim_index = ndim - 1;
  const auto same = [ndim](const auto& a, const auto& b) {
    for (size_t i = 0; i < ndim; ++i) if (a.shape(i) != b.shape(i)) return false;
    return true;
  };
  if (!same(k, v)) {
    throw nb::value_error(("v: shape " + shape_string(v) + " differs from k's " + shape_string(k)).c_str());
  }
  if (!same(out, q)) {
    throw nb::value_error(("out: shape " + shape_string(out) + " differs from q's " + shape_string(q)).c_str());
  }
  if (!varlen && !paged && k.shape(0) != q.shape(0)) {
    throw nb::value_error(("k: batch " + std::to_string(k.shape(0)) + " differs from q's " + std::to_string(q.shape(0)))
                              .c_str());
  }
  if (k.shape(head_dim_index) != q.shape(head_dim_index)) {
    throw nb::value_error(("k: head_dim " + std::to_string(k.shape(head_dim_index)) + " differs from q's " +
                           std::to_string(q.shape(head_dim_index)))
                              .c_str());
  }
  const int device_id = q.device_id();
  check_same_device("k", k, device_id);
  check_same_device("v", v, device_id);
  check_same_device("out", out, device_id);

  flash::FlashAttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  p.dtype = dt;
  p.is_causal = causal;
  p.softmax_scale = static_cast<float>(softmax_scale);
  p.softcap = static_cast<float>(softcap);
  std::tie(p.window_size_left, p.window_size_right) = parse_window(window_size);
  if (varlen) {
    const InArray& cq = *cu_seqlens_q;
    check_tensor("cu_seqlens_q", cq, 1, "[batch + 1]");
    if (cq.shape(0) < 2) {
      throw nb::value_error(("cu_seqlens_q: expected batch + 1 >= 2 offsets, got shape " + shape_string(cq)).c_str());
    }
    const size_t batch = cq.shape(0) - 1;
    check_int32_vector("cu_seqlens_q", cq, batch + 1, "[batch + 1]", device_id);
    check_int32_vector("cu_seqlens_k", *cu_seqlens_k, batch + 1, "[batch + 1] (as cu_seqlens_q)", device_id);
    p.cu_seqlens_q = static_cast<const int32_t*>(cq.data());
    p.cu_seqlens_k = static_cast<const int32_t*>(cu_seqlens_k->data());
    p.batch_size = static_cast<int>(batch);
    p.seqlen_q = int32_argument("max_seqlen_q", max_seqlen_q);
    p.seqlen_k = int32_argument("max_seqlen_k", max_seqlen_k);
    p.total_q = static_cast<int>(q.shape(0));
    p.total_k = static_cast<int>(k.shape(0));
    p.num_heads = static_cast<int>(q.shape(1));
    p.num_heads_k = static_cast<int>(k.shape(1));
    p.head_dim = static_cast<int>(q.shape(2));
    // Packed tensors have no batch dimension: batch strides stay 0.
    p.q_row_stride = lib_stride(q, 0), p.q_head_stride = lib_stride(q, 1);
    p.k_row_stride = lib_stride(k, 0), p.k_head_stride = lib_stride(k, 1);
    p.v_row_stride = lib_stride(v, 0), p.v_head_stride = lib_stride(v, 1);
    p.out_row_stride = lib_stride(out, 0), p.out_head_stride = lib_stride(out, 1);
  } else {
    p.batch_size = static_cast<int>(q.shape(0));
    p.seqlen_q = static_cast<int>(q.shape(1));
    p.num_heads = static_cast<int>(q.shape(2));
    p.head_dim = static_cast<int>(q.shape(3));
    p.seqlen_k = static_cast<int>(k.shape(1));
    p.num_heads_k = static_cast<int>(k.shape(2));
    if (paged) {
      // k, v: [num_pages, page_size, heads_k, head_dim]; every entry's cache spans its row of the
      // page table (seqused_k gives shorter ones), so seqlen_k is pages per row x page_size.
      const InArray& pt = *page_table;
      check_tensor("page_table", pt, 2, "[batch, pages_per_entry]");
      if (!is_dtype(pt.dtype(), nb::dlpack::dtype_code::Int, 32)) {
        throw nb::type_error(("page_table: expected int32, got " + dtype_name(pt.dtype())).c_str());
      }
      if (pt.shape(0) != q.shape(0)) {
        throw nb::value_error(("page_table: expected " + std::to_string(q.shape(0)) + " rows (q's batch), got shape " +
                               shape_string(pt))
                                  .c_str());
      }
      check_same_device("page_table", pt, device_id);
      p.page_table = static_cast<const int32_t*>(pt.data());
      p.page_table_stride = static_cast<int>(pt.shape(0) > 1 ? pt.stride(0) : pt.shape(1));
      p.page_size = static_cast<int>(k.shape(1));
      p.num_pages = static_cast<int>(k.shape(0));
      p.seqlen_k = static_cast<int>(checked_extent_product("page_table columns x page_size", static_cast<int64_t>(pt.shape(1)),
                                                         static_cast<int64_t>(k.shape(1))));
    }
    p.q_batch_stride = lib_stride(q, 0), p.q_row_stride = lib_stride(q, 1), p.q_head_stride = lib_stride(q, 2);
    p.k_batch_stride = lib_stride(k, 0), p.k_row_stride = lib_stride(k, 1), p.k_head_stride = lib_stride(k, 2);
    p.v_batch_stride = lib_stride(v, 0), p.v_row_stride = lib_stride(v, 1), p.v_head_stride = lib_stride(v, 2);
    p.out_batch_stride = lib_stride(out, 0), p.out_row_stride = lib_stride(out, 1),
    p.out_head_stride = lib_stride(out, 2);
  }
  if (seqused_k) {
    check_int32_vector("seqused_k", *seqused_k, static_cast<size_t>(p.batch_size), "[batch]", device_id);
    p.seqused_k = static_cast<const int32_t*>(seqused_k->data());
  }

  if (lse) {
    const OutArray& l = *lse;
    // [batch, heads, seqlen_q], or [heads, total_q] with cu_seqlens.
    const std::vector<size_t> expected =
        varlen ? std::vector<size_t>{q.shape(1), q.shape(0)} : std::vector<size_t>{q.shape(0), q.shape(2), q.shape(1)};
    const char* layout = varlen ? "[heads, total_q]" : "[batch, heads, seqlen_q]";
    check_tensor("lse", l, expected.size(), layout);
    if (!is_dtype(l.dtype(), nb::dlpack::dtype_code::Float, 32)) {
      throw nb::type_error(("lse: expected float32, got " + dtype_name(l.dtype())).c_str());
    }
    bool shape_ok = true;
    std::string expected_text = "(";
    for (size_t i = 0; i < expected.size(); ++i) {
      shape_ok = shape_ok && l.shape(i) == expected[i];
      expected_text += (i ? ", " : "") + std::to_string(expected[i]);
    }
    if (!shape_ok) {
      throw nb::value_error(("lse: expected shape " + std::string(layout) + " = " + expected_text + "), got " +
                             shape_string(l))
                                .c_str());
    }
    check_contiguous("lse", l);
    check_same_device("lse", l, device_id);
    p.softmax_lse = static_cast<float*>(l.data());
  }
  p.num_splits = int32_argument("num_splits", num_splits);
  return {p, device_id};
}

// Runs `call` (a library function of the params) on the arrays' device with the GIL released;
// a non-success status becomes FlashAttentionError.
template <class Call>
void call_library(int device_id, Call&& call) {
  int status;
  std::string message;
  {
    nb::gil_scoped_release release;
    // The library runs on the current device: make it the arrays' device for the call.
    int previous = -1;
    const cudaError_t got = cudaGetDevice(&previous);
    if (got != cudaSuccess) (void)cudaGetLastError();   // no device: the library reports it
    const bool switch_device = got == cudaSuccess && previous != device_id;
    if (switch_device && cudaSetDevice(device_id) != cudaSuccess) {
      (void)cudaGetLastError();
    }
    status = call();
    if (status != flash::kSuccess) message = flash::last_error_message();
    if (switch_device) cudaSetDevice(previous);
  }
  if (status != flash::kSuccess) {
    throw FlashCallError{status, std::string(flash::status_string(status)) + ": " + message};
  }
}

void forward(const InArray& q, const InArray& k, const InArray& v, const OutArray& out, bool causal,
             double softmax_scale, std::optional<OutArray> lse, nb::handle stream_obj,
             std::optional<std::string> dtype, std::optional<InArray> cu_seqlens_q,
             std::optional<InArray> cu_seqlens_k, nb::handle max_seqlen_q, nb::handle max_seqlen_k,
             std::optional<InArray> seqused_k, nb::handle window_size, double softcap,
             std::optional<InArray> page_table, nb::handle num_splits, std::optional<OutArray> workspace) {
  CallArgs a = make_params(q, k, v, out, causal, softmax_scale, lse, dtype, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                           max_seqlen_k, seqused_k, window_size, softcap, page_table, num_splits);
  if (workspace) {
    // Any dtype and shape: the library sees its bytes. C order, so that they are one range.
    const OutArray& w = *workspace;
    check_cuda("workspace", w);
    check_contiguous("workspace", w);
    check_same_device("workspace", w, a.device_id);
    a.params.workspace = w.data();
    a.params.workspace_bytes = w.nbytes();
  }
  const cudaStream_t stream = parse_stream(stream_obj);
  call_library(a.device_id, [&] { return flash::flash_attention_forward(a.params, stream); });
}

size_t workspace_size(const InArray& q, const InArray& k, const InArray& v, const OutArray& out, bool causal,
                      double softmax_scale, std::optional<OutArray> lse, std::optional<std::string> dtype,
                      std::optional<InArray> cu_seqlens_q, std::optional<InArray> cu_seqlens_k,
                      nb::handle max_seqlen_q, nb::handle max_seqlen_k, std::optional<InArray> seqused_k,
                      nb::handle window_size, double softcap, std::optional<InArray> page_table,
                      nb::handle num_splits) {
  const CallArgs a = make_params(q, k, v, out, causal, softmax_scale, lse, dtype, cu_seqlens_q, cu_seqlens_k,
                                 max_seqlen_q, max_seqlen_k, seqused_k, window_size, softcap, page_table, num_splits);
  size_t bytes = 0;
  call_library(a.device_id, [&] { return flash::flash_attention_workspace_size(a.params, &bytes); });
  return bytes;
}

std::vector<int> supported_head_dims(const std::string& dtype_name_) {
  const flash::DataType d = parse_dtype_name(dtype_name_);
  int dims[64];
  const int n = flash::supported_head_dims(d, dims, 64);
  return std::vector<int>(dims, dims + (n < 64 ? n : 64));
}

}  // namespace

NB_MODULE(_flash_sm90, m) {
  m.doc() = "FlashAttention forward for NVIDIA Hopper (SM90): the compiled part of flash_sm90.";
  m.attr("__version__") = FLASH_SM90_VERSION;

  g_flash_error = PyErr_NewExceptionWithDoc(
      "flash_sm90.FlashAttentionError",
      "The library rejected a call or CUDA failed. `status` holds the flash status code; the message is "
      "status_string(status) + ': ' + the library's detailed message.",
      PyExc_RuntimeError, nullptr);
  if (!g_flash_error) throw nb::python_error();
  m.attr("FlashAttentionError") = nb::handle(g_flash_error);   // the module keeps a reference too

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const FlashCallError& e) {
      nb::object exc = nb::steal(PyObject_CallFunction(g_flash_error, "s", e.message.c_str()));
      if (!exc.is_valid()) return;   // the constructor's error is already set
      if (PyObject_SetAttrString(exc.ptr(), "status", nb::int_(e.status).ptr()) != 0) return;
      PyErr_SetObject(g_flash_error, exc.ptr());
    }
  });

  m.def("forward", &forward, nb::arg("q"), nb::arg("k"), nb::arg("v"), nb::arg("out"), nb::kw_only(),
        nb::arg("causal") = false, nb::arg("softmax_scale") = 0.0, nb::arg("lse") = nb::none(),
        nb::arg("stream") = nb::none(), nb::arg("dtype") = nb::none(), nb::arg("cu_seqlens_q") = nb::none(),
        nb::arg("cu_seqlens_k") = nb::none(), nb::arg("max_seqlen_q") = nb::none(),
        nb::arg("max_seqlen_k") = nb::none(), nb::arg("seqused_k") = nb::none(),
        nb::arg("window_size") = nb::make_tuple(-1, -1), nb::arg("softcap") = 0.0,
        nb::arg("page_table") = nb::none(), nb::arg("num_splits") = 0, nb::arg("workspace") = nb::none(),
        "Attention forward into `out` (asynchronous, on `stream`). See flash_sm90.forward.");
  m.def("workspace_size", &workspace_size, nb::arg("q"), nb::arg("k"), nb::arg("v"), nb::arg("out"), nb::kw_only(),
        nb::arg("causal") = false, nb::arg("softmax_scale") = 0.0, nb::arg("lse") = nb::none(),
        nb::arg("dtype") = nb::none(), nb::arg("cu_seqlens_q") = nb::none(), nb::arg("cu_seqlens_k") = nb::none(),
        nb::arg("max_seqlen_q") = nb::none(), nb::arg("max_seqlen_k") = nb::none(),
        nb::arg("seqused_k") = nb::none(), nb::arg("window_size") = nb::make_tuple(-1, -1),
        nb::arg("softcap") = 0.0, nb::arg("page_table") = nb::none(), nb::arg("num_splits") = 0,
        "Workspace bytes forward() needs for these arguments (0: the call does not split the keys).");
  m.def("status_string", [](int status) { return std::string(flash::status_string(status)); }, nb::arg("status"),
        "The fixed text of a status code.");
  m.def("supported_head_dims", &supported_head_dims, nb::arg("dtype"),
        "Head dims that have a kernel for 'fp16', 'bf16' or 'fp8_e4m3', ascending.");

  m.attr("SUCCESS") = static_cast<int>(flash::kSuccess);
  m.attr("ERROR_NULL_POINTER") = static_cast<int>(flash::kErrorNullPointer);
  m.attr("ERROR_INVALID_SIZE") = static_cast<int>(flash::kErrorInvalidSize);
  m.attr("ERROR_HEAD_RATIO") = static_cast<int>(flash::kErrorHeadRatio);
  m.attr("ERROR_UNSUPPORTED_DTYPE") = static_cast<int>(flash::kErrorUnsupportedDtype);
  m.attr("ERROR_UNSUPPORTED_HEAD_DIM") = static_cast<int>(flash::kErrorUnsupportedHeadDim);
  m.attr("ERROR_MISALIGNED_POINTER") = static_cast<int>(flash::kErrorMisalignedPointer);
  m.attr("ERROR_MISALIGNED_STRIDE") = static_cast<int>(flash::kErrorMisalignedStride);
  m.attr("ERROR_SIZE_OVERFLOW") = static_cast<int>(flash::kErrorSizeOverflow);
  m.attr("ERROR_INVALID_SCALE") = static_cast<int>(flash::kErrorInvalidScale);
  m.attr("ERROR_ALIASING") = static_cast<int>(flash::kErrorAliasing);
  m.attr("ERROR_NO_DEVICE") = static_cast<int>(flash::kErrorNoDevice);
  m.attr("ERROR_UNSUPPORTED_DEVICE") = static_cast<int>(flash::kErrorUnsupportedDevice);
  m.attr("ERROR_CUDA_FAILURE") = static_cast<int>(flash::kErrorCudaFailure);
  m.attr("ERROR_INVALID_STRUCT") = static_cast<int>(flash::kErrorInvalidStruct);
  m.attr("ERROR_UNSUPPORTED_VERSION") = static_cast<int>(flash::kErrorUnsupportedVersion);
  m.attr("ERROR_INTERNAL") = static_cast<int>(flash::kErrorInternal);
  m.attr("ERROR_INVALID_WINDOW") = static_cast<int>(flash::kErrorInvalidWindow);
  m.attr("ERROR_INVALID_SOFTCAP") = static_cast<int>(flash::kErrorInvalidSoftcap);
  m.attr("ERROR_INVALID_VARLEN") = static_cast<int>(flash::kErrorInvalidVarlen);
  m.attr("ERROR_INVALID_SPLITS") = static_cast<int>(flash::kErrorInvalidSplits);
  m.attr("ERROR_INVALID_WORKSPACE") = static_cast<int>(flash::kErrorInvalidWorkspace);
  m.attr("ERROR_INVALID_PAGING") = static_cast<int>(flash::kErrorInvalidPaging);
  m.attr("ERROR_INVALID_DESCALE") = static_cast<int>(flash::kErrorInvalidDescale);
}
