//! The transforms of [`super::dct`] with AVX2, bit for bit: a block is eight vectors of
//! eight 32-bit lanes, transposed with unpack instructions between the two passes.

use std::arch::x86_64::*;

use super::dct::fixed::*;

/// See [`super::dct::fdct_quant`].
///
/// # Safety
/// The CPU must support AVX2, and `src` must hold 8 rows of 8 bytes, `stride`
/// bytes apart (checked).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn fdct_quant(
    src: &[u8],
    stride: usize,
    divisor: &[f32; 64],
    out: &mut [i32; 64],
) {
    assert!(src.len() >= 7 * stride + 8, "block outside its plane");
    let row = |y: usize| {
        // SAFETY: row y's 8 bytes are inside `src` (asserted above).
        unsafe { _mm_loadl_epi64(src.as_ptr().add(y * stride) as *const __m128i) }
    };
    // Transpose the 8x8 bytes: c0 holds columns 0 and 1 (rows 0-7 each), etc.
    let (a01, a23) = (
        _mm_unpacklo_epi8(row(0), row(1)),
        _mm_unpacklo_epi8(row(2), row(3)),
    );
    let (a45, a67) = (
        _mm_unpacklo_epi8(row(4), row(5)),
        _mm_unpacklo_epi8(row(6), row(7)),
    );
    let (b0, b1) = (_mm_unpacklo_epi16(a01, a23), _mm_unpackhi_epi16(a01, a23));
    let (b2, b3) = (_mm_unpacklo_epi16(a45, a67), _mm_unpackhi_epi16(a45, a67));
    let c = [
        _mm_unpacklo_epi32(b0, b2),
        _mm_unpackhi_epi32(b0, b2),
        _mm_unpacklo_epi32(b1, b3),
        _mm_unpackhi_epi32(b1, b3),
    ];
    let centre = _mm256_set1_epi32(128);
    let widen = |v: __m128i| _mm256_sub_epi32(_mm256_cvtepu8_epi32(v), centre);
    let mut d = [
        widen(c[0]),
        widen(_mm_srli_si128::<8>(c[0])),
        widen(c[1]),
        widen(_mm_srli_si128::<8>(c[1])),
        widen(c[2]),
        widen(_mm_srli_si128::<8>(c[2])),
        widen(c[3]),
        widen(_mm_srli_si128::<8>(c[3])),
    ];
    pass::<false>(&mut d);
    transpose(&mut d);
    pass::<true>(&mut d);
    for (v, lanes) in d.iter().enumerate() {
        // SAFETY: 8 floats from 8 * v < 64.
        let div = unsafe { _mm256_loadu_ps(divisor[8 * v..][..8].as_ptr()) };
        let a = _mm256_cvtepi32_ps(_mm256_abs_epi32(*lanes));
        let a = _mm256_add_ps(a, _mm256_mul_ps(div, _mm256_set1_ps(0.5)));
        // Truncation is the floor here: the quotient is non-negative (see
        // `dct::quantise` for exactness).
        let q = _mm256_cvttps_epi32(_mm256_div_ps(a, div));
        let q = _mm256_sign_epi32(q, *lanes);
        // SAFETY: 8 lanes to 8 * v < 64.
        unsafe { _mm256_storeu_si256(out[8 * v..][..8].as_mut_ptr() as *mut __m256i, q) };
    }
}

/// See [`super::dct::dequant_idct`]: `coef` are quantised coefficients (natural order),
/// `step` their quantisation steps.
///
/// # Safety
/// The CPU must support AVX2; `out` must hold 8 rows of 8 bytes, `stride` apart
/// (checked).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dequant_idct(
    coef: &[i32; 64],
    step: &[i32; 64],
    out: &mut [u8],
    stride: usize,
) {
    assert!(out.len() >= 7 * stride + 8, "block outside its plane");
    let load = |a: &[i32; 64], v: usize| {
        // SAFETY: 8 lanes from 8 * v < 64.
        unsafe { _mm256_loadu_si256(a[8 * v..][..8].as_ptr() as *const __m256i) }
    };
    let mut d: [__m256i; 8] =
        std::array::from_fn(|v| _mm256_mullo_epi32(load(coef, v), load(step, v)));
    idct_pass::<false>(&mut d);
    transpose(&mut d);
    idct_pass::<true>(&mut d);
    transpose(&mut d);
    // d[y] is now row y; plus 128, saturated to bytes.
    let centre = _mm256_set1_epi32(128);
    for (y, row) in d.iter().enumerate() {
        let v = _mm256_add_epi32(*row, centre);
        let words = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let bytes = _mm_packus_epi16(words, words);
        // SAFETY: row y's 8 bytes are inside `out` (asserted above).
        unsafe { _mm_storel_epi64(out.as_mut_ptr().add(y * stride) as *mut __m128i, bytes) };
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn idct_pass<const SECOND: bool>(d: &mut [__m256i; 8]) {
    let add = |a, b| _mm256_add_epi32(a, b);
    let sub = |a, b| _mm256_sub_epi32(a, b);
    let mul = |a, k: i32| _mm256_mullo_epi32(a, _mm256_set1_epi32(k));
    let descale = |x| {
        if SECOND {
            let r = _mm256_set1_epi32(1 << (CONST_BITS + PASS1_BITS + 3 - 1));
            _mm256_srai_epi32::<{ CONST_BITS + PASS1_BITS + 3 }>(add(x, r))
        } else {
            let r = _mm256_set1_epi32(1 << (CONST_BITS - PASS1_BITS - 1));
            _mm256_srai_epi32::<{ CONST_BITS - PASS1_BITS }>(add(x, r))
        }
    };
    let z1 = mul(add(d[2], d[6]), F0_541);
    let tmp2 = sub(z1, mul(d[6], F1_847));
    let tmp3 = add(z1, mul(d[2], F0_765));
    let tmp0 = _mm256_slli_epi32::<CONST_BITS>(add(d[0], d[4]));
    let tmp1 = _mm256_slli_epi32::<CONST_BITS>(sub(d[0], d[4]));
    let tmp10 = add(tmp0, tmp3);
    let tmp13 = sub(tmp0, tmp3);
    let tmp11 = add(tmp1, tmp2);
    let tmp12 = sub(tmp1, tmp2);

    let (t0, t1, t2, t3) = (d[7], d[5], d[3], d[1]);
    let z1 = add(t0, t3);
    let z2 = add(t1, t2);
    let z3 = add(t0, t2);
    let z4 = add(t1, t3);
    let z5 = mul(add(z3, z4), F1_175);
    let z1 = mul(z1, -F0_899);
    let z2 = mul(z2, -F2_562);
    let z3 = add(mul(z3, -F1_961), z5);
    let z4 = add(mul(z4, -F0_390), z5);
    let t0 = add(add(mul(t0, F0_298), z1), z3);
    let t1 = add(add(mul(t1, F2_053), z2), z4);
    let t2 = add(add(mul(t2, F3_072), z2), z3);
    let t3 = add(add(mul(t3, F1_501), z1), z4);

    d[0] = descale(add(tmp10, t3));
    d[7] = descale(sub(tmp10, t3));
    d[1] = descale(add(tmp11, t2));
    d[6] = descale(sub(tmp11, t2));
    d[2] = descale(add(tmp12, t1));
    d[5] = descale(sub(tmp12, t1));
    d[3] = descale(add(tmp13, t0));
    d[4] = descale(sub(tmp13, t0));
}

#[target_feature(enable = "avx2")]
#[inline]
fn transpose(d: &mut [__m256i; 8]) {
    let t: [__m256i; 8] = std::array::from_fn(|i| {
        let (a, b) = (d[i & !1], d[i | 1]);
        match i % 2 {
            0 => _mm256_unpacklo_epi32(a, b),
            _ => _mm256_unpackhi_epi32(a, b),
        }
    });
    // t[0] = unpacklo(d0, d1), t[1] = unpackhi(d0, d1), t[2] = lo(d2, d3), ...
    let u = [
        _mm256_unpacklo_epi64(t[0], t[2]),
        _mm256_unpackhi_epi64(t[0], t[2]),
        _mm256_unpacklo_epi64(t[1], t[3]),
        _mm256_unpackhi_epi64(t[1], t[3]),
        _mm256_unpacklo_epi64(t[4], t[6]),
        _mm256_unpackhi_epi64(t[4], t[6]),
        _mm256_unpacklo_epi64(t[5], t[7]),
        _mm256_unpackhi_epi64(t[5], t[7]),
    ];
    for i in 0..4 {
        d[i] = _mm256_permute2x128_si256::<0x20>(u[i], u[i + 4]);
        d[i + 4] = _mm256_permute2x128_si256::<0x31>(u[i], u[i + 4]);
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn pass<const SECOND: bool>(d: &mut [__m256i; 8]) {
    let add = |a, b| _mm256_add_epi32(a, b);
    let sub = |a, b| _mm256_sub_epi32(a, b);
    let mul = |a, k: i32| _mm256_mullo_epi32(a, _mm256_set1_epi32(k));
    let descale = |x| {
        if SECOND {
            let r = _mm256_set1_epi32(1 << (CONST_BITS + PASS1_BITS - 1));
            _mm256_srai_epi32::<{ CONST_BITS + PASS1_BITS }>(add(x, r))
        } else {
            let r = _mm256_set1_epi32(1 << (CONST_BITS - PASS1_BITS - 1));
            _mm256_srai_epi32::<{ CONST_BITS - PASS1_BITS }>(add(x, r))
        }
    };
    let tmp0 = add(d[0], d[7]);
    let tmp7 = sub(d[0], d[7]);
    let tmp1 = add(d[1], d[6]);
    let tmp6 = sub(d[1], d[6]);
    let tmp2 = add(d[2], d[5]);
    let tmp5 = sub(d[2], d[5]);
    let tmp3 = add(d[3], d[4]);
    let tmp4 = sub(d[3], d[4]);

    let tmp10 = add(tmp0, tmp3);
    let tmp13 = sub(tmp0, tmp3);
    let tmp11 = add(tmp1, tmp2);
    let tmp12 = sub(tmp1, tmp2);
    if SECOND {
        let r = _mm256_set1_epi32(1 << (PASS1_BITS - 1));
        d[0] = _mm256_srai_epi32::<PASS1_BITS>(add(add(tmp10, tmp11), r));
        d[4] = _mm256_srai_epi32::<PASS1_BITS>(add(sub(tmp10, tmp11), r));
    } else {
        d[0] = _mm256_slli_epi32::<PASS1_BITS>(add(tmp10, tmp11));
        d[4] = _mm256_slli_epi32::<PASS1_BITS>(sub(tmp10, tmp11));
    }
    let z1 = mul(add(tmp12, tmp13), F0_541);
    d[2] = descale(add(z1, mul(tmp13, F0_765)));
    d[6] = descale(sub(z1, mul(tmp12, F1_847)));

    let z1 = add(tmp4, tmp7);
    let z2 = add(tmp5, tmp6);
    let z3 = add(tmp4, tmp6);
    let z4 = add(tmp5, tmp7);
    let z5 = mul(add(z3, z4), F1_175);
    let tmp4 = mul(tmp4, F0_298);
    let tmp5 = mul(tmp5, F2_053);
    let tmp6 = mul(tmp6, F3_072);
    let tmp7 = mul(tmp7, F1_501);
    let z1 = mul(z1, -F0_899);
    let z2 = mul(z2, -F2_562);
    let z3 = add(mul(z3, -F1_961), z5);
    let z4 = add(mul(z4, -F0_390), z5);
    d[7] = descale(add(add(tmp4, z1), z3));
    d[5] = descale(add(add(tmp5, z2), z4));
    d[3] = descale(add(add(tmp6, z2), z3));
    d[1] = descale(add(add(tmp7, z1), z4));
}

#[cfg(test)]
mod tests {
    use super::super::dct::{dequant_idct, fdct_quant};
    use super::super::dct_avx2 as x86;

    #[test]
    fn avx2_transform_matches_the_portable_one() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut s = 0x1234_5678_9abc_def1u64;
            let mut divisor = [0f32; 64];
            for (i, d) in divisor.iter_mut().enumerate() {
                *d = 8.0 * (1 + (i * 37) % 255) as f32;
            }
            for case in 0..2000 {
                let src: Vec<u8> = (0..8 * 11)
                    .map(|i| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        match case % 3 {
                            0 => s as u8,
                            1 => [0u8, 255][(s as usize + i) % 2],
                            _ => (i * 3) as u8,
                        }
                    })
                    .collect();
                let (mut a, mut b) = ([0i32; 64], [0i32; 64]);
                fdct_quant(&src, 11, &divisor, &mut a);
                // SAFETY: AVX2 is present (checked above).
                unsafe { x86::fdct_quant(&src, 11, &divisor, &mut b) };
                assert_eq!(a, b, "case {case}");
                let step: [i32; 64] = std::array::from_fn(|i| (divisor[i] / 8.0) as i32);
                let (mut x, mut y) = ([0u8; 8 * 11], [0u8; 8 * 11]);
                dequant_idct(&a, &step, &mut x, 11);
                // SAFETY: AVX2 is present (checked above).
                unsafe { x86::dequant_idct(&a, &step, &mut y, 11) };
                assert_eq!(x, y, "inverse, case {case}");
            }
        }
    }
}
