// Where one batch entry's rows live and how many it has: dense batches (every entry seqlen_q x
// seqlen_k) or variable-length batches packed along the token dimension (cu_seqlens), with an
// optional per-entry count of keys used (seqused_k).
#pragma once

#include <cstdint>

#include <cute/config.hpp>

#include "api/fwd_args.h"

namespace flash::sm90 {

// Rows of one batch entry: q rows [offset_q, offset_q + len_q) and k/v rows [offset_k, offset_k +
// len_k) of the tensors as the kernel addresses them (packed: the token dimension; dense: within
// the entry's own batch slice, so the offsets are 0).
struct SeqLenInfo {
  int offset_q;
  int offset_k;
  int len_q;
  int len_k;

  // The same lengths, broadcast from lane 0 so that the compiler knows them to be warp-uniform.
  // Read from the caller's arrays, they are per-thread values to it: the key-block loop bounded
  // by them then branches per thread, the pipeline stages it carries live in per-thread
  // registers, and every GEMM descriptor is moved to the uniform datapath register by register
  // inside the warpgroups' GEMM turns. Every lane of the calling warp must call it.
  CUTE_DEVICE SeqLenInfo warp_uniform() const {
    return {__shfl_sync(0xffffffffu, offset_q, 0), __shfl_sync(0xffffffffu, offset_k, 0),
            __shfl_sync(0xffffffffu, len_q, 0), __shfl_sync(0xffffffffu, len_k, 0)};
  }
};

struct SeqLens {
  int32_t const* cu_seqlens_q;   // null: dense
  int32_t const* cu_seqlens_k;
  int32_t const* seqused_k;      // null: every key of the entry
  int seqlen_q;                  // dense lengths; with cu_seqlens the maxima
  int seqlen_k;
  int total_q;                   // packed row counts (cu_seqlens only)
  int total_k;

  static SeqLens from(detail::FwdArgs const& args) {
    return {args.cu_seqlens_q, args.cu_seqlens_k, args.seqused_k, args.seqlen_q,
            args.seqlen_k, args.total_q, args.total_k};
  }

  CUTE_HOST_DEVICE bool packed() const { return cu_seqlens_q != nullptr; }
  // Tensors are addressed as (rows, d, head, batch): packed tensors have one batch of all tokens.
  CUTE_HOST_DEVICE int rows_q() const { return packed() ? total_q : seqlen_q; }
  CUTE_HOST_DEVICE int rows_k() const { return packed() ? total_k : seqlen_k; }
  CUTE_HOST_DEVICE int tensor_batches(int batch) const { return packed() ? 1 : batch; }
  template <bool kGeneral>
  CUTE_HOST_DEVICE int tensor_batch(int batch) const { return kGeneral && packed() ? 0 : batch; }

  // The offsets come from the caller's device arrays, so each is clamped into its tensor: bad
  // contents give wrong rows, never an access outside [0, total). kGeneral false: the kernel
  // serves dense batches only (no arrays), whose lengths are the same for every entry.
  template <bool kGeneral>
  CUTE_DEVICE SeqLenInfo get(int batch) const {
    SeqLenInfo s{0, 0, seqlen_q, seqlen_k};
    if constexpr (!kGeneral) return s;
    if (packed()) {
      int const q0 = clamp_to(cu_seqlens_q[batch], 0, total_q);
      int const k0 = clamp_to(cu_seqlens_k[batch], 0, total_k);
      s = {q0, k0, clamp_to(cu_seqlens_q[batch + 1], q0, total_q) - q0,
           clamp_to(cu_seqlens_k[batch + 1], k0, total_k) - k0};
    }
    if (seqused_k != nullptr) s.len_k = clamp_to(seqused_k[batch], 0, s.len_k);
    return s;
  }

 private:
  CUTE_HOST_DEVICE static int clamp_to(int x, int lo, int hi) { return x < lo ? lo : (x > hi ? hi : x); }
};

}  // namespace flash::sm90
