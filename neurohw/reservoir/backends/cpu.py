"""The fast CPU backend: numba, event-driven, parallel over the samples of a batch.

Per sample and step only the rows of active inputs (``w_in[i]``, per input plane) and of
neurons that spiked at the previous step (``w_rec[k]``) are read; each row is contiguous (row =
presynaptic input/neuron), so a step is a handful of streaming vector adds into per-read
accumulators. Integer weights (conductance levels) accumulate in int32: exact, so the spikes
equal the numpy reference bit for bit. The arithmetic after the sums (noise, ADC, leak) is per
neuron and in the order of :mod:`.numpy_ref`. ``cache=True``: the JIT cost is paid once per
machine.

Speed without leaving the reference's bits (docs/internals.md, Reservoir): rows in groups of
4, 8, 12 or 16 per accumulator pass, summed in int16 lanes when :func:`narrow_sums` proves it
exact; sums and squares in one pass; draws by :func:`neurohw.reservoir.rng.column_gaussians_nb`
(Philox words, radii and angles in vectorised passes) and the noisy read in one vectorised loop;
noise-free ADC tiles with one level per code as an integer clip (:func:`identity_adc_tiles`);
the spike list from 64-bit words of spike flags.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from neurohw.data.binning import to_sparse
from neurohw.reservoir.backends import BatchResult, pack_batch
from neurohw.reservoir.rng import column_gaussians_nb, seed_key
from neurohw.reservoir.synapses import Synapses

NAME = "cpu"
OPTIONS = ("threads",)  # keyword options of run_batch
GROUP = 16  # rows gathered per pass over an accumulator (see _add_rows)


@intrinsic
def _trailing_zeros(typingctx, x):
    """Count of trailing zero bits of a non-zero uint64 (LLVM cttz)."""

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.uint64(types.uint64), codegen


def available() -> bool:
    return True


def why_unavailable() -> str:
    return ""


@njit(cache=True, error_model="numpy", inline="always")
def _sum8_narrow(r0, r1, r2, r3, r4, r5, r6, r7, j):
    """``sum_k r_k[j]`` of eight int8/int16 rows formed in 16-bit lanes, widened once to int32.
    Exact when any eight weights sum within int16 (``8 max|w| <= 32767``, :func:`narrow_sums`)."""
    return np.int32(np.int16(((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j]))))


@njit(cache=True, error_model="numpy", inline="always")
def _sum8_wide(r0, r1, r2, r3, r4, r5, r6, r7, j):
    """``sum_k r_k[j]`` of eight integer rows in int32 lanes."""
    return ((np.int32(r0[j]) + np.int32(r1[j])) + (np.int32(r2[j]) + np.int32(r3[j]))) + (
        (np.int32(r4[j]) + np.int32(r5[j])) + (np.int32(r6[j]) + np.int32(r7[j])))


@njit(cache=True, error_model="numpy", inline="always")
def _sq8_32(r0, r1, r2, r3, r4, r5, r6, r7, j):
    """``sum_k r_k[j]**2`` in int32 (the caller checked that it cannot overflow)."""
    s0, s1, s2, s3 = np.int32(r0[j]), np.int32(r1[j]), np.int32(r2[j]), np.int32(r3[j])
    s4, s5, s6, s7 = np.int32(r4[j]), np.int32(r5[j]), np.int32(r6[j]), np.int32(r7[j])
    return ((s0 * s0 + s1 * s1) + (s2 * s2 + s3 * s3)) + ((s4 * s4 + s5 * s5) + (s6 * s6 + s7 * s7))


@njit(cache=True, error_model="numpy", inline="always")
def _add_upto8(w, buf, nbuf, zero, a, qq, noisy, integer, sq32, narrow):
    """``a += sum of rows w[buf[:nbuf]]`` (and ``qq += their squares`` when noisy), nbuf <= 8.

    Eight rows at a time: one load/store of the accumulator per eight rows (the loop is
    store-bound otherwise); a group of 2..7 rows is padded with the all-zero row ``zero`` (it
    stays in L1; adding 0 is exact), only a lone row takes the one-row loop. With noise and
    int32 squares, sums and squares are formed in the same pass over the rows. Integer sums
    are exact in any grouping. Every case is its own loop (a flag tested inside a loop keeps
    LLVM from vectorising it well).
    """
    n = a.shape[0]
    if nbuf >= 2:
        r0, r1 = w[buf[0]], w[buf[1]]
        r2 = w[buf[2]] if nbuf > 2 else zero
        r3 = w[buf[3]] if nbuf > 3 else zero
        r4 = w[buf[4]] if nbuf > 4 else zero
        r5 = w[buf[5]] if nbuf > 5 else zero
        r6 = w[buf[6]] if nbuf > 6 else zero
        r7 = w[buf[7]] if nbuf > 7 else zero
        if integer and noisy and sq32:
            if narrow >= 8:
                for j in range(n):
                    a[j] += _sum8_narrow(r0, r1, r2, r3, r4, r5, r6, r7, j)
                    qq[j] += _sq8_32(r0, r1, r2, r3, r4, r5, r6, r7, j)
            else:
                for j in range(n):
                    a[j] += _sum8_wide(r0, r1, r2, r3, r4, r5, r6, r7, j)
                    qq[j] += _sq8_32(r0, r1, r2, r3, r4, r5, r6, r7, j)
            return
        if integer and narrow >= 8:
            for j in range(n):
                a[j] += _sum8_narrow(r0, r1, r2, r3, r4, r5, r6, r7, j)
        elif integer:
            for j in range(n):
                a[j] += _sum8_wide(r0, r1, r2, r3, r4, r5, r6, r7, j)
        else:
            for j in range(n):
                a[j] += ((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j]))
        if noisy:
            for j in range(n):
                qq[j] += ((r0[j] * r0[j] + r1[j] * r1[j]) + (r2[j] * r2[j] + r3[j] * r3[j])) + (
                    (r4[j] * r4[j] + r5[j] * r5[j]) + (r6[j] * r6[j] + r7[j] * r7[j]))
        return
    for k in range(nbuf):
        row = w[buf[k]]
        if integer and noisy and sq32:
            for j in range(n):
                s0 = np.int32(row[j])
                a[j] += s0
                qq[j] += s0 * s0
        else:
            for j in range(n):
                a[j] += row[j]
            if noisy:
                for j in range(n):
                    qq[j] += row[j] * row[j]


@njit(cache=True, error_model="numpy", inline="always")
def _add16_narrow(w, buf, nbuf, zero, a, qq, noisy):
    """Sixteen int8/int16 rows (9..16 given, the rest the zero row) summed in 16-bit lanes
    (exact when ``16 max|w| <= 32767``), widened once; with noise their int32 squares too."""
    n = a.shape[0]
    r0, r1, r2, r3 = w[buf[0]], w[buf[1]], w[buf[2]], w[buf[3]]
    r4, r5, r6, r7 = w[buf[4]], w[buf[5]], w[buf[6]], w[buf[7]]
    r8 = w[buf[8]]
    r9 = w[buf[9]] if nbuf > 9 else zero
    r10 = w[buf[10]] if nbuf > 10 else zero
    r11 = w[buf[11]] if nbuf > 11 else zero
    r12 = w[buf[12]] if nbuf > 12 else zero
    r13 = w[buf[13]] if nbuf > 13 else zero
    r14 = w[buf[14]] if nbuf > 14 else zero
    r15 = w[buf[15]] if nbuf > 15 else zero
    if noisy:
        for j in range(n):
            a[j] += np.int32(np.int16((((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j]))) + (
                ((r8[j] + r9[j]) + (r10[j] + r11[j])) + ((r12[j] + r13[j]) + (r14[j] + r15[j])))))
            qq[j] += _sq8_32(r0, r1, r2, r3, r4, r5, r6, r7, j) + _sq8_32(r8, r9, r10, r11, r12, r13, r14, r15, j)
    else:
        for j in range(n):
            a[j] += np.int32(np.int16((((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j]))) + (
                ((r8[j] + r9[j]) + (r10[j] + r11[j])) + ((r12[j] + r13[j]) + (r14[j] + r15[j])))))


@njit(cache=True, error_model="numpy", inline="always")
def _sq4_32(r0, r1, r2, r3, j):
    """``sum_k r_k[j]**2`` of four rows in int32."""
    s0, s1, s2, s3 = np.int32(r0[j]), np.int32(r1[j]), np.int32(r2[j]), np.int32(r3[j])
    return (s0 * s0 + s1 * s1) + (s2 * s2 + s3 * s3)


@njit(cache=True, error_model="numpy", inline="always")
def _add12_narrow(w, buf, nbuf, zero, a, qq, noisy):
    """Twelve int8/int16 rows (9..12 given, the rest the zero row) summed in 16-bit lanes
    (exact when ``16 max|w| <= 32767``), widened once; with noise their int32 squares too. A
    group of 9..12 rows pads fewer zero rows than the sixteen-row pass."""
    n = a.shape[0]
    r0, r1, r2, r3 = w[buf[0]], w[buf[1]], w[buf[2]], w[buf[3]]
    r4, r5, r6, r7 = w[buf[4]], w[buf[5]], w[buf[6]], w[buf[7]]
    r8 = w[buf[8]]
    r9 = w[buf[9]] if nbuf > 9 else zero
    r10 = w[buf[10]] if nbuf > 10 else zero
    r11 = w[buf[11]] if nbuf > 11 else zero
    if noisy:
        for j in range(n):
            a[j] += np.int32(np.int16((((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j]))) + (
                (r8[j] + r9[j]) + (r10[j] + r11[j]))))
            qq[j] += _sq8_32(r0, r1, r2, r3, r4, r5, r6, r7, j) + _sq4_32(r8, r9, r10, r11, j)
    else:
        for j in range(n):
            a[j] += np.int32(np.int16((((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j]))) + (
                (r8[j] + r9[j]) + (r10[j] + r11[j]))))


@njit(cache=True, error_model="numpy", inline="always")
def _add4_narrow(w, buf, nbuf, zero, a, qq, noisy):
    """Four int8/int16 rows (2..4 given, the rest the zero row) in 16-bit lanes, widened once;
    with noise their int32 squares too."""
    n = a.shape[0]
    r0, r1 = w[buf[0]], w[buf[1]]
    r2 = w[buf[2]] if nbuf > 2 else zero
    r3 = w[buf[3]] if nbuf > 3 else zero
    if noisy:
        for j in range(n):
            a[j] += np.int32(np.int16((r0[j] + r1[j]) + (r2[j] + r3[j])))
            qq[j] += _sq4_32(r0, r1, r2, r3, j)
    else:
        for j in range(n):
            a[j] += np.int32(np.int16((r0[j] + r1[j]) + (r2[j] + r3[j])))


@njit(cache=True, error_model="numpy")
def _add_rows(w, buf, nbuf, zero, a, qq, noisy, integer, sq32, narrow):
    """``a += sum of rows w[buf[:nbuf]]`` (and ``qq += their squares`` when noisy), nbuf <= 16.

    Up to sixteen rows in one pass over the accumulator when their int16 sums are exact
    (``narrow == 16``; with noise only with int32 squares): passes of 4, 8, 12 or 16 rows, the
    smallest that holds the group (padding rows cost their adds and squares), otherwise passes
    of eight.
    """
    if narrow >= 16 and (sq32 or not noisy) and 2 <= nbuf <= 4:
        _add4_narrow(w, buf, nbuf, zero, a, qq, noisy)
    elif nbuf > 8:
        if narrow >= 16 and (sq32 or not noisy) and nbuf <= 12:
            _add12_narrow(w, buf, nbuf, zero, a, qq, noisy)
        elif narrow >= 16 and (sq32 or not noisy):
            _add16_narrow(w, buf, nbuf, zero, a, qq, noisy)
        else:
            _add_upto8(w, buf[:8], 8, zero, a, qq, noisy, integer, sq32, narrow)
            _add_upto8(w, buf[8:], nbuf - 8, zero, a, qq, noisy, integer, sq32, narrow)
    else:
        _add_upto8(w, buf, nbuf, zero, a, qq, noisy, integer, sq32, narrow)


@njit(cache=True, error_model="numpy", inline="always")
def _gather_inputs(w_in, lo, hi, indices, codes, nz0, plane, bit_serial, tile_rows, use_adc, n_tiles,
                   buf, zero, acc, q, rows, noisy, integer, sq32, narrow):  # fmt: skip
    """Add the rows of one step's active inputs to their read's accumulator: slot ``tile +
    plane * n_tiles`` (without an ADC ``2 * plane``). Bit-serial: the inputs whose code has bit
    ``plane``, as binary rows; amplitude mode (``plane`` 0): code 1 as binary rows, larger codes
    ``x`` as ``x w`` (squares ``x^2 w^2``, rows ``x^2``). Binary rows of one slot are added in
    groups (:func:`_add_rows`)."""
    n = w_in.shape[1]
    nbuf = 0
    bslot = -1
    for k in range(lo, hi):
        i = indices[nz0 + k]
        x = codes[nz0 + k]
        if bit_serial:
            x = (x >> plane) & 1
        if x == 0:
            continue
        slot = (i // tile_rows + plane * n_tiles) if use_adc else 2 * plane
        if nbuf > 0 and (slot != bslot or x != 1):
            _add_rows(w_in, buf, nbuf, zero, acc[bslot], q[bslot], noisy, integer, sq32, narrow)
            nbuf = 0
        if x == 1:
            buf[nbuf] = i
            nbuf += 1
            bslot = slot
            rows[slot] += 1
            if nbuf == GROUP:
                _add_rows(w_in, buf, nbuf, zero, acc[bslot], q[bslot], noisy, integer, sq32, narrow)
                nbuf = 0
        else:
            rows[slot] += x * x
            row = w_in[i]
            a = acc[slot]
            for j in range(n):
                a[j] += x * row[j]
            if noisy:
                qq = q[slot]
                for j in range(n):
                    qq[j] += x * x * row[j] * row[j]
    if nbuf > 0:
        _add_rows(w_in, buf, nbuf, zero, acc[bslot], q[bslot], noisy, integer, sq32, narrow)


@njit(cache=True, error_model="numpy", inline="always")
def _adc_read(a, qq, nr, dst, s0, s1, add_to_cur, noisy, identity, r2, g, words, k0, k1, t, sid, stream,
              rel2, add2, ua, fmax, imax):  # fmt: skip
    """One tile read through the ADC (numpy_ref.read_output's rule): ``code = clip(rint(f64(a)
    ua + f64(n)), -max_code, max_code)`` with the noise ``n = sqrt((rel2 f32(q) + add2 f32(rows))
    r2) g`` when noisy; ``identity`` (ua == 1, noise off): ``code = clip(a)``. Then, with
    ``add_to_cur`` (a tile read in one plane), ``dst += (code * s0) * s1`` (the current;
    ``s0 = step``, ``s1 = v``), else ``dst += s0 * code`` (the tile's code sum; ``s0 = 2^plane``).
    Zeroes the accumulators."""
    n = dst.shape[0]
    if noisy:
        column_gaussians_nb(r2, g, words, k0, k1, t, sid, stream)
        fr = add2 * np.float32(nr)
        for j in range(n):
            nc = math.sqrt((rel2 * np.float32(qq[j]) + fr) * r2[j]) * g[j]
            c = np.rint(np.float64(a[j]) * ua + np.float64(nc))
            c = min(max(c, -fmax), fmax)
            dst[j] += (c * s0) * s1 if add_to_cur else s0 * c
            a[j] = 0
            qq[j] = 0
    elif identity:
        for j in range(n):
            c = np.float64(min(max(a[j], -imax), imax))
            dst[j] += (c * s0) * s1 if add_to_cur else s0 * c
            a[j] = 0
    else:
        for j in range(n):
            c = np.rint(np.float64(a[j]) * ua)
            c = min(max(c, -fmax), fmax)
            dst[j] += (c * s0) * s1 if add_to_cur else s0 * c
            a[j] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def _run(indptr, indptr_off, indices, codes, nnz_off, lengths, sample_ids,
         w_in, w_rec, acc_proto, q_proto, tile_rows, n_tin, n_tiles, use_adc, n_planes, bit_serial, coefs,
         step, ua, rel2, add2, identity_adc, max_code,
         unit, v_th, decay, subtract, noisy, k0, k1,
         rate, counts, membrane, spikes, record, integer, sq32, narrow):  # fmt: skip
    B = lengths.shape[0]
    n = w_rec.shape[0]
    K = counts.shape[1]
    n_slots = acc_proto.shape[0]
    nw = 4 * ((n + 3) // 4)
    fmax = np.float64(max_code)
    imax = acc_proto.dtype.type(max_code)
    v_in = coefs[0]  # v, the input value of one code step (plane 0's coefficient)
    for b in prange(B):
        T = lengths[b]
        acc = np.zeros_like(acc_proto)
        q = np.zeros_like(q_proto)
        rows = np.zeros(n_slots, np.int64)
        mem = np.zeros(n, np.float64)
        cur = np.zeros(n, np.float64)
        r2 = np.zeros(nw, np.float32)
        g = np.zeros(nw, np.float32)
        csum = np.zeros(n, np.float64)
        words = np.zeros(nw, np.uint32)
        buf = np.zeros(GROUP, np.int64)
        zero = np.zeros(n, w_rec.dtype)
        s_prev = np.zeros(8 * ((n + 7) // 8), np.bool_)  # padded to whole 64-bit words
        s_words = s_prev.view(np.uint64)
        spk = np.zeros(n, np.int64)
        total = np.zeros(n, np.int64)
        nspk = 0
        ip0 = indptr_off[b]
        nz0 = nnz_off[b]
        sid = np.uint64(sample_ids[b])
        for t in range(T):
            lo, hi = indptr[ip0 + t], indptr[ip0 + t + 1]
            # --- input crossbar: one pass over the step's inputs per plane ---
            for plane in range(n_planes):
                _gather_inputs(w_in, lo, hi, indices, codes, nz0, plane, bit_serial, tile_rows, use_adc, n_tiles,
                               buf, zero, acc, q, rows, noisy, integer, sq32, narrow)  # fmt: skip
            # --- recurrent crossbar: rows of the neurons that spiked at t-1 (slot n_tin + tile) ---
            _gather_spikes(w_rec, spk, nspk, tile_rows, n_tin, use_adc, buf, zero, acc, q, rows, noisy, integer, sq32, narrow)
            # --- reads -> current, in numpy_ref.reads' order ---
            for j in range(n):
                cur[j] = 0.0
            if use_adc:
                _adc_reads(acc, q, rows, cur, csum, n_tiles, n_tin, n_planes, v_in, step, identity_adc, r2, g, words,
                           k0, k1, t, sid, rel2, add2, ua, fmax, imax, noisy)  # fmt: skip
            else:
                _merged_read(acc, q, rows, n_planes, coefs, cur, r2, g, words, k0, k1, t, sid, unit, rel2[0], add2[0], noisy)
            # --- LIF step (neurohw.reservoir.lif) and the step's count bin ---
            _lif_step(mem, cur, s_prev, total, counts[b, (t * K) // T], decay, v_th, subtract)
            nspk = _spike_list(s_words, spk)
            if record:
                for k in range(nspk):
                    spikes[b, t, spk[k]] = True
        for j in range(n):
            rate[b, j] = np.float32(total[j] / max(T, 1))
            membrane[b, j] = np.float32(mem[j])


@njit(cache=True, error_model="numpy", inline="always")
def _gather_spikes(w_rec, spk, nspk, tile_rows, n_tin, use_adc, buf, zero, acc, q, rows, noisy, integer, sq32, narrow):
    """The recurrent crossbar's rows of the neurons that spiked at t-1 (``spk[:nspk]``, ascending)
    into the accumulators: slot ``n_tin + row tile`` with an ADC, else slot 1; ``GROUP`` rows
    per pass (:func:`_add_rows`), a pass ending where the row tile changes."""
    nbuf = 0
    btile = -1
    for k in range(nspk):
        i = spk[k]
        tile = n_tin + i // tile_rows if use_adc else 1
        if nbuf > 0 and tile != btile:
            _add_rows(w_rec, buf, nbuf, zero, acc[btile], q[btile], noisy, integer, sq32, narrow)
            nbuf = 0
        buf[nbuf] = i
        nbuf += 1
        btile = tile
        rows[tile] += 1
        if nbuf == GROUP:
            _add_rows(w_rec, buf, nbuf, zero, acc[btile], q[btile], noisy, integer, sq32, narrow)
            nbuf = 0
    if nbuf > 0:
        _add_rows(w_rec, buf, nbuf, zero, acc[btile], q[btile], noisy, integer, sq32, narrow)


@njit(cache=True, error_model="numpy", inline="always")
def _adc_reads(acc, q, rows, cur, csum, n_tiles, n_tin, n_planes, v_in, step, identity_adc, r2, g, words,
               k0, k1, t, sid, rel2, add2, ua, fmax, imax, noisy):  # fmt: skip
    """With an ADC: every tile with rows read, in numpy_ref.reads' order, its codes into ``cur``:
    one read ``cur += (code * step) * v``, or for input bit planes the codes shifted and added as
    integers (exact in float64), then ``cur += (sum_b 2^b code_b * step) * v``."""
    n = cur.shape[0]
    for tile in range(n_tiles):
        vt = v_in if tile < n_tin else 1.0
        if tile >= n_tin or n_planes == 1:  # one read: cur += (code * step) * v
            if rows[tile] > 0:
                _adc_read(acc[tile], q[tile], rows[tile], cur, step[tile], vt, True, noisy, identity_adc[tile], r2, g, words,
                          k0, k1, t, sid, tile, rel2[tile], add2[tile], ua[tile], fmax, imax)  # fmt: skip
                rows[tile] = 0
            continue
        nread = 0
        for plane in range(n_planes):
            slot = tile + plane * n_tiles
            if rows[slot] == 0:
                continue
            if nread == 0:
                for j in range(n):
                    csum[j] = 0.0
            _adc_read(acc[slot], q[slot], rows[slot], csum, 2.0**plane, 1.0, False, noisy, identity_adc[tile], r2, g, words,
                      k0, k1, t, sid, slot, rel2[tile], add2[tile], ua[tile], fmax, imax)  # fmt: skip
            rows[slot] = 0
            nread += 1
        if nread > 0:
            st = step[tile]
            for j in range(n):
                cur[j] += (csum[j] * st) * vt


@njit(cache=True, error_model="numpy", inline="always")
def _lif_step(mem, cur, s_prev, total, cnt, decay, v_th, subtract):
    """One LIF step (:func:`neurohw.reservoir.lif.lif_step`, same operations), branch-free so that
    it vectorises; the spikes counted in ``total`` and the step's count bin ``cnt``."""
    for j in range(mem.shape[0]):
        leak = mem[j] * decay
        sp = s_prev[j]
        if subtract:
            leak = leak - v_th if sp else leak
        else:
            leak = 0.0 if sp else leak
        m = leak + cur[j]
        mem[j] = m
        fired = m > v_th
        s_prev[j] = fired
        total[j] += np.int64(fired)
        cnt[j] += np.int32(fired)


@njit(cache=True, error_model="numpy", inline="always")
def _spike_list(s_words, spk):
    """The neurons that fired, ascending, into ``spk``; their number. Eight flags per 64-bit
    word (a flag is byte 0x01), empty words skipped."""
    nspk = 0
    for wi in range(s_words.shape[0]):
        x = s_words[wi]
        while x != 0:
            spk[nspk] = 8 * wi + (_trailing_zeros(x) >> 3)
            nspk += 1
            x &= x - np.uint64(1)
    return nspk


@njit(cache=True, error_model="numpy")
def _merged_read(acc, q, rows, n_planes, coefs, cur, r2, g, words, k0, k1, t, sid, unit, rel2, add2, noisy):
    """Without an ADC, all of a step's reads as one Gaussian read per column (stream 0):
    ``a = f64(a_rec) + sum_b c_b f64(a_b)`` (slots: plane ``b`` of the inputs ``2 b``, the
    recurrent crossbar 1), ``q`` likewise with ``c_b^2``; ``cur = a unit + f64(noise)``."""
    n = cur.shape[0]
    nrows = np.float64(rows[1])
    for b in range(n_planes):
        nrows += (coefs[b] * coefs[b]) * np.float64(rows[2 * b])
    if nrows == 0:
        return
    a_rec = acc[1]
    for j in range(n):
        cur[j] = np.float64(a_rec[j])
        a_rec[j] = 0
    for b in range(n_planes):
        c = coefs[b]
        a = acc[2 * b]
        for j in range(n):
            cur[j] += c * np.float64(a[j])
            a[j] = 0
    if noisy:
        column_gaussians_nb(r2, g, words, k0, k1, t, sid, 0)
        var = np.zeros(n, np.float64)
        q_rec = q[1]
        for j in range(n):
            var[j] = np.float64(q_rec[j])
            q_rec[j] = 0
        for b in range(n_planes):
            c2 = coefs[b] * coefs[b]
            qb = q[2 * b]
            for j in range(n):
                var[j] += c2 * np.float64(qb[j])
                qb[j] = 0
        fr = add2 * np.float32(nrows)
        for j in range(n):
            nc = math.sqrt((rel2 * np.float32(var[j]) + fr) * r2[j]) * g[j]
            cur[j] = cur[j] * unit + np.float64(nc)
    else:
        for j in range(n):
            cur[j] = cur[j] * unit
    for b in range(2 * n_planes):
        rows[b] = 0


def narrow_sums(syn: Synapses) -> int:
    """How many rows of integer weights may be summed in int16 lanes: 16 or 8 when the weights
    are stored as int8/int16 and ``16 max|w|`` (``8 max|w|``) <= 32767, else 0 (int32 lanes).
    The reference macro (max|w| = 424 levels) takes 16."""
    if not syn.integer or syn.w_in.dtype.itemsize > 2 or syn.w_rec.dtype.itemsize > 2:
        return 0
    wmax = syn.wmax
    return 16 if 16 * wmax <= 32767 else 8 if 8 * wmax <= 32767 else 0


def identity_adc_tiles(syn: Synapses) -> np.ndarray:
    """Per tile (input tiles, then recurrent): whether its ADC conversion of an integer sum
    ``a`` is ``clip(a, -max_code, max_code) * unit`` bit for bit: ``ua == 1.0`` (then
    ``rint(f64(a) * ua) == a``) and ``step == unit``. The reference macro's ADC has one level
    per code, so all its tiles are."""
    _, n_tin, n_trec = syn.tiles()
    if syn.adc is None or not syn.integer:
        return np.zeros(1 if syn.adc is None else n_tin + n_trec, np.bool_)
    step, ua, _, _ = syn.read_tables()
    return (ua == 1.0) & (step == syn.unit_value)


def square_sums_fit_int32(syn: Synapses, max_value: int = 255) -> bool:
    """Whether ``sum x^2 w^2`` over every row of both crossbars stays below 2**31 for input
    values (per plane) up to ``max_value``."""
    if not syn.integer:
        return False
    wmax = syn.wmax
    return (syn.n_inputs * max_value**2 + syn.n_neurons) * wmax**2 < 2**31


def slots(syn: Synapses, n_planes: int) -> tuple[int, int]:
    """``(n_tiles, n_slots)``: reads per plane (input + recurrent tiles; 2 without an ADC: the
    input and the recurrent crossbar) and accumulators (one per tile and plane)."""
    _, n_tin, n_trec = syn.tiles()
    n_tiles = n_tin + n_trec if syn.adc is not None else 2
    return n_tiles, n_tiles * n_planes


def kernel_arrays(syn: Synapses, noise: bool, n_planes: int, max_value: int = 255):
    """The dtype-carrying scratch prototypes of :func:`_run` (accumulators and squares)."""
    n = syn.n_neurons
    noisy = bool(noise and syn.noisy)
    acc_dtype = np.int32 if syn.integer else np.float64
    q_dtype = np.int64 if syn.integer else np.float64
    if square_sums_fit_int32(syn, max_value):
        q_dtype = np.int32
    _, n_slots = slots(syn, n_planes)
    return np.zeros((n_slots, n), acc_dtype), np.zeros((n_slots, n) if noisy else (n_slots, 1), q_dtype), noisy


def check_integer_range(syn: Synapses, max_value: int = 255) -> None:
    """Raise when an int32 accumulator could overflow (never for realistic level counts)."""
    if syn.integer:
        wmax = syn.wmax
        bound = wmax * (syn.n_inputs * max_value + syn.n_neurons)
        if bound >= 2**31:
            raise ValueError(f"integer weights up to {wmax} levels could overflow the int32 accumulator")


def run_batch(
    syn: Synapses, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False, threads: int | None = None
) -> BatchResult:
    """Run a batch (see :func:`neurohw.reservoir.backends.numpy_ref.run_batch`)."""
    pb = pack_batch(rasters)
    B = len(rasters)
    n = syn.n_neurons
    table = syn.input_codes(int(pb.values.max(initial=0)))
    codes = table[pb.values] if len(pb.values) else pb.values
    max_code = int(table.max(initial=0))
    n_planes = syn.n_planes(max_code)
    plane_max = 1 if syn.bit_serial else max(max_code, 1)
    check_integer_range(syn, plane_max)
    acc_proto, q_proto, noisy = kernel_arrays(syn, noise, n_planes, plane_max)
    sq32 = q_proto.dtype == np.int32
    tr, n_tin, _ = syn.tiles()
    n_tiles, _ = slots(syn, n_planes)
    step, ua, rel2, add2 = syn.read_tables()
    k0, k1 = seed_key(syn.seed)
    rate = np.zeros((B, n), np.float32)
    counts = np.zeros((B, count_bins, n), np.int32)
    membrane = np.zeros((B, n), np.float32)
    T_max = int(pb.lengths.max(initial=0))
    spikes = np.zeros((B, T_max, n) if record_spikes else (1, 1, 1), np.bool_)
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    with numba.parallel_chunksize(1):  # samples handed out one at a time: a thread that the OS
        # pauses (shared machine) or that gets the longer samples does not hold up the batch
        _run(pb.indptr, pb.indptr_off, pb.indices, np.ascontiguousarray(codes, np.int32), pb.nnz_off, pb.lengths,
             np.asarray(sample_ids, np.int64), syn.w_in, syn.w_rec, acc_proto, q_proto,
             int(tr), int(n_tin), int(n_tiles), syn.adc is not None, int(n_planes), syn.bit_serial,
             syn.plane_coefficients(n_planes), step, ua, rel2, add2, identity_adc_tiles(syn),
             int(syn.adc.max_code) if syn.adc is not None else 1,
             syn.unit_value, float(syn.v_th), float(syn.decay), syn.reset == "subtract", noisy,
             np.uint64(k0), np.uint64(k1), rate, counts, membrane, spikes, bool(record_spikes),
             syn.integer, sq32, narrow_sums(syn))  # fmt: skip
    rec = [spikes[b, : pb.lengths[b]] for b in range(B)] if record_spikes else None
    return BatchResult(rate, counts, membrane, rec)


#: the weight kinds :func:`compile_kernels` compiles :func:`_run` for: conductance levels of up
#: to 127 (int8) and of up to 32767 (int16; the TaOx macro's 424), and float weights
KERNEL_KINDS = ((np.int8, 100), (np.int16, 1000), (np.float64, None))


def compile_kernels() -> list[str]:
    """Compile :func:`_run` (and every kernel it calls) for each of :data:`KERNEL_KINDS`, or load
    it from numba's cache when it is there: setup.sh calls this once per machine, so that no run
    and no test pays the JIT (about 40 s a kind on two cores). Returns the weight dtypes done."""
    rng = np.random.default_rng(0)
    raster = to_sparse((rng.random((6, 4)) < 0.5).astype(np.uint8))
    done = []
    for dtype, levels in KERNEL_KINDS:
        w_in, w_rec = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
        if levels is None:
            syn = Synapses(w_in, w_rec, None, 1.0, 0.5)
        else:
            syn = Synapses((w_in * levels / 4).astype(dtype), (w_rec * levels / 4).astype(dtype), 1.0 / levels, 1.0, 0.5)
        run_batch(syn, [raster], [0])
        done.append(np.dtype(dtype).name)
    return done
