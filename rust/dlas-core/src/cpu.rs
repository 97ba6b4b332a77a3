//! What this CPU can run, detected once: every hand-written SIMD kernel of the core
//! asks here before taking its fast path, so the choices are made in one place.
//!
//! Each kernel family names the set of features its code is compiled for (its
//! `#[target_feature(enable = ...)]` list); a set is true only when the CPU has all of
//! them. On other architectures every set is false and the portable code runs.

use std::sync::OnceLock;

/// The feature sets the core's kernels are written for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// SSSE3: byte shuffles (`pshufb`).
    pub ssse3: bool,
    /// AVX: 256-bit float arithmetic.
    pub avx: bool,
    /// AVX2: 256-bit integer arithmetic; also what libjpeg-turbo's AVX2 routines need.
    pub avx2: bool,
    /// AVX2 and FMA.
    pub avx2_fma: bool,
    /// AVX2 with BMI1, BMI2 and LZCNT: bit manipulation for entropy coding.
    pub avx2_bmi: bool,
    /// AVX-512 Foundation.
    pub avx512f: bool,
}

impl Features {
    fn detect() -> Features {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2");
            Features {
                ssse3: has!("ssse3"),
                avx: has!("avx"),
                avx2,
                avx2_fma: avx2 && has!("fma"),
                avx2_bmi: avx2 && has!("bmi1") && has!("bmi2") && has!("lzcnt"),
                avx512f: has!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Features::default()
        }
    }
}

/// This CPU's features (detected on first use).
pub fn features() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    *FEATURES.get_or_init(Features::detect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_agree_with_their_parts() {
        let f = features();
        assert!(!f.avx2_fma || f.avx2);
        assert!(!f.avx2_bmi || f.avx2);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(f.avx2, std::arch::is_x86_feature_detected!("avx2"));
            assert_eq!(f.ssse3, std::arch::is_x86_feature_detected!("ssse3"));
        }
        assert_eq!(f, features(), "detected once, the same every time");
    }
}
