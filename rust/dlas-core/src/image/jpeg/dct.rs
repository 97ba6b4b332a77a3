//! libjpeg's accurate integer DCT, forward and inverse (jfdctint.c, jidctint.c: Loeffler,
//! Ligtenberg and Moschytz, with 13-bit constants), with the quantisation around it:
//! portable code, which [`super::dct_avx2`] reproduces bit for bit on x86-64.
//!
//! A pass runs over 8 lanes where `d[k]` holds input `k` of every lane and receives
//! output `k`. The first pass keeps 2 extra bits of precision; the second removes them
//! (and, for the inverse, the 3 bits of the 2-D scale).

/// The fixed-point constants: `F0_298` is 0.298631336 with 13 fraction bits, and so on.
pub(super) mod fixed {
    pub const CONST_BITS: i32 = 13;
    pub const PASS1_BITS: i32 = 2;
    pub const F0_298: i32 = 2446;
    pub const F0_390: i32 = 3196;
    pub const F0_541: i32 = 4433;
    pub const F0_765: i32 = 6270;
    pub const F0_899: i32 = 7373;
    pub const F1_175: i32 = 9633;
    pub const F1_501: i32 = 12299;
    pub const F1_847: i32 = 15137;
    pub const F1_961: i32 = 16069;
    pub const F2_053: i32 = 16819;
    pub const F2_562: i32 = 20995;
    pub const F3_072: i32 = 25172;
}

/// Forward DCT and quantisation of the 8x8 block whose rows start `stride` bytes apart
/// in `src`; coefficients in natural order. The portable version of
/// [`super::dct_avx2::fdct_quant`].
#[inline(always)]
pub(super) fn fdct_quant(src: &[u8], stride: usize, divisor: &[f32; 64], out: &mut [i32; 64]) {
    // d[column][row]: each lane is one row of the block.
    let mut d = [[0i32; 8]; 8];
    for y in 0..8 {
        let line = &src[y * stride..][..8];
        for x in 0..8 {
            d[x][y] = line[x] as i32 - 128;
        }
    }
    fdct_pass(&mut d, false);
    transpose(&mut d);
    fdct_pass(&mut d, true);
    // d[v][u] is now coefficient (v, u): natural order when flattened.
    for (i, (o, &x)) in out.iter_mut().zip(d.as_flattened()).enumerate() {
        *o = quantise(x, divisor[i]);
    }
}

/// `x / d` rounded half away from zero, `d` being 8 times the quantisation step (the
/// transform's output scale), as libjpeg quantises.
#[inline(always)]
fn quantise(x: i32, d: f32) -> i32 {
    // |x| + d/2 < 2^20 and d <= 2^19 are exact in f32, and the correctly rounded
    // quotient's floor is the exact integer quotient: if a/d is not an integer it is
    // at least 1/d below the next one, far more than the rounding error (a/d) * 2^-24.
    let a = x.abs() as f32 + 0.5 * d;
    // SAFETY: `a / d` is finite, non-negative and below 2^20.
    let v: i32 = unsafe { (a / d).to_int_unchecked() };
    if x < 0 {
        -v
    } else {
        v
    }
}

// The lane loop indexes eight arrays at once, which is how it vectorises.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn fdct_pass(d: &mut [[i32; 8]; 8], second: bool) {
    use fixed::*;
    let (shift, dc_shift) = if second {
        (CONST_BITS + PASS1_BITS, PASS1_BITS)
    } else {
        (CONST_BITS - PASS1_BITS, 0)
    };
    let round = 1i32 << (shift - 1);
    let dc_round = if second { 1i32 << (PASS1_BITS - 1) } else { 0 };
    for l in 0..8 {
        let tmp0 = d[0][l] + d[7][l];
        let tmp7 = d[0][l] - d[7][l];
        let tmp1 = d[1][l] + d[6][l];
        let tmp6 = d[1][l] - d[6][l];
        let tmp2 = d[2][l] + d[5][l];
        let tmp5 = d[2][l] - d[5][l];
        let tmp3 = d[3][l] + d[4][l];
        let tmp4 = d[3][l] - d[4][l];

        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        if second {
            d[0][l] = (tmp10 + tmp11 + dc_round) >> dc_shift;
            d[4][l] = (tmp10 - tmp11 + dc_round) >> dc_shift;
        } else {
            d[0][l] = (tmp10 + tmp11) << PASS1_BITS;
            d[4][l] = (tmp10 - tmp11) << PASS1_BITS;
        }
        let z1 = (tmp12 + tmp13) * F0_541;
        d[2][l] = (z1 + tmp13 * F0_765 + round) >> shift;
        d[6][l] = (z1 - tmp12 * F1_847 + round) >> shift;

        let z1 = tmp4 + tmp7;
        let z2 = tmp5 + tmp6;
        let z3 = tmp4 + tmp6;
        let z4 = tmp5 + tmp7;
        let z5 = (z3 + z4) * F1_175;
        let tmp4 = tmp4 * F0_298;
        let tmp5 = tmp5 * F2_053;
        let tmp6 = tmp6 * F3_072;
        let tmp7 = tmp7 * F1_501;
        let z1 = -z1 * F0_899;
        let z2 = -z2 * F2_562;
        let z3 = -z3 * F1_961 + z5;
        let z4 = -z4 * F0_390 + z5;
        d[7][l] = (tmp4 + z1 + z3 + round) >> shift;
        d[5][l] = (tmp5 + z2 + z4 + round) >> shift;
        d[3][l] = (tmp6 + z2 + z3 + round) >> shift;
        d[1][l] = (tmp7 + z1 + z4 + round) >> shift;
    }
}

#[inline(always)]
fn transpose(d: &mut [[i32; 8]; 8]) {
    *d = std::array::from_fn(|i| std::array::from_fn(|j| d[j][i]));
}

/// libjpeg's accurate integer inverse DCT of quantised coefficients (natural order)
/// times their quantisation steps, written as 8-bit samples (plus 128, saturated as
/// libjpeg-turbo's SIMD code does; its plain C path, which is never used since the
/// build requires SIMD, wraps values far out of range instead). The portable
/// version of [`super::dct_avx2::dequant_idct`].
#[inline(always)]
pub(super) fn dequant_idct(coef: &[i32; 64], step: &[i32; 64], out: &mut [u8], stride: usize) {
    // d[v][u]: lanes are columns u; the first pass runs down the columns.
    let mut d: [[i32; 8]; 8] =
        std::array::from_fn(|v| std::array::from_fn(|u| coef[8 * v + u] * step[8 * v + u]));
    idct_pass(&mut d, false);
    transpose(&mut d);
    idct_pass(&mut d, true);
    // d[x][y] is now sample (y, x).
    for y in 0..8 {
        let line = &mut out[y * stride..][..8];
        for (x, px) in line.iter_mut().enumerate() {
            *px = (d[x][y] + 128).clamp(0, 255) as u8;
        }
    }
}

/// One pass of the inverse transform over 8 lanes (see [`fdct_pass`]): the first keeps
/// 2 extra bits, the second removes them and the 3 bits of the 2-D scale.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn idct_pass(d: &mut [[i32; 8]; 8], second: bool) {
    use fixed::*;
    let shift = if second {
        CONST_BITS + PASS1_BITS + 3
    } else {
        CONST_BITS - PASS1_BITS
    };
    let round = 1i32 << (shift - 1);
    for l in 0..8 {
        let z2 = d[2][l];
        let z3 = d[6][l];
        let z1 = (z2 + z3) * F0_541;
        let tmp2 = z1 - z3 * F1_847;
        let tmp3 = z1 + z2 * F0_765;
        let tmp0 = (d[0][l] + d[4][l]) << CONST_BITS;
        let tmp1 = (d[0][l] - d[4][l]) << CONST_BITS;
        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;

        let (t0, t1, t2, t3) = (d[7][l], d[5][l], d[3][l], d[1][l]);
        let z1 = t0 + t3;
        let z2 = t1 + t2;
        let z3 = t0 + t2;
        let z4 = t1 + t3;
        let z5 = (z3 + z4) * F1_175;
        let z1 = -z1 * F0_899;
        let z2 = -z2 * F2_562;
        let z3 = -z3 * F1_961 + z5;
        let z4 = -z4 * F0_390 + z5;
        let t0 = t0 * F0_298 + z1 + z3;
        let t1 = t1 * F2_053 + z2 + z4;
        let t2 = t2 * F3_072 + z2 + z3;
        let t3 = t3 * F1_501 + z1 + z4;

        d[0][l] = (tmp10 + t3 + round) >> shift;
        d[7][l] = (tmp10 - t3 + round) >> shift;
        d[1][l] = (tmp11 + t2 + round) >> shift;
        d[6][l] = (tmp11 - t2 + round) >> shift;
        d[2][l] = (tmp12 + t1 + round) >> shift;
        d[5][l] = (tmp12 - t1 + round) >> shift;
        d[3][l] = (tmp13 + t0 + round) >> shift;
        d[4][l] = (tmp13 - t0 + round) >> shift;
    }
}
