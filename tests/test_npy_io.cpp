// The .npy reader/writer behind flash_attention_exec's --load-q/k/v and --save-out/--save-lse:
// bit-exact round trips per dtype, hand-written headers (v1.0, v2.0), every rejection, the
// conversions to the run's dtype, and (when numpy is importable) files written and
// read by numpy itself. Runs without a GPU.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "host/half_convert.h"
#include "host/host_tensor.h"
#include "npy_io.h"

namespace {

using flash::DataType;
namespace npy = flash::npy;

constexpr int kBitPatterns16 = 1 << 16;

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "flash_npy_" + std::to_string(::getpid()) + "_" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A .npy file by hand: magic, version, header length, `dict` padded with spaces and a newline so
// that the data starts at a multiple of `align` (0: no padding, just the newline), then `data`.
std::string hand_npy(int major, const std::string& dict, const std::string& data, size_t align = 64) {
  const size_t length_bytes = major == 1 ? 2 : 4;
  const size_t preamble = 8 + length_bytes;
  std::string header = dict;
  if (align) header += std::string((align - (preamble + dict.size() + 1) % align) % align, ' ');
  header += "\n";
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t b = 0; b < length_bytes; ++b) out.push_back(static_cast<char>((header.size() >> (8 * b)) & 0xFF));
  return out + header + data;
}

std::string le16(const std::vector<uint16_t>& values) {
  std::string out;
  for (const uint16_t v : values) {
    out.push_back(static_cast<char>(v & 0xFF));
    out.push_back(static_cast<char>(v >> 8));
  }
  return out;
}

std::string le32f(const std::vector<float>& values) {
  std::string out;
  for (const float f : values) {
    uint32_t w;
    std::memcpy(&w, &f, sizeof w);
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((w >> (8 * b)) & 0xFF));
  }
  return out;
}

// The message of the runtime_error that parsing `bytes` as `name` throws ("" if none).
std::string parse_error(const std::string& bytes, const std::string& name = "bad.npy") {
  try {
    npy::parse(bytes, name);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << name;
  return {};
}

void expect_rejected(const std::string& bytes, const std::string& words) {
  const std::string error = parse_error(bytes, "t.npy");
  EXPECT_EQ(error.rfind("t.npy: ", 0), 0u) << error;
  EXPECT_NE(error.find(words), std::string::npos) << error;
}

std::vector<uint16_t> all_patterns() {
  std::vector<uint16_t> bits(kBitPatterns16);
  for (int i = 0; i < kBitPatterns16; ++i) bits[i] = static_cast<uint16_t>(i);
  return bits;
}

// --- Round trips ----------------------------------------------------------------------------------

TEST(NpyRoundTrip, Fp16EveryBitPatternExact) {
  const std::string path = temp_path("fp16.npy");
  const std::vector<uint16_t> bits = all_patterns();
  npy::write_elements(path, DataType::FP16, bits.data(), bits.size(), {2, 128, 4, 64});
  const npy::Array array = npy::read(path);
  EXPECT_EQ(array.type, npy::ElementType::kFloat16);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 128, 4, 64}));
  EXPECT_EQ(array.version_major, 1);
  bool converted = true;
  EXPECT_EQ(npy::to_elements(array, DataType::FP16, path, &converted), bits);  // NaN payloads included
  EXPECT_FALSE(converted);
  std::remove(path.c_str());
}

TEST(NpyRoundTrip, Bf16RawBitsEveryPatternExact) {
  const std::string path = temp_path("bf16.npy");
  const std::vector<uint16_t> bits = all_patterns();
  npy::write_elements(path, DataType::BF16, bits.data(), bits.size(), {1, 256, 2, 128});
  const npy::Array array = npy::read(path);
  EXPECT_EQ(array.type, npy::ElementType::kUInt16);
  bool converted = true;
  EXPECT_EQ(npy::to_elements(array, DataType::BF16, path, &converted), bits);
  EXPECT_FALSE(converted);
  std::remove(path.c_str());
}

TEST(NpyRoundTrip, Fp32Exact) {
  const std::string path = temp_path("fp32.npy");
  const std::vector<float> values = {0.0f, -0.0f, 1.0f, -2.5f, 3.14159274f, std::numeric_limits<float>::denorm_min(),
                                     std::numeric_limits<float>::max(), -std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::quiet_NaN(), 1e-30f, 65504.0f, 12345.678f};
  npy::write_float32(path, values.data(), values.size(), {2, 2, 3});
  const npy::Array array = npy::read(path);
  EXPECT_EQ(array.type, npy::ElementType::kFloat32);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 2, 3}));
  ASSERT_EQ(array.data.size(), values.size() * 4);
  EXPECT_EQ(std::string(array.data.begin(), array.data.end()), le32f(values));
  std::remove(path.c_str());
}

TEST(NpyWrite, HeaderIsNumpysV1AndPaddedTo64) {
  const std::string bytes = npy::serialize(npy::ElementType::kFloat16, {3}, {1, 0, 2, 0, 3, 0});
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_length = static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8;
  EXPECT_EQ((10 + header_length) % 64, 0u);
  EXPECT_EQ(bytes.size(), 10 + header_length + 6);
  const std::string header = bytes.substr(10, header_length);
  EXPECT_EQ(header.rfind("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", 0), 0u) << header;
  EXPECT_EQ(header.back(), '\n');
}

TEST(NpyWrite, HugeHeaderUsesV2) {
  // 30000 dimensions of 1 do not fit the 16-bit header length of version 1.0.
  const std::vector<int64_t> shape(30000, 1);
  const std::string bytes = npy::serialize(npy::ElementType::kFloat32, shape, {0, 0, 0x80, 0x3F});
  EXPECT_EQ(bytes[6], 2);
  const uint32_t header_length = static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8 |
                                 static_cast<uint8_t>(bytes[10]) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(bytes[11])) << 24;
  EXPECT_EQ((12 + header_length) % 64, 0u);
  const npy::Array array = npy::parse(bytes, "v2.npy");
  EXPECT_EQ(array.version_major, 2);
  EXPECT_EQ(array.shape, shape);
}

TEST(NpyWrite, SizeMismatchAndUnwritablePath) {
  EXPECT_THROW(npy::serialize(npy::ElementType::kFloat16, {2, 2}, {0, 0}), std::invalid_argument);
  const uint16_t one = 0x3C00;
  try {
    npy::write_elements("/nonexistent-dir/out.npy", DataType::FP16, &one, 1, {1});
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/out.npy: cannot open for writing"), std::string::npos)
        << e.what();
  }
}

// --- Hand-written headers -------------------------------------------------------------------------

TEST(NpyParse, HandWrittenV1PaddedTo64) {
  const std::string bytes =
      hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", le16({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(bytes.size() % 64, 12u % 64);  // 64-byte aligned header, then 12 data bytes
  const npy::Array array = npy::parse(bytes, "h.npy");
  EXPECT_EQ(array.type, npy::ElementType::kFloat16);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(array.elements(), 6u);
  EXPECT_EQ(array.data[2], 2);
}

TEST(NpyParse, HandWrittenV2) {
  const npy::Array array =
      npy::parse(hand_npy(2, "{'descr': '<u2', 'fortran_order': False, 'shape': (4,), }", le16({9, 8, 7, 6})), "h.npy");
  EXPECT_EQ(array.version_major, 2);
  EXPECT_EQ(array.type, npy::ElementType::kUInt16);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{4}));
}

TEST(NpyParse, TrailingCommaKeyOrderQuotesAndOldAlignment) {
  // One-element shape with its trailing comma, keys in another order, double quotes, no trailing
  // comma in the dict, and no 64-byte padding (older numpy aligned to 16).
  const npy::Array a =
      npy::parse(hand_npy(1, "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<f4\"}", le32f({1, 2, 3}), 0),
                 "h.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(a.type, npy::ElementType::kFloat32);
  // A trailing comma after the last dimension of a longer shape, and a 0-d array.
  EXPECT_EQ(npy::parse(hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2,), }", le16({0, 0})),
                       "h.npy")
                .shape,
            (std::vector<int64_t>{1, 2}));
  const npy::Array scalar = npy::parse(hand_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                                                le32f({5})),
                                       "h.npy");
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.elements(), 1u);
  // A zero-sized array has no data bytes.
  EXPECT_EQ(npy::parse(hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (0, 4), }", ""), "h.npy")
                .elements(),
            0u);
  EXPECT_EQ(npy::shape_string({3}), "(3,)");
  EXPECT_EQ(npy::shape_string({2, 3}), "(2, 3)");
  EXPECT_EQ(npy::shape_string({}), "()");
}

// --- Rejections -----------------------------------------------------------------------------------

TEST(NpyReject, FortranOrder) {
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'fortran_order': True, 'shape': (2, 3), }", le16({1, 2, 3, 4, 5, 6})),
                  "fortran_order is True");
}

TEST(NpyReject, BigEndianAndUnknownDtypes) {
  expect_rejected(hand_npy(1, "{'descr': '>f2', 'fortran_order': False, 'shape': (1,), }", le16({1})),
                  "big-endian data ('>f2')");
  expect_rejected(hand_npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", le32f({1})),
                  "unsupported dtype '<i4'");
  expect_rejected(hand_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", le32f({1, 2})),
                  "astype(np.float32)");
  expect_rejected(hand_npy(1, "{'descr': '<V2', 'fortran_order': False, 'shape': (1,), }", le16({1})),
                  "unsupported dtype '<V2'");
}

TEST(NpyReject, TruncatedAndOversizedData) {
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", le16({1, 2, 3, 4, 5})),
                  "truncated data: shape (2, 3) of '<f2' needs 12 bytes, the file has 10");
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", le16({1, 2, 3})),
                  "size mismatch");
  // Cut inside the header.
  const std::string whole = hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", le16({1, 2}));
  expect_rejected(whole.substr(0, 30), "truncated .npy file");
  expect_rejected(whole.substr(0, 9), "truncated .npy file");
}

TEST(NpyReject, BadMagicVersionAndHeaders) {
  expect_rejected("PK\x03\x04 not numpy", "not a .npy file");
  expect_rejected("", "not a .npy file");
  std::string v3 = hand_npy(2, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", le16({1}));
  v3[6] = 3;
  expect_rejected(v3, "unsupported .npy format version 3.0");
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'shape': (1,), }", le16({1})), "no 'fortran_order'");
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3), }", le16({1, 2, 3})),
                  "is not a tuple");
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (-3,), }", le16({1})),
                  "non-negative integers");
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), 'x': 1}", le16({1})),
                  "unexpected key 'x'");
  expect_rejected(hand_npy(1, "{'descr': '<f2', 'fortran_order': Maybe, 'shape': (1,), }", le16({1})),
                  "fortran_order must be True or False");
  std::string no_newline = hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", le16({1}));
  no_newline[no_newline.size() - 3] = ' ';   // the newline before the 2 data bytes
  expect_rejected(no_newline, "does not end with a newline");
}

TEST(NpyReject, MissingFileNamesThePath) {
  try {
    npy::read(temp_path("does-not-exist.npy"));
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does-not-exist.npy: cannot open"), std::string::npos) << e.what();
  }
}

// --- Conversion to the run's dtype ----------------------------------------------------------------

TEST(NpyConvert, Float32IsRoundedToNearestEven) {
  // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even gives 1.0; 1 + 3*2^-8 rounds up.
  const std::vector<float> values = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.0f, 0.1f};
  const npy::Array array = npy::parse(
      hand_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", le32f(values)), "f.npy");
  bool converted = false;
  const std::vector<uint16_t> bf16 = npy::to_elements(array, DataType::BF16, "f.npy", &converted);
  EXPECT_TRUE(converted);
  EXPECT_EQ(bf16, (std::vector<uint16_t>{0x3F80, 0x3F82, 0xC000, flash::host::float_to_bf16_bits(0.1f)}));
  const std::vector<uint16_t> fp16 = npy::to_elements(array, DataType::FP16, "f.npy", &converted);
  EXPECT_EQ(fp16[2], 0xC000);
  EXPECT_EQ(fp16[3], flash::host::float_to_fp16_bits(0.1f));
  // float16 files feed bf16 and fp8 runs through the same rounding.
  const npy::Array half = npy::parse(
      hand_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", le16({0x3C00})), "h.npy");
  EXPECT_EQ(npy::to_elements(half, DataType::BF16, "h.npy", &converted), (std::vector<uint16_t>{0x3F80}));
  EXPECT_TRUE(converted);
  EXPECT_EQ(npy::to_elements(half, DataType::FP8_E4M3, "h.npy", &converted),
            (std::vector<uint16_t>{flash::host::encode(DataType::FP8_E4M3, 1.0)}));
}

TEST(NpyConvert, RawBitsOfAnotherTypeAreAnError) {
  const npy::Array raw = npy::parse(
      hand_npy(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (1,), }", le16({0x3F80})), "q.npy");
  bool converted = false;
  try {
    npy::to_elements(raw, DataType::FP16, "q.npy", &converted);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    const std::string error = e.what();
    EXPECT_EQ(error.rfind("q.npy: ", 0), 0u) << error;
    EXPECT_NE(error.find("raw bf16 bits"), std::string::npos) << error;
    EXPECT_NE(error.find("--dtype bf16"), std::string::npos) << error;
  }
  const npy::Array bytes =
      npy::parse(hand_npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", "\x38\xB8"), "q8.npy");
  EXPECT_EQ(npy::to_elements(bytes, DataType::FP8_E4M3, "q8.npy", &converted), (std::vector<uint16_t>{0x38, 0xB8}));
  EXPECT_FALSE(converted);
  EXPECT_THROW(npy::to_elements(bytes, DataType::BF16, "q8.npy", &converted), std::runtime_error);
}

// --- numpy itself, when it is installed -----------------------------------------------------------

bool numpy_available() {
  const std::string command = std::string("\"") + FLASH_PYTHON + "\" -c \"import numpy\" >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

TEST(NpyNumpy, FilesFromNumpyAndBack) {
  if (!numpy_available()) GTEST_SKIP() << "python3 with numpy is not available";
  const std::string dir = temp_path("numpy_");
  const std::string script_path = dir + "gen.py";
  // numpy writes f2, f4 and the bf16 convention (top 16 bits of float32 values that are exact bf16).
  write_bytes(script_path,
              "import sys, numpy as np\n"
              "d = sys.argv[1]\n"
              "x = (np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) - 11.5) / 4\n"
              "np.save(d + 'f2.npy', x.astype(np.float16))\n"
              "np.save(d + 'f4.npy', x)\n"
              "np.save(d + 'u2.npy', (x.view(np.uint32) >> 16).astype(np.uint16))\n");
  ASSERT_EQ(std::system(("\"" + std::string(FLASH_PYTHON) + "\" \"" + script_path + "\" \"" + dir + "\"").c_str()), 0);
  std::vector<float> expected(24);
  for (int i = 0; i < 24; ++i) expected[i] = (static_cast<float>(i) - 11.5f) / 4;
  bool converted = false;
  for (const auto& [file, dtype] : {std::pair<const char*, DataType>{"f2.npy", DataType::FP16},
                                    {"f4.npy", DataType::BF16}, {"u2.npy", DataType::BF16}}) {
    const npy::Array array = npy::read(dir + file);
    EXPECT_EQ(array.shape, (std::vector<int64_t>{1, 2, 3, 4})) << file;
    const std::vector<uint16_t> bits = npy::to_elements(array, dtype, file, &converted);
    for (int i = 0; i < 24; ++i) EXPECT_EQ(flash::host::decode(dtype, bits[i]), expected[i]) << file << " " << i;
  }
  // And numpy reads what we write: fp16, bf16 raw bits and fp32 (LSE-shaped).
  std::vector<uint16_t> half(24), bf16(24);
  for (int i = 0; i < 24; ++i) {
    half[i] = flash::host::float_to_fp16_bits(expected[i]);
    bf16[i] = flash::host::float_to_bf16_bits(expected[i]);
  }
  npy::write_elements(dir + "out_f2.npy", DataType::FP16, half.data(), half.size(), {1, 2, 3, 4});
  npy::write_elements(dir + "out_bf16.npy", DataType::BF16, bf16.data(), bf16.size(), {1, 2, 3, 4});
  npy::write_float32(dir + "out_lse.npy", expected.data(), expected.size(), {2, 3, 4});
  const std::string check_path = dir + "check.py";
  write_bytes(check_path,
              "import sys, numpy as np\n"
              "d = sys.argv[1]\n"
              "x = (np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) - 11.5) / 4\n"
              "a = np.load(d + 'out_f2.npy'); assert a.dtype == np.float16 and (a == x).all(), a\n"
              "b = np.load(d + 'out_bf16.npy'); assert b.dtype == np.uint16 and b.shape == x.shape\n"
              "assert ((b.astype(np.uint32) << 16).view(np.float32) == x).all()\n"
              "l = np.load(d + 'out_lse.npy'); assert l.dtype == np.float32 and (l == x.reshape(2, 3, 4)).all()\n");
  EXPECT_EQ(std::system(("\"" + std::string(FLASH_PYTHON) + "\" \"" + check_path + "\" \"" + dir + "\"").c_str()), 0);
  for (const char* name : {"gen.py", "check.py", "f2.npy", "f4.npy", "u2.npy", "out_f2.npy", "out_bf16.npy",
                           "out_lse.npy"}) {
    std::remove((dir + name).c_str());
  }
}

}  // namespace
