/* The C interface (include/flash_api_c.h), compiled as C99: the header must be plain C and every
 * call below is rejected before any CUDA call, so no GPU is needed. Prints "N passed, M failed";
 * returns non-zero on any failure. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flash_api_c.h"

static int g_passed = 0;
static int g_failed = 0;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (cond) {                                                       \
      ++g_passed;                                                     \
    } else {                                                          \
      ++g_failed;                                                     \
      printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                 \
  } while (0)

/* Size of the version-1 layout: everything up to and including out_head_stride; of version 2, up
 * to reserved1. */
static const size_t kV1Size = offsetof(flash_fwd_params_c, out_head_stride) + sizeof(int64_t);
static const size_t kV2Size = offsetof(flash_fwd_params_c, reserved1) + sizeof(int32_t);

/* Aligned, far-apart addresses that are never dereferenced. */
static void* fake(uintptr_t address) { return (void*)address; }

/* A valid problem (q/out [1, 128, 8, 128], k/v [1, 128, 8, 128], FP16) on fake pointers. */
static void valid_params(flash_fwd_params_c* p) {
  flash_c_params_init(p);
  p->q = fake(0x10000000u);
  p->k = fake(0x20000000u);
  p->v = fake(0x30000000u);
  p->out = fake(0x40000000u);
  p->batch_size = 1;
  p->seqlen_q = 128;
  p->seqlen_k = 128;
  p->num_heads = 8;
  p->num_heads_k = 8;
  p->head_dim = 128;
  p->dtype = FLASH_C_DTYPE_FP16;
}

static int contains(const char* text, const char* part) { return text != NULL && strstr(text, part) != NULL; }

static void test_params_init(void) {
  flash_fwd_params_c p;
  memset(&p, 0xAB, sizeof p);
  CHECK(flash_c_params_init(&p) == FLASH_C_SUCCESS);
  CHECK(p.struct_size == sizeof(flash_fwd_params_c));
  CHECK(p.version == FLASH_C_PARAMS_VERSION);
  CHECK(p.q == NULL && p.k == NULL && p.v == NULL && p.out == NULL && p.softmax_lse == NULL);
  CHECK(p.batch_size == 0 && p.seqlen_q == 0 && p.seqlen_k == 0);
  CHECK(p.num_heads == 0 && p.num_heads_k == 0 && p.head_dim == 0);
  CHECK(p.dtype == FLASH_C_DTYPE_FP16);
  CHECK(p.is_causal == 0);
  CHECK(p.softmax_scale == 0.0f);
  CHECK(p.reserved0 == 0);
  CHECK(p.q_batch_stride == 0 && p.q_row_stride == 0 && p.q_head_stride == 0);
  CHECK(p.k_batch_stride == 0 && p.k_row_stride == 0 && p.k_head_stride == 0);
  CHECK(p.v_batch_stride == 0 && p.v_row_stride == 0 && p.v_head_stride == 0);
  CHECK(p.out_batch_stride == 0 && p.out_row_stride == 0 && p.out_head_stride == 0);
  CHECK(p.cu_seqlens_q == NULL && p.cu_seqlens_k == NULL && p.seqused_k == NULL);
  CHECK(p.total_q == 0 && p.total_k == 0);
  CHECK(p.window_size_left == -1 && p.window_size_right == -1);
  CHECK(p.softcap == 0.0f);
  CHECK(p.reserved1 == 0);

  CHECK(flash_c_params_init(NULL) == FLASH_C_ERROR_INVALID_STRUCT);
  CHECK(contains(flash_c_last_error_message(), "params is null"));
}

static void test_null_pointers(void) {
  flash_fwd_params_c p;
  valid_params(&p);
  p.q = NULL;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_NULL_POINTER);
  CHECK(contains(flash_c_last_error_message(), "q is null"));

  valid_params(&p);
  p.out = NULL;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_NULL_POINTER);
  CHECK(contains(flash_c_last_error_message(), "out is null"));

  CHECK(flash_c_forward(NULL, NULL) == FLASH_C_ERROR_INVALID_STRUCT);
  CHECK(contains(flash_c_last_error_message(), "params is null"));
}

static void test_struct_header(void) {
  flash_fwd_params_c p;
  valid_params(&p);
  p.struct_size = 0;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_STRUCT);
  CHECK(contains(flash_c_last_error_message(), "struct_size = 0"));

  valid_params(&p);
  p.struct_size = (uint32_t)sizeof(flash_fwd_params_c) - 8u;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_STRUCT);
  CHECK(contains(flash_c_last_error_message(), "struct_size"));

  valid_params(&p);
  p.version = 0;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_UNSUPPORTED_VERSION);
  CHECK(contains(flash_c_last_error_message(), "version = 0"));

  valid_params(&p);
  p.version = FLASH_C_PARAMS_VERSION + 1u;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_UNSUPPORTED_VERSION);
  CHECK(contains(flash_c_last_error_message(), "version"));

  /* Version 2 promises the version-2 fields: a version-1-sized struct cannot claim it. */
  valid_params(&p);
  p.struct_size = (uint32_t)kV1Size;
  p.version = 2u;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_STRUCT);
  CHECK(contains(flash_c_last_error_message(), "version-2 layout"));
  /* Likewise version 3 and a version-2-sized struct. */
  valid_params(&p);
  p.struct_size = (uint32_t)kV2Size;
  p.version = 3u;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_STRUCT);
  CHECK(contains(flash_c_last_error_message(), "version-3 layout"));
  CHECK(FLASH_C_PARAMS_VERSION == 4u);
  CHECK(p.page_table == NULL && p.page_table_stride == 0 && p.page_size == 0 && p.num_pages == 0);
  CHECK(p.num_splits == 0 && p.workspace == NULL && p.workspace_bytes == 0u);
}

/* A caller compiled against the version-1 header: its struct ends at out_head_stride. Here the
 * version-1 part sits in a buffer whose tail (where version 2 keeps its fields) is garbage that
 * would fail the softcap, window and varlen checks if it were read. */
typedef union {
  flash_fwd_params_c params;
  unsigned char bytes[sizeof(flash_fwd_params_c)];
} params_buffer;

static const flash_fwd_params_c* v1_params(params_buffer* buffer, const flash_fwd_params_c* fields) {
  memset(buffer->bytes, 0xAB, sizeof buffer->bytes); /* window -1414812757, softcap < 0, cu_seqlens set */
  memcpy(buffer->bytes, fields, kV1Size);
  buffer->params.struct_size = (uint32_t)kV1Size;
  buffer->params.version = 1u;
  return &buffer->params;
}

static void test_version1_struct(void) {
  params_buffer buffer;
  flash_fwd_params_c p;
  CHECK(kV1Size == offsetof(flash_fwd_params_c, cu_seqlens_q));

  /* Errors of the version-1 fields are found as before... */
  valid_params(&p);
  p.seqlen_k = -3;
  CHECK(flash_c_forward(v1_params(&buffer, &p), NULL) == FLASH_C_ERROR_INVALID_SIZE);
  CHECK(contains(flash_c_last_error_message(), "seqlen_k = -3"));

  /* ...including those checked after the new fields: the garbage tail is never read. */
  valid_params(&p);
  p.out_head_stride = 3;
  CHECK(flash_c_forward(v1_params(&buffer, &p), NULL) == FLASH_C_ERROR_MISALIGNED_STRIDE);
  CHECK(contains(flash_c_last_error_message(), "out_head_stride = 3"));

  valid_params(&p);
  p.is_causal = 1;
  p.softmax_lse = (float*)fake(0x20000000u); /* same memory as k */
  CHECK(flash_c_forward(v1_params(&buffer, &p), NULL) == FLASH_C_ERROR_ALIASING);
  CHECK(contains(flash_c_last_error_message(), "softmax_lse"));

  /* An allocation of exactly the version-1 size: reading past it would be caught by a sanitizer.
   * The fields are set in a full struct and copied in (the test itself never reads past it). */
  {
    unsigned char* exact = (unsigned char*)malloc(kV1Size);
    CHECK(exact != NULL);
    if (exact != NULL) {
      valid_params(&p);
      p.struct_size = (uint32_t)kV1Size;
      p.version = 1u;
      p.head_dim = 100;
      memcpy(exact, &p, kV1Size);
      CHECK(flash_c_forward((const flash_fwd_params_c*)(void*)exact, NULL) == FLASH_C_ERROR_UNSUPPORTED_HEAD_DIM);
      CHECK(contains(flash_c_last_error_message(), "head_dim = 100"));
      p.head_dim = 128;
      p.out_row_stride = 64; /* out rows overlap: checked after every version-2 field */
      memcpy(exact, &p, kV1Size);
      CHECK(flash_c_forward((const flash_fwd_params_c*)(void*)exact, NULL) == FLASH_C_ERROR_ALIASING);
      CHECK(contains(flash_c_last_error_message(), "out overlaps itself"));
      free(exact);
    }
  }

  /* A larger struct_size with version 1 is fine too (e.g. a v1 struct embedded in a bigger one). */
  valid_params(&p);
  p.dtype = 77;
  p.version = 1u;
  p.window_size_left = -9; /* ignored: version 1 */
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_UNSUPPORTED_DTYPE);
  CHECK(contains(flash_c_last_error_message(), "dtype = 77"));
}

/* The version-2 fields reach the C++ checks, each with its own code and a message naming it. */
static void test_version2_fields(void) {
  flash_fwd_params_c p;
  valid_params(&p);
  p.window_size_left = -2;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_WINDOW);
  CHECK(contains(flash_c_last_error_message(), "window_size_left = -2"));

  valid_params(&p);
  p.is_causal = 1;
  p.window_size_right = 4;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_WINDOW);
  CHECK(contains(flash_c_last_error_message(), "window_size_right = 4"));
  CHECK(contains(flash_c_last_error_message(), "is_causal"));

  valid_params(&p);
  p.softcap = -1.0f;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_SOFTCAP);
  CHECK(contains(flash_c_last_error_message(), "softcap = -1"));

  valid_params(&p);
  p.cu_seqlens_q = (const int32_t*)fake(0x50000000u);
  p.total_q = 128;
  p.total_k = 128;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_VARLEN);
  CHECK(contains(flash_c_last_error_message(), "cu_seqlens_k is null"));

  valid_params(&p);
  p.total_k = 256;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_VARLEN);
  CHECK(contains(flash_c_last_error_message(), "total_k = 256"));

  valid_params(&p);
  p.cu_seqlens_q = (const int32_t*)fake(0x50000000u);
  p.cu_seqlens_k = (const int32_t*)fake(0x50001000u);
  p.total_q = 100; /* shorter than seqlen_q = 128, the longest sequence */
  p.total_k = 128;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_VARLEN);
  CHECK(contains(flash_c_last_error_message(), "seqlen_q = 128 exceeds total_q = 100"));

  valid_params(&p);
  p.cu_seqlens_q = (const int32_t*)fake(0x50000000u);
  p.cu_seqlens_k = (const int32_t*)fake(0x50001002u);
  p.total_q = 128;
  p.total_k = 128;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_MISALIGNED_POINTER);
  CHECK(contains(flash_c_last_error_message(), "cu_seqlens_k = 0x50001002"));
}

/* The version-3 fields reach the C++ checks, and a version-2 struct never has them read. */
static void test_version3_fields(void) {
  flash_fwd_params_c p;
  uint64_t bytes = 77u;
  valid_params(&p);
  p.num_splits = -1;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_SPLITS);
  CHECK(contains(flash_c_last_error_message(), "num_splits = -1"));

  valid_params(&p);
  p.page_size = 16;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_PAGING);
  CHECK(contains(flash_c_last_error_message(), "page_size = 16 without page_table"));

  valid_params(&p);
  p.page_table = (const int32_t*)fake(0x50000000u);
  p.page_table_stride = 8;
  p.page_size = 8;
  p.num_pages = 64;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_PAGING);
  CHECK(contains(flash_c_last_error_message(), "multiple of 16"));

  valid_params(&p);
  p.workspace_bytes = 4096u;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_WORKSPACE);
  CHECK(contains(flash_c_last_error_message(), "workspace_bytes = 4096"));

  /* The workspace query checks like forward and leaves *bytes alone when it fails. */
  valid_params(&p);
  p.num_heads_k = 3;
  CHECK(flash_c_workspace_size(&p, &bytes) == FLASH_C_ERROR_HEAD_RATIO);
  CHECK(bytes == 77u);
  CHECK(flash_c_workspace_size(NULL, &bytes) == FLASH_C_ERROR_INVALID_STRUCT);
  valid_params(&p);
  CHECK(flash_c_workspace_size(&p, NULL) == FLASH_C_ERROR_NULL_POINTER);

  /* A version-2 struct: the bytes where version 3 keeps its fields are never read. */
  {
    union {
      flash_fwd_params_c params;
      unsigned char bytes[sizeof(flash_fwd_params_c)];
    } buffer;
    valid_params(&p);
    p.dtype = 77;
    memset(buffer.bytes, 0xAB, sizeof buffer.bytes); /* num_splits < 0, a page table, a workspace */
    memcpy(buffer.bytes, &p, kV2Size);
    buffer.params.struct_size = (uint32_t)kV2Size;
    buffer.params.version = 2u;
    CHECK(flash_c_forward(&buffer.params, NULL) == FLASH_C_ERROR_UNSUPPORTED_DTYPE);
    CHECK(contains(flash_c_last_error_message(), "dtype = 77"));
  }
}

/* The version-4 fields reach the C++ checks, and a version-3 struct never has them read. */
static void test_version4_fields(void) {
  flash_fwd_params_c p;
  valid_params(&p);
  CHECK(p.out_dtype == FLASH_C_DTYPE_AUTO && p.descale_per_head == 0);
  CHECK(p.q_descale == NULL && p.k_descale == NULL && p.v_descale == NULL);
  p.k_descale = (const float*)fake(0x60000000u);
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_DESCALE);
  CHECK(contains(flash_c_last_error_message(), "k_descale is set with dtype = FP16"));

  valid_params(&p);
  p.out_dtype = FLASH_C_DTYPE_BF16;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_UNSUPPORTED_DTYPE);
  CHECK(contains(flash_c_last_error_message(), "out_dtype = BF16"));

  valid_params(&p);
  p.dtype = FLASH_C_DTYPE_FP8_E4M3;
  p.out_dtype = FLASH_C_DTYPE_FP8_E4M3;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_UNSUPPORTED_DTYPE);
  CHECK(contains(flash_c_last_error_message(), "out_dtype = FP8_E4M3"));

  /* A version-3 struct: the bytes where version 4 keeps its fields are never read. */
  {
    union {
      flash_fwd_params_c params;
      unsigned char bytes[sizeof(flash_fwd_params_c)];
    } buffer;
    const size_t v3_size = offsetof(flash_fwd_params_c, workspace_bytes) + sizeof(uint64_t);
    valid_params(&p);
    p.out_head_stride = 3; /* checked after out_dtype and the descale fields */
    memset(buffer.bytes, 0xAB, sizeof buffer.bytes); /* an invalid out_dtype, misaligned descale pointers */
    memcpy(buffer.bytes, &p, v3_size);
    buffer.params.struct_size = (uint32_t)v3_size;
    buffer.params.version = 3u;
    CHECK(flash_c_forward(&buffer.params, NULL) == FLASH_C_ERROR_MISALIGNED_STRIDE);
    CHECK(contains(flash_c_last_error_message(), "out_head_stride = 3"));
    /* Version 4 promises its fields: a version-3-sized struct cannot claim it. */
    buffer.params.version = 4u;
    CHECK(flash_c_forward(&buffer.params, NULL) == FLASH_C_ERROR_INVALID_STRUCT);
    CHECK(contains(flash_c_last_error_message(), "version-4 layout"));
  }
}

/* Each field reaches the C++ checks: sizes, head ratio, dtype, scale, strides, alignment. */
static void test_fields_are_passed_on(void) {
  flash_fwd_params_c p;
  valid_params(&p);
  p.seqlen_k = -3;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_SIZE);
  CHECK(contains(flash_c_last_error_message(), "seqlen_k = -3"));

  valid_params(&p);
  p.num_heads_k = 3;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_HEAD_RATIO);

  valid_params(&p);
  p.dtype = 77;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_UNSUPPORTED_DTYPE);
  CHECK(contains(flash_c_last_error_message(), "dtype = 77"));

  valid_params(&p);
  p.softmax_scale = -1.0f;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_INVALID_SCALE);

  valid_params(&p);
  p.out_head_stride = 3;
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_MISALIGNED_STRIDE);
  CHECK(contains(flash_c_last_error_message(), "out_head_stride = 3"));

  valid_params(&p);
  p.v = fake(0x30000002u);
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_MISALIGNED_POINTER);

  valid_params(&p);
  p.softmax_lse = (float*)fake(0x10000000u); /* same memory as q */
  CHECK(flash_c_forward(&p, NULL) == FLASH_C_ERROR_ALIASING);
  CHECK(contains(flash_c_last_error_message(), "softmax_lse"));
}

static void test_status_strings(void) {
  int32_t code;
  for (code = FLASH_C_SUCCESS; code <= FLASH_C_ERROR_INVALID_DESCALE; ++code) {
    const char* text = flash_c_status_string(code);
    CHECK(text != NULL && text[0] != '\0');
    CHECK(text != NULL && strcmp(text, "unknown status") != 0);
  }
  CHECK(strcmp(flash_c_status_string(-1), "unknown status") == 0);
  CHECK(strcmp(flash_c_status_string(FLASH_C_ERROR_INVALID_DESCALE + 1), "unknown status") == 0);
  CHECK(flash_c_last_error_message() != NULL);
}

static void test_supported_head_dims(void) {
  int32_t dims[16];
  int32_t count = flash_c_supported_head_dims(FLASH_C_DTYPE_FP16, dims, 16);
  int32_t i;
  CHECK(count > 0);
  for (i = 1; i < count; ++i) CHECK(dims[i - 1] < dims[i]);
  CHECK(flash_c_supported_head_dims(FLASH_C_DTYPE_FP16, NULL, 16) == 0);
  CHECK(flash_c_supported_head_dims(77, dims, 16) == 0);
}

int main(void) {
  test_params_init();
  test_null_pointers();
  test_struct_header();
  test_version1_struct();
  test_version2_fields();
  test_version3_fields();
  test_version4_fields();
  test_fields_are_passed_on();
  test_status_strings();
  test_supported_head_dims();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
