//! libjpeg's decoder output stage, in Rust: "fancy" 4:2:0 chroma upsampling and its
//! fixed-point YCbCr -> RGB conversion (for the codec-free round trip).

/// libjpeg's decoder output for 4:2:0 planes of a `w x h` image (even sides): chroma
/// upsampled by its "fancy" triangle filter (3/4 of the nearer chroma sample and 1/4
/// of the farther, in both directions, with its 8/7 rounding biases; edge samples
/// repeated), then YCbCr converted to RGB with its 16-bit fixed-point tables. Calls
/// `put(row, [r, g, b])` with each row's three channels.
pub(crate) fn ycc420_to_rgb(
    planes: [(&[u8], usize); 3],
    w: usize,
    h: usize,
    put: impl FnMut(usize, [&[u8]; 3]),
) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2 {
        #[target_feature(enable = "avx2")]
        fn avx2(
            planes: [(&[u8], usize); 3],
            w: usize,
            h: usize,
            put: impl FnMut(usize, [&[u8]; 3]),
        ) {
            // The closure is compiled for AVX2 too, so the call needs no unsafe.
            ycc420_to_rgb_impl(planes, w, h, put, |sums, o| upsample_row_avx2(sums, o))
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(planes, w, h, put) };
    }
    ycc420_to_rgb_impl(planes, w, h, put, upsample_row)
}

/// One output row of libjpeg's fancy chroma upsampling, horizontally: from the column
/// sums `s` of a chroma row (`3 * nearer + farther`, with one pad each side), output
/// `2c` is `(3 s[c+1] + s[c] + 8) >> 4` and output `2c + 1` is `(3 s[c+1] + s[c+2] +
/// 7) >> 4`.
#[inline(always)]
fn upsample_row(sums: &[i32], o: &mut [i32]) {
    upsample_row_from(sums, o, 0)
}

#[inline(always)]
fn upsample_row_from(sums: &[i32], o: &mut [i32], from: usize) {
    let cw = o.len() / 2;
    assert!(sums.len() >= cw + 2, "column sums with pads");
    for c in from..cw {
        let (prev, this, next) = (sums[c], sums[c + 1], sums[c + 2]);
        o[2 * c] = (this * 3 + prev + 8) >> 4;
        o[2 * c + 1] = (this * 3 + next + 7) >> 4;
    }
}

/// [`upsample_row`] eight chroma samples (sixteen outputs) at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn upsample_row_avx2(sums: &[i32], o: &mut [i32]) {
    use std::arch::x86_64::*;
    let cw = o.len() / 2;
    assert!(sums.len() >= cw + 2, "column sums with pads");
    let (eight, seven) = (_mm256_set1_epi32(8), _mm256_set1_epi32(7));
    let mut c = 0;
    while c + 8 <= cw {
        // SAFETY: c + 10 <= cw + 2 <= sums.len() and 2c + 16 <= 2 cw <= o.len().
        unsafe {
            let at = sums.as_ptr().add(c);
            let prev = _mm256_loadu_si256(at as *const __m256i);
            let this = _mm256_loadu_si256(at.add(1) as *const __m256i);
            let next = _mm256_loadu_si256(at.add(2) as *const __m256i);
            let t3 = _mm256_add_epi32(_mm256_add_epi32(this, this), this);
            let even = _mm256_srai_epi32::<4>(_mm256_add_epi32(_mm256_add_epi32(t3, prev), eight));
            let odd = _mm256_srai_epi32::<4>(_mm256_add_epi32(_mm256_add_epi32(t3, next), seven));
            // e0 o0 e1 o1 | e4 o4 e5 o5 and e2 o2 e3 o3 | e6 o6 e7 o7 -> in order.
            let lo = _mm256_unpacklo_epi32(even, odd);
            let hi = _mm256_unpackhi_epi32(even, odd);
            let out = o.as_mut_ptr().add(2 * c) as *mut __m256i;
            _mm256_storeu_si256(out, _mm256_permute2x128_si256::<0x20>(lo, hi));
            _mm256_storeu_si256(out.add(1), _mm256_permute2x128_si256::<0x31>(lo, hi));
        }
        c += 8;
    }
    upsample_row_from(sums, o, c);
}

#[inline(always)]
fn ycc420_to_rgb_impl(
    planes: [(&[u8], usize); 3],
    w: usize,
    h: usize,
    mut put: impl FnMut(usize, [&[u8]; 3]),
    upsample: impl Fn(&[i32], &mut [i32]),
) {
    assert!(
        w.is_multiple_of(2) && h.is_multiple_of(2) && w > 0 && h > 0,
        "even sides only"
    );
    const ONE_HALF: i32 = 1 << 15;
    let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
    let (cr_r, cb_b, cr_g, cb_g) = (fix(1.402), fix(1.772), fix(0.71414), fix(0.34414));
    let (cw, ch) = (w / 2, h / 2);
    let [(y, ys), cb, cr] = planes;
    for (p, stride) in [cb, cr] {
        assert!(p.len() >= (ch - 1) * stride + cw, "chroma plane too small");
    }
    assert!(y.len() >= (h - 1) * ys + w, "luma plane too small");
    // Column sums with the edge repeated: s[0] and s[cw + 1] are the pads.
    let mut sums = vec![0i32; cw + 2];
    // up[component][v]: the full-width chroma of output rows 2r and 2r + 1.
    let mut up = [
        [vec![0i32; w], vec![0i32; w]],
        [vec![0i32; w], vec![0i32; w]],
    ];
    let mut rgb = [vec![0u8; w], vec![0u8; w], vec![0u8; w]];
    for r in 0..ch {
        for ((plane, stride), out) in [cb, cr].into_iter().zip(&mut up) {
            let row = |i: usize| &plane[i * stride..][..cw];
            let this = row(r);
            for (v, near) in [r.saturating_sub(1), (r + 1).min(ch - 1)]
                .into_iter()
                .enumerate()
            {
                let near = row(near);
                for ((s, &t), &n) in sums[1..=cw].iter_mut().zip(this).zip(near) {
                    *s = 3 * t as i32 + n as i32;
                }
                // The pads make the edge outputs 4 * s + bias, as libjpeg's edge cases.
                (sums[0], sums[cw + 1]) = (sums[1], sums[cw]);
                upsample(&sums, &mut out[v]);
            }
        }
        let [cb_up, cr_up] = &up;
        for (v, (cb_row, cr_row)) in cb_up.iter().zip(cr_up).enumerate() {
            let yy = 2 * r + v;
            let luma = &y[yy * ys..][..w];
            let [rr, gg, bb] = &mut rgb;
            for x in 0..w {
                let l = luma[x] as i32;
                let b = cb_row[x] - 128;
                let r = cr_row[x] - 128;
                rr[x] = (l + ((cr_r * r + ONE_HALF) >> 16)).clamp(0, 255) as u8;
                gg[x] = (l + ((-cb_g * b + ONE_HALF - cr_g * r) >> 16)).clamp(0, 255) as u8;
                bb[x] = (l + ((cb_b * b + ONE_HALF) >> 16)).clamp(0, 255) as u8;
            }
            put(yy, [&rgb[0], &rgb[1], &rgb[2]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx2_upsampling_matches_the_portable_rows() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            for cw in [1, 7, 8, 9, 16, 33, 64] {
                // Column sums of 3 * nearer + farther bytes: 0 to 1020.
                let sums: Vec<i32> = (0..cw + 2)
                    .map(|i| ((i * 389 + cw) % 1021) as i32)
                    .collect();
                let (mut a, mut b) = (vec![-1; 2 * cw], vec![-1; 2 * cw]);
                upsample_row(&sums, &mut a);
                // SAFETY: the CPU supports AVX2 (checked above).
                unsafe { upsample_row_avx2(&sums, &mut b) };
                assert_eq!(a, b, "{cw} chroma samples");
            }
        }
    }
}
