// The liquid state machine step on the GPU: event-driven crossbar reads (rows of the active
// inputs, per input plane, and of the neurons that spiked at t-1), read noise by
// noise-equivalent sampling with Philox4x32-7 words and float32 Box-Muller normals, per-tile
// ADC, the LIF step and the spike list, fused in one launch per step.
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

// ---- read-noise draws: twin of neurohw/reservoir/rng.py (same float32 operations, same order) ----
// float32 constants: the exact values of rng.py's np.float32 constants (tests/reservoir/test_kernels.py
// checks them against the module).
#define RNG_LN2 0.6931471824645996f
#define RNG_SQRT_HALF 0.7071067690849304f
#define RNG_ATANH3 0.3333333432674408f
#define RNG_ATANH5 0.20000000298023224f
#define RNG_ATANH7 0.1428571492433548f
#define RNG_ATANH9 0.1111111119389534f
#define RNG_SIN3 -0.1666666716337204f
#define RNG_SIN5 0.008333333767950535f
#define RNG_SIN7 -0.00019841270113829523f
#define RNG_SIN9 2.7557318844628753e-06f
#define RNG_COS2 -0.5f
#define RNG_COS4 0.0416666679084301f
#define RNG_COS6 -0.0013888889225199819f
#define RNG_COS8 2.4801587642286904e-05f
#define RNG_ANGLE_STEP 3.7450703871400037e-07f
#define RNG_ANGLE_MID 2097151.5f

// Philox4x32-7 (Salmon et al., SC 2011; Random123): 7 rounds, the fewest that pass BigCrush.
__device__ __forceinline__ void philox4x32_7(unsigned int c[4], unsigned int k0, unsigned int k1) {
    for (int r = 0; r < 7; ++r) {
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

// Box-Muller radius^2 = -2 ln u, u = (f32(w) + 0.5) 2^-32: ln from the float's exponent and
// mantissa m (folded into (sqrt(1/2), sqrt 2]) with ln m = 2 s (1 + s^2/3 + ... + s^8/9).
__device__ float bm_radius2(unsigned int w) {
    const float x = (float)w + 0.5f;
    const int bits = __float_as_int(x);
    int e = (bits >> 23) - 127;
    const int mb = bits & 0x7FFFFF;
    const int big = mb > 0x3504F3 ? 1 : 0;
    const float m = __int_as_float(mb | (0x3F800000 - (big << 23)));
    e += big;
    const float s = (m - 1.0f) / (m + 1.0f);
    const float s2 = s * s;
    const float p = (((RNG_ATANH9 * s2 + RNG_ATANH7) * s2 + RNG_ATANH5) * s2 + RNG_ATANH3) * s2 + 1.0f;
    const float ln_u = (float)(e - 32) * RNG_LN2 + 2.0f * s * p;
    return -2.0f * ln_u;
}

// Box-Muller angle 2 pi (k + 0.5) / 2^24, k = w >> 8: quadrant from the top two bits, sin and
// cos of the offset t from the quadrant's middle by Taylor polynomials, rotated.
__device__ void bm_angle(unsigned int w, float* cos_out, float* sin_out) {
    const int k = (int)(w >> 8);
    const float t = ((float)(k & 0x3FFFFF) - RNG_ANGLE_MID) * RNG_ANGLE_STEP;
    const float t2 = t * t;
    const float sn = ((((RNG_SIN9 * t2 + RNG_SIN7) * t2 + RNG_SIN5) * t2 + RNG_SIN3) * t2) * t + t;
    const float cs = (((RNG_COS8 * t2 + RNG_COS6) * t2 + RNG_COS4) * t2 + RNG_COS2) * t2 + 1.0f;
    const float c = (cs - sn) * RNG_SQRT_HALF;
    const float s = (cs + sn) * RNG_SQRT_HALF;
    const int qd = k >> 22;
    float c1 = (qd & 1) ? -s : c;
    float s1 = (qd & 1) ? c : s;
    if (qd >= 2) {
        c1 = -c1;
        s1 = -s1;
    }
    *cos_out = c1;
    *sin_out = s1;
}

// The Box-Muller parts (r2, g) of column j (of n) at counter (step, sample, stream): slot
// j / nb of block j % nb; slots 0, 1 are the cosine and sine of the pair (word 0, word 1),
// slots 2, 3 of the pair (word 2, word 3). The normal is sqrt(r2) g.
__device__ void column_gaussian(int j, int n, unsigned int k0, unsigned int k1, unsigned int step,
                                unsigned int sample, unsigned int stream, float* r2, float* g) {
    const int nb = (n + 3) / 4;
    unsigned int c[4] = {(unsigned int)(j % nb), step, sample, stream};
    philox4x32_7(c, k0, k1);
    const int slot = j / nb;
    const int pair = slot >> 1;
    *r2 = bm_radius2(c[2 * pair]);
    float cs, sn;
    bm_angle(c[2 * pair + 1], &cs, &sn);
    *g = (slot & 1) ? sn : cs;
}

// A read's noise: sqrt(var r2) g (float32).
__device__ __forceinline__ double read_noise(float var, int j, int n, unsigned int k0, unsigned int k1,
                                             unsigned int step, unsigned int sample, unsigned int stream) {
    float r2, g;
    column_gaussian(j, n, k0, k1, step, sample, stream, &r2, &g);
    return (double)(sqrtf(var * r2) * g);
}

#define MAX_PLANES 16

// One time step t for every (neuron j, sample b): grid (ceil(n / blockDim.x), B).
// Before the launch the host zeroes nspk_next; spike lists are double-buffered. codes: the
// inputs' codes (Synapses.input_codes); n_planes input planes: bit b of the codes (bit_serial)
// or the codes as one amplitude plane. Reads in neurohw/reservoir/backends/numpy_ref.reads' order.
extern "C" __global__ void lsm_step(
    const long long* __restrict__ indptr, const long long* __restrict__ indptr_off,
    const int* __restrict__ indices, const int* __restrict__ codes,
    const long long* __restrict__ nnz_off, const long long* __restrict__ lengths,
    const long long* __restrict__ sample_ids, const WT* __restrict__ w_in, const WT* __restrict__ w_rec,
    int n, const int* __restrict__ spk_prev, const int* __restrict__ nspk_prev, int* spk_next,
    int* nspk_next, double* mem, unsigned char* s_prev, int* counts, int K, int tile_rows, int n_tin,
    int n_tiles, int use_adc, int n_planes, int bit_serial, const double* __restrict__ coefs,
    const double* __restrict__ step_tab, const double* __restrict__ ua_tab, const float* __restrict__ rel2_tab,
    const float* __restrict__ add2_tab, double max_code, double unit, double v_th, double decay, int subtract,
    int noisy, unsigned int k0, unsigned int k1, int t, unsigned char* spikes_rec, int record, int T_max) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int b = blockIdx.y;
    if (j >= n) return;
    const long long T = lengths[b];
    if (t >= T) return;
    const int* idx = indices + nnz_off[b];
    const int* code = codes + nnz_off[b];
    const long long lo = indptr[indptr_off[b] + t];
    const long long hi = indptr[indptr_off[b] + t + 1];
    const int n_prev = nspk_prev[b];
    const int* sp = spk_prev + (long long)b * n;
    const unsigned int sample = (unsigned int)sample_ids[b];

    double cur = 0.0;
    if (use_adc) {
        // ---- one read per (row tile, plane) with an active row, each through the ADC; per tile
        // the planes' codes shifted and added, times the step, times v (coefs[0]; 1 for spikes) ----
        for (int tile = 0; tile < n_tiles; ++tile) {
            const int planes = tile < n_tin ? n_planes : 1;
            double csum = 0.0;  // the planes' codes shifted and added (integers, exact)
            int nread = 0;
            for (int plane = 0; plane < planes; ++plane) {
                AT a = 0;
                QT q = 0;
                long long rows = 0;
                if (tile < n_tin) {
                    for (long long k = lo; k < hi; ++k) {
                        const int i = idx[k];
                        int x = code[k];
                        if (bit_serial) x = (x >> plane) & 1;
                        if (x == 0 || i / tile_rows != tile) continue;
                        const WT w = w_in[(long long)i * n + j];
                        rows += (long long)x * x;
                        a += (AT)x * (AT)w;
                        if (noisy) q += (QT)x * (QT)x * (QT)w * (QT)w;
                    }
                } else {
                    for (int k = 0; k < n_prev; ++k) {
                        const int i = sp[k];
                        if (n_tin + i / tile_rows != tile) continue;
                        const WT w = w_rec[(long long)i * n + j];
                        rows += 1;
                        a += (AT)w;
                        if (noisy) q += (QT)w * (QT)w;
                    }
                }
                if (rows == 0) continue;  // a tile with no active row in this plane is not read
                double x = (double)a * ua_tab[tile];
                if (noisy) {
                    const float var = rel2_tab[tile] * (float)q + add2_tab[tile] * (float)rows;
                    x = x + read_noise(var, j, n, k0, k1, (unsigned int)t, sample, (unsigned int)(tile + plane * n_tiles));
                }
                double c = rint(x);
                c = fmin(fmax(c, -max_code), max_code);
                csum += (double)(1 << plane) * c;
                ++nread;
            }
            if (nread > 0) cur += (csum * step_tab[tile]) * (tile < n_tin ? coefs[0] : 1.0);
        }
    } else {
        // ---- no ADC: every read of the step as one Gaussian read per column (stream 0) ----
        AT ab[MAX_PLANES];
        QT qb[MAX_PLANES];
        long long rb[MAX_PLANES];
        for (int p = 0; p < n_planes; ++p) {
            ab[p] = 0;
            qb[p] = 0;
            rb[p] = 0;
        }
        for (long long k = lo; k < hi; ++k) {
            const int i = idx[k];
            const WT w = w_in[(long long)i * n + j];
            for (int p = 0; p < n_planes; ++p) {
                const int x = bit_serial ? (code[k] >> p) & 1 : code[k];
                if (x == 0) continue;
                rb[p] += (long long)x * x;
                ab[p] += (AT)x * (AT)w;
                if (noisy) qb[p] += (QT)x * (QT)x * (QT)w * (QT)w;
            }
        }
        AT a_rec = 0;
        QT q_rec = 0;
        for (int k = 0; k < n_prev; ++k) {
            const WT w = w_rec[(long long)sp[k] * n + j];
            a_rec += (AT)w;
            if (noisy) q_rec += (QT)w * (QT)w;
        }
        double a = (double)a_rec;
        double qv = (double)q_rec;
        double rows = (double)n_prev;
        for (int p = 0; p < n_planes; ++p) {
            a += coefs[p] * (double)ab[p];
            qv += (coefs[p] * coefs[p]) * (double)qb[p];
            rows += (coefs[p] * coefs[p]) * (double)rb[p];
        }
        if (rows > 0) {
            cur = a * ua_tab[0];
            if (noisy) {
                const float var = rel2_tab[0] * (float)qv + add2_tab[0] * (float)rows;
                cur = cur + read_noise(var, j, n, k0, k1, (unsigned int)t, sample, 0u);
            }
        }
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
