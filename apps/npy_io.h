// A minimal, strict reader and writer of NumPy .npy files, so that tensors dumped from a model can
// go through flash_attention_exec and come back. Only what the CLI needs: C-order, little-endian
// arrays of the element types below; format versions 1.0 and 2.0 are read, 1.0 is written (2.0
// only when the header does not fit 1.0's 16-bit length). Every failure throws std::runtime_error
// whose message starts with the file name (or the name given for an in-memory buffer) and says
// what is wrong.
//
// bfloat16 has no NumPy dtype, so bf16 tensors are stored losslessly as '<u2' holding the raw bf16
// bit patterns (the upper 16 bits of the float32 of the same value). In Python:
//   bits = x_bf16.view(np.uint16)                                # write (e.g. from ml_dtypes.bfloat16)
//   x = np.load(p).view(ml_dtypes.bfloat16)                      # read with ml_dtypes, or
//   x = (np.load(p).astype(np.uint32) << 16).view(np.float32)    # read as exact float32
// In PyTorch: t.view(torch.int16).numpy().view(np.uint16) and torch.from_numpy(a.view(np.int16)).view(torch.bfloat16).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "flash_api.h"

namespace flash::npy {

// The element types this reader knows, by their .npy descr.
enum class ElementType {
  kFloat16,   // '<f2': IEEE half
  kFloat32,   // '<f4': IEEE single
  kUInt16,    // '<u2': raw 16-bit patterns (the bf16 convention above)
  kUInt8,     // '|u1': raw bytes (fp8 e4m3 bit patterns)
};

// "<f2", "<f4", "<u2" or "|u1".
const char* descr(ElementType type);
// Bytes per element.
size_t item_bytes(ElementType type);

struct Array {
  ElementType type = ElementType::kFloat32;
  std::vector<int64_t> shape;   // empty for a 0-d array (one element)
  std::vector<uint8_t> data;    // little-endian elements, C order
  int version_major = 1;        // of the file it was read from
  size_t elements() const;
};

// Parses a whole .npy file held in `bytes`; `name` (usually the path) starts every error message.
Array parse(const std::string& bytes, const std::string& name);
// Reads and parses the file at `path`.
Array read(const std::string& path);

// The .npy bytes of an array of `type` and `shape` whose little-endian elements are `data`
// (data.size() must be the product of shape times item_bytes(type)).
std::string serialize(ElementType type, const std::vector<int64_t>& shape, const std::vector<uint8_t>& data);
// Writes serialize(...) to `path`, replacing it.
void write(const std::string& path, ElementType type, const std::vector<int64_t>& shape,
           const std::vector<uint8_t>& data);

// "(2, 3)", "(3,)" or "()": a shape as NumPy prints it.
std::string shape_string(const std::vector<int64_t>& shape);

// --- Conversions between .npy arrays and the CLI's stored elements (host::encode/decode bits). ---

// The stored elements of `dtype` that `array` holds. A file that holds dtype's own bits ('<f2' for
// fp16, '<u2' for bf16, '|u1' for fp8) is taken as-is. A float file ('<f4', or '<f2' for bf16/fp8)
// is rounded to dtype (nearest, ties to even; fp8 saturates) and *converted is set; the caller says
// so. Raw bits of another type ('<u2' or '|u1' that is not dtype's) are an error naming `name`.
std::vector<uint16_t> to_elements(const Array& array, DataType dtype, const std::string& name, bool* converted);

// Saves `n` stored elements of a 16-bit `dtype` (fp16 as '<f2', bf16 as '<u2' raw bits) with `shape`.
void write_elements(const std::string& path, DataType dtype, const uint16_t* bits, size_t n,
                    const std::vector<int64_t>& shape);
// Saves fp32 values as '<f4'.
void write_float32(const std::string& path, const float* values, size_t n, const std::vector<int64_t>& shape);

}  // namespace flash::npy
