// host_shim.h: compile a CUDA kernel file (kernels/*.cu) for the CPU with g++, to verify GPU
// code on machines without a GPU. Blocks and threads become sequential loops (shim_launch);
// every thread of a launch runs to completion before the next starts.
//
// Sequential threads are only a faithful model of kernels whose threads are independent. A
// kernel that needs __syncthreads or shared memory would run WRONG under this model, so both
// are made compile errors here instead. Atomics are plain read-modify-writes (sequential).
// Build with -ffp-contract=off (nvcc side: --fmad=false) so that no multiply-add is fused.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

static dim3 blockIdx, threadIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ HOST_SHIM_ERROR_shared_memory_cannot_be_emulated_by_sequential_threads
#define __syncthreads() static_assert(sizeof(int) == 0, "host_shim: __syncthreads cannot be emulated by sequential threads")
#define __syncwarp(...) static_assert(sizeof(int) == 0, "host_shim: __syncwarp cannot be emulated by sequential threads")

using std::fmax;
using std::fmin;
using std::rint;
using std::sqrt;
using std::fabs;

// CUDA's bit casts between float and int (same bits, no conversion).
inline int __float_as_int(float x) {
    int i;
    std::memcpy(&i, &x, sizeof i);
    return i;
}
inline float __int_as_float(int i) {
    float x;
    std::memcpy(&x, &i, sizeof x);
    return x;
}

inline int atomicAdd(int* address, int value) {
    int old = *address;
    *address = old + value;
    return old;
}
inline unsigned int atomicAdd(unsigned int* address, unsigned int value) {
    unsigned int old = *address;
    *address = old + value;
    return old;
}
inline double atomicAdd(double* address, double value) {
    double old = *address;
    *address = old + value;
    return old;
}

// Run `thread_body` once per (block, thread), blocks outermost, in x-fastest order.
inline void shim_launch(dim3 grid, dim3 block, const std::function<void()>& thread_body) {
    gridDim = grid;
    blockDim = block;
    for (unsigned int bz = 0; bz < grid.z; ++bz)
        for (unsigned int by = 0; by < grid.y; ++by)
            for (unsigned int bx = 0; bx < grid.x; ++bx)
                for (unsigned int tz = 0; tz < block.z; ++tz)
                    for (unsigned int ty = 0; ty < block.y; ++ty)
                        for (unsigned int tx = 0; tx < block.x; ++tx) {
                            blockIdx = dim3(bx, by, bz);
                            threadIdx = dim3(tx, ty, tz);
                            thread_body();
                        }
}
