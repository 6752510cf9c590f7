// A downstream program built against the installed package: it includes both public headers,
// links FlashAttentionSm90::flash_attention and checks that rejected calls report the right status
// and a message. Every call here is rejected before any CUDA call, so no GPU is needed.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "flash_api.h"
#include "flash_api_c.h"

namespace {

int g_failed = 0;
int g_passed = 0;

void expect(bool ok, const char* what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAILED: %s\n", what);
  }
}

// Aligned addresses that are never dereferenced: the checks reject the call before any launch.
void* fake(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

}  // namespace

int main() {
  // C++ API: all pointers null.
  flash::FlashAttentionParams params;
  int status = flash::flash_attention_forward(params, nullptr);
  std::printf("null q: %d (%s): %s\n", status, flash::status_string(status), flash::last_error_message());
  expect(status == flash::kErrorNullPointer, "null q returns kErrorNullPointer");
  expect(std::strstr(flash::last_error_message(), "q is null") != nullptr, "message names q");

  // C++ API: valid pointers, zero batch.
  params.q = fake(0x10000000);
  params.k = fake(0x20000000);
  params.v = fake(0x30000000);
  params.out = fake(0x40000000);
  params.batch_size = 0;
  params.seqlen_q = params.seqlen_k = 128;
  params.num_heads = params.num_heads_k = 8;
  params.head_dim = 128;
  status = flash::flash_attention_forward(params, nullptr);
  std::printf("batch 0: %d (%s): %s\n", status, flash::status_string(status), flash::last_error_message());
  expect(status == flash::kErrorInvalidSize, "batch_size 0 returns kErrorInvalidSize");
  expect(flash::last_error_message()[0] != '\0', "non-empty message after kErrorInvalidSize");
  expect(std::strstr(flash::last_error_message(), "batch_size") != nullptr, "message names batch_size");

  // C++ API: head ratio.
  params.batch_size = 1;
  params.num_heads_k = 3;
  status = flash::flash_attention_forward(params, nullptr);
  std::printf("heads 8/3: %d (%s): %s\n", status, flash::status_string(status), flash::last_error_message());
  expect(status == flash::kErrorHeadRatio, "num_heads 8, num_heads_k 3 returns kErrorHeadRatio");

  // C API through the installed header.
  flash_fwd_params_c c_params;
  expect(flash_c_params_init(&c_params) == FLASH_C_SUCCESS, "flash_c_params_init succeeds");
  status = flash_c_forward(&c_params, nullptr);
  std::printf("C null q: %d (%s): %s\n", status, flash_c_status_string(status), flash_c_last_error_message());
  expect(status == FLASH_C_ERROR_NULL_POINTER, "C API: null q returns FLASH_C_ERROR_NULL_POINTER");
  expect(flash_c_last_error_message()[0] != '\0', "C API: non-empty message");

  int dims[8] = {};
  const int count = flash::supported_head_dims(flash::DataType::FP16, dims, 8);
  std::printf("FP16 head dims with a kernel: %d\n", count);
  expect(count > 0, "supported_head_dims(FP16) is not empty");

  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
