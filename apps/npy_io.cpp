#include "npy_io.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>

#include "host/half_convert.h"
#include "host/host_tensor.h"

namespace flash::npy {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
constexpr size_t kVersionBytes = 2;
constexpr size_t kV1LengthBytes = 2;   // header length as little-endian uint16
constexpr size_t kV2LengthBytes = 4;   // ... as little-endian uint32
constexpr size_t kHeaderAlignment = 64;
constexpr size_t kV1MaxHeader = 0xFFFF;
// Far below what overflows size_t; no attention tensor comes near it.
constexpr uint64_t kMaxElements = uint64_t{1} << 48;

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw std::runtime_error(name + ": " + problem);
}

uint64_t read_le(const uint8_t* bytes, size_t width) {
  uint64_t value = 0;
  for (size_t b = 0; b < width; ++b) value |= uint64_t{bytes[b]} << (8 * b);
  return value;
}

uint64_t read_le(const std::string& bytes, size_t offset, size_t width) {
  return read_le(reinterpret_cast<const uint8_t*>(bytes.data()) + offset, width);
}

uint64_t element_count(const std::vector<int64_t>& shape, const std::string& name) {
  uint64_t count = 1;
  for (const int64_t dim : shape) {
    if (dim < 0) fail(name, "negative dimension in shape " + shape_string(shape));
    if (dim != 0 && count > kMaxElements / static_cast<uint64_t>(dim)) {
      fail(name, "shape " + shape_string(shape) + " has too many elements");
    }
    count *= static_cast<uint64_t>(dim);
  }
  return count;
}

bool parse_descr(const std::string& text, ElementType* type) {
  for (const ElementType t : {ElementType::kFloat16, ElementType::kFloat32, ElementType::kUInt16, ElementType::kUInt8}) {
    if (text == descr(t)) {
      *type = t;
      return true;
    }
  }
  return false;
}

// A recursive-descent reader of the one Python literal a .npy header holds:
//   {'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name) : text_(text), name_(name) {}

  void parse(Array* array) {
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (have_descr) error("'descr' given twice");
        have_descr = true;
        const std::string d = string_literal();
        if (!parse_descr(d, &array->type)) {
          if (!d.empty() && d[0] == '>') {
            error("big-endian data ('" + d + "') is not supported; save it little-endian, e.g. "
                  "a.astype(a.dtype.newbyteorder('<'))");
          }
          std::string hint;
          if (d == "<f8") hint = "; convert float64 with a.astype(np.float32)";
          error("unsupported dtype '" + d + "' (supported: '<f2' float16, '<f4' float32, '<u2' raw bf16 bits, "
                "'|u1' raw fp8 e4m3 bytes)" + hint);
        }
      } else if (key == "fortran_order") {
        if (have_order) error("'fortran_order' given twice");
        have_order = true;
        const std::string word = identifier();
        if (word == "True") {
          error("fortran_order is True; only C-order arrays are read (save np.ascontiguousarray(a))");
        }
        if (word != "False") error("fortran_order must be True or False, got '" + word + "'");
      } else if (key == "shape") {
        if (have_shape) error("'shape' given twice");
        have_shape = true;
        array->shape = shape_tuple();
      } else {
        error("unexpected key '" + key + "' in the header (expected descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') error(std::string("expected ',' or '}' in the header at offset ") + std::to_string(pos_));
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) error("unexpected text after the header dictionary");
    if (!have_descr) error("the header has no 'descr'");
    if (!have_order) error("the header has no 'fortran_order'");
    if (!have_shape) error("the header has no 'shape'");
  }

 private:
  [[noreturn]] void error(const std::string& problem) const { fail(name_, "bad .npy header: " + problem); }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  void expect(char c) {
    skip_space();
    if (peek() != c) {
      error(std::string("expected '") + c + "' at offset " + std::to_string(pos_) + " of the header");
    }
    ++pos_;
  }

  std::string string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') error("expected a quoted string at offset " + std::to_string(pos_));
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string::npos) error("unterminated string in the header");
    std::string value = text_.substr(pos_ + 1, end - pos_ - 1);
    if (value.find('\\') != std::string::npos) error("escapes in header strings are not supported");
    pos_ = end + 1;
    return value;
  }

  std::string identifier() {
    const size_t start = pos_;
    while (pos_ < text_.size() && std::isalpha(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  // "()", "(3,)", "(2, 3)" or "(2, 3,)"; "(3)" is the integer 3 in Python, not a shape.
  std::vector<int64_t> shape_tuple() {
    expect('(');
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) {
        error("shape dimensions must be non-negative integers (at offset " + std::to_string(pos_) + ")");
      }
      int64_t dim = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (dim > (std::numeric_limits<int64_t>::max() - 9) / 10) error("shape dimension too large");
        dim = dim * 10 + (text_[pos_++] - '0');
      }
      shape.push_back(dim);
      skip_space();
      trailing_comma = peek() == ',';
      if (trailing_comma) {
        ++pos_;
      } else if (peek() != ')') {
        error("expected ',' or ')' in the shape at offset " + std::to_string(pos_));
      }
    }
    ++pos_;
    if (shape.size() == 1 && !trailing_comma) error("shape (" + std::to_string(shape[0]) + ") is not a tuple (write (" +
                                                    std::to_string(shape[0]) + ",))");
    return shape;
  }

  const std::string& text_;
  const std::string& name_;
  size_t pos_ = 0;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

void append_le(uint64_t value, size_t width, std::string* out) {
  for (size_t b = 0; b < width; ++b) out->push_back(static_cast<char>((value >> (8 * b)) & 0xFF));
}

ElementType native_type(DataType dtype) {
  switch (dtype) {
    case DataType::FP16: return ElementType::kFloat16;
    case DataType::BF16: return ElementType::kUInt16;
    case DataType::FP8_E4M3: return ElementType::kUInt8;
    case DataType::AUTO: break;
  }
  throw std::invalid_argument("npy: unknown dtype");
}

}  // namespace

const char* descr(ElementType type) {
  switch (type) {
    case ElementType::kFloat16: return "<f2";
    case ElementType::kFloat32: return "<f4";
    case ElementType::kUInt16: return "<u2";
    case ElementType::kUInt8: return "|u1";
  }
  return "?";
}

size_t item_bytes(ElementType type) {
  switch (type) {
    case ElementType::kFloat16: return 2;
    case ElementType::kFloat32: return 4;
    case ElementType::kUInt16: return 2;
    case ElementType::kUInt8: return 1;
  }
  return 0;
}

size_t Array::elements() const {
  size_t count = 1;
  for (const int64_t dim : shape) count *= static_cast<size_t>(dim);
  return count;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

Array parse(const std::string& bytes, const std::string& name) {
  if (bytes.size() < kMagicBytes || bytes.compare(0, kMagicBytes, kMagic, kMagicBytes) != 0) {
    fail(name, "not a .npy file (no \\x93NUMPY magic at the start)");
  }
  if (bytes.size() < kMagicBytes + kVersionBytes) fail(name, "truncated .npy file (no format version)");
  Array array;
  const int major = static_cast<uint8_t>(bytes[kMagicBytes]);
  const int minor = static_cast<uint8_t>(bytes[kMagicBytes + 1]);
  if ((major != 1 && major != 2) || minor != 0) {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (1.0 and 2.0 are read)");
  }
  array.version_major = major;
  const size_t length_bytes = major == 1 ? kV1LengthBytes : kV2LengthBytes;
  const size_t header_start = kMagicBytes + kVersionBytes + length_bytes;
  if (bytes.size() < header_start) fail(name, "truncated .npy file (no header length)");
  const uint64_t header_length = read_le(bytes, kMagicBytes + kVersionBytes, length_bytes);
  if (bytes.size() - header_start < header_length) {
    fail(name, "truncated .npy file: the header should have " + std::to_string(header_length) + " bytes, the file has " +
                   std::to_string(bytes.size() - header_start) + " after the preamble");
  }
  const std::string header = bytes.substr(header_start, header_length);
  if (header.empty() || header.back() != '\n') fail(name, "bad .npy header: it does not end with a newline");
  HeaderParser(header, name).parse(&array);

  const uint64_t count = element_count(array.shape, name);
  const uint64_t expected = count * item_bytes(array.type);
  const size_t data_start = header_start + header_length;
  const uint64_t found = bytes.size() - data_start;
  if (found < expected) {
    fail(name, "truncated data: shape " + shape_string(array.shape) + " of '" + descr(array.type) + "' needs " +
                   std::to_string(expected) + " bytes, the file has " + std::to_string(found));
  }
  if (found > expected) {
    fail(name, std::to_string(found - expected) + " bytes after the data of shape " + shape_string(array.shape) +
                   " of '" + descr(array.type) + "' (size mismatch)");
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_start), bytes.end());
  return array;
}

Array read(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes;
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) bytes.append(buffer, got);
  if (std::ferror(file.get())) fail(path, "read error");
  return parse(bytes, path);
}

std::string serialize(ElementType type, const std::vector<int64_t>& shape, const std::vector<uint8_t>& data) {
  const uint64_t count = element_count(shape, "npy::serialize");
  if (count * item_bytes(type) != data.size()) {
    throw std::invalid_argument("npy::serialize: shape " + shape_string(shape) + " of '" + descr(type) + "' needs " +
                                std::to_string(count * item_bytes(type)) + " bytes, got " +
                                std::to_string(data.size()));
  }
  std::string dict = std::string("{'descr': '") + descr(type) + "', 'fortran_order': False, 'shape': " +
                     shape_string(shape) + ", }";
  // Pad with spaces and a final newline so that the data starts at a multiple of 64 bytes.
  auto padded = [&dict](size_t preamble) {
    const size_t unpadded = preamble + dict.size() + 1;
    return dict + std::string((kHeaderAlignment - unpadded % kHeaderAlignment) % kHeaderAlignment, ' ') + "\n";
  };
  std::string header = padded(kMagicBytes + kVersionBytes + kV1LengthBytes);
  const bool v2 = header.size() > kV1MaxHeader;
  if (v2) header = padded(kMagicBytes + kVersionBytes + kV2LengthBytes);

  std::string out(kMagic, kMagicBytes);
  out.push_back(static_cast<char>(v2 ? 2 : 1));
  out.push_back(0);
  append_le(header.size(), v2 ? kV2LengthBytes : kV1LengthBytes, &out);
  out += header;
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  return out;
}

void write(const std::string& path, ElementType type, const std::vector<int64_t>& shape,
           const std::vector<uint8_t>& data) {
  const std::string bytes = serialize(type, shape, data);
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (!file) fail(path, std::string("cannot open for writing: ") + std::strerror(errno));
  if (std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
    fail(path, std::string("write error: ") + std::strerror(errno));
  }
  if (std::fclose(file.release()) != 0) fail(path, std::string("write error: ") + std::strerror(errno));
}

std::vector<uint16_t> to_elements(const Array& array, DataType dtype, const std::string& name, bool* converted) {
  const size_t n = array.elements();
  const size_t width = item_bytes(array.type);
  std::vector<uint16_t> bits(n);
  *converted = false;
  const ElementType native = native_type(dtype);
  if (array.type == native) {
    for (size_t i = 0; i < n; ++i) bits[i] = static_cast<uint16_t>(read_le(array.data.data() + i * width, width));
    return bits;
  }
  if (array.type == ElementType::kUInt16 || array.type == ElementType::kUInt8) {
    const char* holds = array.type == ElementType::kUInt16 ? "raw bf16 bits" : "raw fp8 e4m3 bytes";
    const char* wants = array.type == ElementType::kUInt16 ? "bf16" : "fp8";
    fail(name, std::string("'") + descr(array.type) + "' holds " + holds + ", but the run's dtype is " +
                   host::dtype_name(dtype) + " (use --dtype " + wants + ", or save float16/float32 values)");
  }
  for (size_t i = 0; i < n; ++i) {
    float value = 0.0f;
    if (array.type == ElementType::kFloat32) {
      const auto word = static_cast<uint32_t>(read_le(array.data.data() + i * width, width));
      std::memcpy(&value, &word, sizeof value);
    } else {
      value = host::fp16_bits_to_float(static_cast<uint16_t>(read_le(array.data.data() + i * width, width)));
    }
    bits[i] = host::encode(dtype, value);
  }
  *converted = true;
  return bits;
}

void write_elements(const std::string& path, DataType dtype, const uint16_t* bits, size_t n,
                    const std::vector<int64_t>& shape) {
  write(path, native_type(dtype), shape, host::storage_bytes(dtype, bits, n));
}

void write_float32(const std::string& path, const float* values, size_t n, const std::vector<int64_t>& shape) {
  std::vector<uint8_t> bytes(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) {
    uint32_t word = 0;
    std::memcpy(&word, &values[i], sizeof word);
    for (size_t b = 0; b < sizeof word; ++b) bytes[i * sizeof word + b] = static_cast<uint8_t>(word >> (8 * b));
  }
  write(path, ElementType::kFloat32, shape, bytes);
}

}  // namespace flash::npy
