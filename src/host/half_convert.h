// Host-side conversion between float and the 16-bit storage formats (IEEE fp16, bfloat16), with
// round-to-nearest-even. Used by the CLI, the benchmark and the tests to fill and read device buffers.
#pragma once

#include <cstdint>

namespace flash::host {

uint16_t float_to_fp16_bits(float value);
float fp16_bits_to_float(uint16_t bits);
uint16_t float_to_bf16_bits(float value);
float bf16_bits_to_float(uint16_t bits);

}  // namespace flash::host
