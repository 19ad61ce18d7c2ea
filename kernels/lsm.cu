// The liquid state machine step on the GPU: event-driven crossbar reads (rows of the active
// inputs and of the neurons that spiked at t-1), read noise by noise-equivalent sampling with
// Philox4x32-10, per-tile ADC, the LIF step and the spike list, fused in one launch per step.
//
// Semantics: docs/internals.md, section Reservoir; this file mirrors
// neurohw/reservoir/backends/numpy_ref.py operation for operation (compile with --fmad=false:
// a fused multiply-add would round differently from numpy). Loaded by
// neurohw/reservoir/backends/cupy_backend.py (RawModule) and, for tests without a GPU, built
// for the CPU through kernels/host_shim.h. No shared memory and no __syncthreads: one thread
// per (neuron, sample), every thread independent.
//
// Types (set with -D): WT weight (signed char | short | int for conductance levels, double for
// float weights), AT accumulator (int | double), QT accumulator of x^2 w^2 (long long | double).

#ifndef WT
#define WT signed char
#endif
#ifndef AT
#define AT int
#endif
#ifndef QT
#define QT long long
#endif

// ---- Philox4x32-10 (Salmon et al., SC 2011; Random123), twin of neurohw/reservoir/rng.py ----
__device__ __forceinline__ void philox4x32_10(unsigned int c[4], unsigned int k0, unsigned int k1) {
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        unsigned long long p0 = 0xD2511F53ull * (unsigned long long)c[0];
        unsigned long long p1 = 0xCD9E8D57ull * (unsigned long long)c[2];
        unsigned int n0 = (unsigned int)(p1 >> 32) ^ c[1] ^ k0;
        unsigned int n2 = (unsigned int)(p0 >> 32) ^ c[3] ^ k1;
        c[1] = (unsigned int)p1;
        c[3] = (unsigned int)p0;
        c[0] = n0;
        c[2] = n2;
    }
}

// Standard normal from a 32-bit word: Acklam's inverse normal CDF of (w + 0.5) / 2^32, with the
// logarithm from integer bit length + atanh series (only IEEE-exact operations).
__device__ double normal_from_word(long long w) {
    const double p = ((double)w + 0.5) * (1.0 / 4294967296.0);
    const double q = p - 0.5;
    const double r = q * q;
    const double num_c = (((((-3.969683028665376e01 * r + 2.209460984245205e02) * r + -2.759285104469687e02) * r
                            + 1.383577518672690e02) * r + -3.066479806614716e01) * r + 2.506628277459239e00) * q;
    const double den_c = ((((-5.447609879822406e01 * r + 1.615858368580409e02) * r + -1.556989798598866e02) * r
                           + 6.680131188771972e01) * r + -1.328068155288572e01) * r + 1.0;
    const long long wt = (q < 0) ? w : 4294967295LL - w;
    const long long v = 2 * wt + 1;
    long long t = v;
    const long long s16 = (t >= 65536LL) ? 16 : 0;
    t >>= s16;
    const long long s8 = (t >= 256LL) ? 8 : 0;
    t >>= s8;
    const long long s4 = (t >= 16LL) ? 4 : 0;
    t >>= s4;
    const long long s2 = (t >= 4LL) ? 2 : 0;
    t >>= s2;
    const long long s1 = (t >= 2LL) ? 1 : 0;
    long long e = s16 + s8 + s4 + s2 + s1;
    double m = (double)(v << (31 - e)) * (1.0 / 2147483648.0);
    if (m > 1.4142135623730951) {
        m = m * 0.5;
        e = e + 1;
    }
    const double s = (m - 1.0) / (m + 1.0);
    const double ss = s * s;
    double acc = 1.0 / 17.0;
    acc = acc * ss + 1.0 / 15.0;
    acc = acc * ss + 1.0 / 13.0;
    acc = acc * ss + 1.0 / 11.0;
    acc = acc * ss + 1.0 / 9.0;
    acc = acc * ss + 1.0 / 7.0;
    acc = acc * ss + 1.0 / 5.0;
    acc = acc * ss + 1.0 / 3.0;
    acc = acc * ss + 1.0;
    const double ln = (double)(e - 33) * 0.6931471805599453 + 2.0 * s * acc;
    const double lt = sqrt(-2.0 * ln);
    double num_t = (((((-7.784894002430293e-03 * lt + -3.223964580411365e-01) * lt + -2.400758277161838e00) * lt
                      + -2.549732539343734e00) * lt + 4.374664141464968e00) * lt + 2.938163982698783e00);
    if (!(q < 0)) num_t = -num_t;
    const double den_t = (((7.784695709041462e-03 * lt + 3.224671290700398e-01) * lt + 2.445134137142996e00) * lt
                          + 3.754408661907416e00) * lt + 1.0;
    const bool central = fabs(q) <= 0.5 - 0.02425;
    return (central ? num_c : num_t) / (central ? den_c : den_t);
}

// Normal of column j (of n) at counter (step, sample, stream): word j / nb of block j % nb.
__device__ double column_normal(int j, int n, unsigned int k0, unsigned int k1, unsigned int step,
                                unsigned int sample, unsigned int stream) {
    const int nb = (n + 3) / 4;
    unsigned int c[4] = {(unsigned int)(j % nb), step, sample, stream};
    philox4x32_10(c, k0, k1);
    return normal_from_word((long long)c[j / nb]);
}

// One time step t for every (neuron j, sample b): grid (ceil(n / blockDim.x), B).
// Before the launch the host zeroes nspk_next; spike lists are double-buffered.
extern "C" __global__ void lsm_step(
    const long long* __restrict__ indptr, const long long* __restrict__ indptr_off,
    const int* __restrict__ indices, const int* __restrict__ values,
    const long long* __restrict__ nnz_off, const long long* __restrict__ lengths,
    const long long* __restrict__ sample_ids, const WT* __restrict__ w_in, const WT* __restrict__ w_rec,
    int n, const int* __restrict__ spk_prev, const int* __restrict__ nspk_prev, int* spk_next,
    int* nspk_next, double* mem, unsigned char* s_prev, int* counts, int K, int tile_rows, int n_tin,
    int n_tiles, int use_adc, const double* __restrict__ step_tab, const double* __restrict__ inv_step_tab,
    double max_code, double unit, double v_th, double decay, int subtract, int noisy, double rel2,
    double add2, unsigned int k0, unsigned int k1, int t, unsigned char* spikes_rec, int record, int T_max) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int b = blockIdx.y;
    if (j >= n) return;
    const long long T = lengths[b];
    if (t >= T) return;
    const int* idx = indices + nnz_off[b];
    const int* val = values + nnz_off[b];
    const long long lo = indptr[indptr_off[b] + t];
    const long long hi = indptr[indptr_off[b] + t + 1];
    const int n_prev = nspk_prev[b];
    const int* sp = spk_prev + (long long)b * n;
    const unsigned int sample = (unsigned int)sample_ids[b];

    // ---- crossbar reads, tile by tile (without an ADC one read covers both crossbars) ----
    double cur = 0.0;
    for (int tile = 0; tile < n_tiles; ++tile) {
        AT a = 0;
        QT q = 0;
        long long rows = 0;
        if (!use_adc || tile < n_tin) {
            for (long long k = lo; k < hi; ++k) {
                const int i = idx[k];
                const int x = val[k];
                if (x == 0) continue;
                if (use_adc && i / tile_rows != tile) continue;
                const WT w = w_in[(long long)i * n + j];
                rows += (long long)x * x;
                a += (AT)x * (AT)w;
                if (noisy) q += (QT)x * (QT)x * (QT)w * (QT)w;
            }
        }
        if (!use_adc || tile >= n_tin) {
            for (int k = 0; k < n_prev; ++k) {
                const int i = sp[k];
                if (use_adc && n_tin + i / tile_rows != tile) continue;
                const WT w = w_rec[(long long)i * n + j];
                rows += 1;
                a += (AT)w;
                if (noisy) q += (QT)w * (QT)w;
            }
        }
        if (rows == 0) continue;  // a tile with no active row is not read
        double v = (double)a * unit;
        if (noisy) {
            v = v + sqrt(rel2 * (double)q + add2 * (double)rows) *
                        column_normal(j, n, k0, k1, (unsigned int)t, sample, (unsigned int)tile);
        }
        if (use_adc) {
            double c = rint(v * inv_step_tab[tile]);
            c = fmin(fmax(c, -max_code), max_code);
            v = c * step_tab[tile];
        }
        cur += v;
    }

    // ---- LIF step (neurohw/reservoir/lif.py) and the spike list ----
    const long long o = (long long)b * n + j;
    double leak = mem[o] * decay;
    if (s_prev[o]) leak = subtract ? leak - v_th : 0.0;
    const double m = leak + cur;
    mem[o] = m;
    const bool fired = m > v_th;
    s_prev[o] = fired ? 1 : 0;
    if (fired) {
        const int slot = atomicAdd(&nspk_next[b], 1);
        spk_next[(long long)b * n + slot] = j;
        counts[((long long)b * K + ((long long)t * K) / T) * n + j] += 1;
        if (record) spikes_rec[((long long)b * T_max + t) * n + j] = 1;
    }
}
