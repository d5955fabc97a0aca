#pragma once
// Internal to the attention kernel: one head's attention with Q K^T and P V on AMX tiles in
// bf16 (fp32 accumulation), the softmax and the FCA statistics in fp32. Q, K, V and the
// probabilities are rounded to bf16 once each, as the bf16 GEMMs round their inputs.
#include <cstddef>
#include <cstdint>

#include "kernels/attention_head.h"

namespace fcabert::kernels::amx {

// Whether this CPU has AMX with bf16, oneDNN would use it (ONEDNN_MAX_CPU_ISA can cap it)
// and Linux lets this process use the tile registers (asked on the first call; the kernel
// grants it to the whole process).
bool available();

// Head sizes the kernel takes: whole tile rows of bf16 (multiples of 32).
bool supports_head_dim(int64_t head_dim);

// Floats of work area attend_head needs for sequences up to `max_length` tokens.
size_t work_floats(int64_t max_length, int64_t head_dim);

// The same outputs as the fp32 kernel (attention.h), for one head; `work` holds
// work_floats(head.length, head.head_dim) floats, 64-byte aligned. Only where available()
// and supports_head_dim(head.head_dim).
void attend_head(const HeadView& head, float* work);

}  // namespace fcabert::kernels::amx
