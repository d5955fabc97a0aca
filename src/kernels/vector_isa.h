#pragma once
// FCABERT_CLONE_FOR_AVX before a function compiles it three times, for AVX-512 (x86-64-v4),
// AVX2 (x86-64-v3) and baseline x86-64, and the loader picks the best the CPU has (GCC's
// target_clones). The build targets baseline x86-64 so that the binary runs anywhere, which
// would leave our vector loops 4 floats wide. One attribute, no dispatch code of our own; for
// loops the compiler does not vectorize well even so, see kernels/input_conversion.cpp.
// GCC only: clang (the fuzz build) compiles the baseline loop.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FCABERT_CLONE_FOR_AVX __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FCABERT_CLONE_FOR_AVX
#endif
