//! Bulk uniform noise: four xoshiro256++ streams side by side, one per 64-bit lane of an
//! AVX2 register, so that a step yields eight values.
//!
//! `rand_xoshiro` has the same generator one stream at a time and does not expose its
//! state, which the vector code needs; each lane here is that generator (a test checks
//! every lane against it). The portable code computes the same lanes one after the
//! other, so both paths give the same values and a key gives the same noise on any CPU.

/// Four xoshiro256++ states: `s[i][lane]`.
pub(crate) struct Bulk {
    s: [[u64; 4]; 4],
}

/// The fixed state a lane takes if its seed is all zeros (xoshiro's one invalid state;
/// a ChaCha output of 32 zero bytes is not going to happen, but must not break it).
const NONZERO: [u64; 4] = [0x9E37_79B9_7F4A_7C15, 0xBF58_476D_1CE4_E5B9, 1, 2];

impl Bulk {
    /// The four lanes seeded with 32 bytes each, read as `rand_xoshiro` reads a seed.
    pub(crate) fn from_seeds(seeds: &[[u8; 32]; 4]) -> Bulk {
        let mut s = [[0u64; 4]; 4];
        for (lane, seed) in seeds.iter().enumerate() {
            let mut words = [0u64; 4];
            for (i, w) in words.iter_mut().enumerate() {
                *w = u64::from_le_bytes(seed[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            }
            if words == [0; 4] {
                words = NONZERO;
            }
            for i in 0..4 {
                s[i][lane] = words[i];
            }
        }
        Bulk { s }
    }

    /// One step of every lane: its four outputs.
    fn step(&mut self) -> [u64; 4] {
        let s = &mut self.s;
        let mut out = [0u64; 4];
        for (l, o) in out.iter_mut().enumerate() {
            let (s0, s1, s2, s3) = (s[0][l], s[1][l], s[2][l], s[3][l]);
            *o = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
            let t = s1 << 17;
            let s2 = s2 ^ s0;
            let s3 = s3 ^ s1;
            let s1 = s1 ^ s2;
            let s0 = s0 ^ s3;
            s[0][l] = s0;
            s[1][l] = s1;
            s[2][l] = s2 ^ t;
            s[3][l] = s3.rotate_left(45);
        }
        out
    }

    /// One step as eight values `amp * u`, `u` uniform in `[0, 1)` with 24 bits: from
    /// each lane's output `v`, `v >> 40` then `(v >> 8) & 0xFFFFFF`, lane after lane.
    fn step_values(&mut self, k: f32) -> [f32; 8] {
        let v = self.step();
        std::array::from_fn(|i| {
            let x = v[i / 2];
            let bits = if i % 2 == 0 {
                x >> 40
            } else {
                (x >> 8) & 0xFF_FFFF
            };
            bits as u32 as f32 * k
        })
    }

    /// Adds `amp * u` to every value of `data`, `u` uniform in `[0, 1)` (DLAS's
    /// `img += np.random.rand(*img.shape) * amp`).
    pub(crate) fn add_scaled(&mut self, data: &mut [f32], amp: f32) {
        let k = amp * (1.0 / (1u32 << 24) as f32);
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::features().avx2 {
            // SAFETY: the CPU supports AVX2 (checked at run time).
            return unsafe { self.add_scaled_avx2(data, k) };
        }
        self.add_scaled_portable(data, k)
    }

    fn add_scaled_portable(&mut self, data: &mut [f32], k: f32) {
        for chunk in data.chunks_mut(8) {
            let n = self.step_values(k);
            for (v, n) in chunk.iter_mut().zip(n) {
                *v += n;
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn add_scaled_avx2(&mut self, data: &mut [f32], k: f32) {
        use std::arch::x86_64::*;
        let ld = |lane: &[u64; 4]| {
            // SAFETY: 4 u64 = 32 bytes, unaligned load.
            unsafe { _mm256_loadu_si256(lane.as_ptr() as *const __m256i) }
        };
        let (mut s0, mut s1, mut s2, mut s3) = (
            ld(&self.s[0]),
            ld(&self.s[1]),
            ld(&self.s[2]),
            ld(&self.s[3]),
        );
        let rotl = |x: __m256i, r: i32| -> __m256i {
            // Shift counts must be immediates; the two rotations used are 23 and 45.
            match r {
                23 => _mm256_or_si256(_mm256_slli_epi64::<23>(x), _mm256_srli_epi64::<41>(x)),
                _ => _mm256_or_si256(_mm256_slli_epi64::<45>(x), _mm256_srli_epi64::<19>(x)),
            }
        };
        let low24 = _mm256_set1_epi64x(0xFF_FFFF);
        let kv = _mm256_set1_ps(k);
        let mut chunks = data.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = _mm256_add_epi64(rotl(_mm256_add_epi64(s0, s3), 23), s0);
            let t = _mm256_slli_epi64::<17>(s1);
            s2 = _mm256_xor_si256(s2, s0);
            s3 = _mm256_xor_si256(s3, s1);
            s1 = _mm256_xor_si256(s1, s2);
            s0 = _mm256_xor_si256(s0, s3);
            s2 = _mm256_xor_si256(s2, t);
            s3 = rotl(s3, 45);
            // Per lane: v >> 40 in the low 32 bits, (v >> 8) & 0xFFFFFF in the high.
            let hi = _mm256_srli_epi64::<40>(v);
            let lo = _mm256_and_si256(_mm256_srli_epi64::<8>(v), low24);
            let bits = _mm256_or_si256(hi, _mm256_slli_epi64::<32>(lo));
            let noise = _mm256_mul_ps(_mm256_cvtepi32_ps(bits), kv);
            // SAFETY: `c` holds 8 f32s; unaligned load and store.
            unsafe {
                let x = _mm256_loadu_ps(c.as_ptr());
                _mm256_storeu_ps(c.as_mut_ptr(), _mm256_add_ps(x, noise));
            }
        }
        let st = |lane: &mut [u64; 4], x: __m256i| {
            // SAFETY: 4 u64 = 32 bytes, unaligned store.
            unsafe { _mm256_storeu_si256(lane.as_mut_ptr() as *mut __m256i, x) }
        };
        st(&mut self.s[0], s0);
        st(&mut self.s[1], s1);
        st(&mut self.s[2], s2);
        st(&mut self.s[3], s3);
        self.add_scaled_portable(chunks.into_remainder(), k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::rand_core::{RngCore, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn seeds() -> [[u8; 32]; 4] {
        std::array::from_fn(|l| std::array::from_fn(|i| (l * 37 + i * 11 + 1) as u8))
    }

    #[test]
    fn each_lane_is_xoshiro256plusplus() {
        let mut bulk = Bulk::from_seeds(&seeds());
        let mut refs: Vec<_> = seeds()
            .iter()
            .map(|s| Xoshiro256PlusPlus::from_seed(*s))
            .collect();
        for _ in 0..100 {
            let out = bulk.step();
            for (l, r) in refs.iter_mut().enumerate() {
                assert_eq!(out[l], r.next_u64(), "lane {l}");
            }
        }
    }

    #[test]
    fn vector_and_portable_paths_agree_at_every_length() {
        for len in [0, 1, 7, 8, 9, 63, 64, 1000, 3 * 128 * 128] {
            let base: Vec<f32> = (0..len).map(|i| (i % 13) as f32 * 0.05).collect();
            let mut a = base.clone();
            Bulk::from_seeds(&seeds()).add_scaled(&mut a, 0.02);
            let mut b = base.clone();
            Bulk::from_seeds(&seeds()).add_scaled_portable(&mut b, 0.02 / (1u32 << 24) as f32);
            assert_eq!(a, b, "length {len}");
        }
    }

    #[test]
    fn noise_is_uniform_in_zero_to_amp() {
        let mut v = vec![0f32; 100_000];
        Bulk::from_seeds(&seeds()).add_scaled(&mut v, 0.5);
        assert!(v.iter().all(|&x| (0.0..0.5).contains(&x)));
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert!((mean - 0.25).abs() < 0.005, "{mean}");
        // Each tenth of the range holds about a tenth of the values.
        let mut bins = [0usize; 10];
        for &x in &v {
            bins[(x / 0.05) as usize] += 1;
        }
        assert!(
            bins.iter().all(|&b| (9_000..11_000).contains(&b)),
            "{bins:?}"
        );
    }

    #[test]
    fn a_zero_seed_still_makes_noise() {
        let mut v = vec![0f32; 64];
        Bulk::from_seeds(&[[0; 32]; 4]).add_scaled(&mut v, 1.0);
        assert!(v.iter().any(|&x| x > 0.0));
    }
}
