//! What this build is: its version, its JPEG codec (libjpeg-turbo) and the SIMD level
//! that codec runs at on this CPU, whether our own AVX2 paths run, and how it was
//! optimised. `dlas-fast --version` prints it; Python has it as
//! `dlas_fast.build_info()`.

use serde::Serialize;

/// The facts of [`build_info`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    /// The package version.
    pub version: &'static str,
    /// The JPEG codec and its version, as compiled in (e.g. "libjpeg-turbo 3.1.0").
    pub codec: &'static str,
    /// The SIMD instructions libjpeg-turbo uses on this CPU: "AVX2", "SSE2", "NEON"
    /// or "none" (its `JSIMD_FORCE*` environment variables count).
    pub codec_simd: &'static str,
    /// Whether our own AVX2 code runs (JPEG Huffman decoding, block coding, batch
    /// conversion): on x86-64 CPUs with AVX2.
    pub fast_paths: bool,
    /// The cargo profile and opt-level the library was compiled with, e.g.
    /// "release (opt-level 3)" or "debug (opt-level 1)".
    pub optimisation: &'static str,
}

/// This build's [`BuildInfo`].
pub fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        codec: env!("DLAS_CODEC"),
        codec_simd: codec_simd(),
        fast_paths: fast_paths(),
        optimisation: env!("DLAS_OPTIMISATION"),
    }
}

impl BuildInfo {
    /// The facts after the version, one per line, as `--version` prints them.
    pub fn details(&self) -> String {
        format!(
            "codec: {}\ncodec SIMD: {}\nfast paths (own AVX2 code): {}\noptimisation: {}",
            self.codec,
            self.codec_simd,
            if self.fast_paths { "on" } else { "off" },
            self.optimisation
        )
    }
}

fn fast_paths() -> bool {
    crate::cpu::features().avx2
}

extern "C" {
    /// libjpeg-turbo's check (an internal function of the static library the
    /// `turbojpeg` crate builds) that its SIMD inverse DCT may run: 0 when no SIMD
    /// extension is used, on this CPU or because `JSIMD_FORCENONE=1`.
    fn jsimd_can_idct_islow() -> libc::c_int;
}

#[cfg(target_arch = "x86_64")]
extern "C" {
    /// libjpeg-turbo's CPU probe (simd/x86_64/jsimdcpu.asm): a mask of `JSIMD_*`
    /// flags of the extensions this CPU and OS support.
    fn jpeg_simd_cpu_support() -> libc::c_uint;
}

fn codec_simd() -> &'static str {
    // SAFETY: neither function has arguments or preconditions; libjpeg-turbo sets up
    // its per-thread SIMD state on the first call.
    if unsafe { jsimd_can_idct_islow() } == 0 {
        return "none";
    }
    #[cfg(target_arch = "x86_64")]
    {
        const SSE2: libc::c_uint = 0x08;
        const AVX2: libc::c_uint = 0x80;
        // SAFETY: as above.
        let mut simd = unsafe { jpeg_simd_cpu_support() };
        // libjpeg-turbo narrows the CPU's extensions by these variables (set to
        // exactly "1") when it starts; do the same to know which one it picked.
        let forced = |name| std::env::var_os(name).is_some_and(|v| v == "1");
        if forced("JSIMD_FORCESSE2") {
            simd &= SSE2;
        }
        if forced("JSIMD_FORCEAVX2") {
            simd &= AVX2;
        }
        if simd & AVX2 != 0 {
            "AVX2"
        } else if simd & SSE2 != 0 {
            "SSE2"
        } else {
            "none"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "SIMD"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_those_of_this_build() {
        let info = build_info();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.codec.starts_with("libjpeg-turbo 3."), "{}", info.codec);
        assert!(
            ["AVX2", "SSE2", "NEON", "none"].contains(&info.codec_simd),
            "{}",
            info.codec_simd
        );
        // The build requires SIMD (turbojpeg's `require-simd`): x86-64 has SSE2 at least.
        #[cfg(target_arch = "x86_64")]
        {
            let forced = ["JSIMD_FORCENONE", "JSIMD_FORCESSE2", "JSIMD_FORCEAVX2"]
                .iter()
                .any(|v| std::env::var_os(v).is_some());
            if !forced {
                assert_ne!(info.codec_simd, "none");
                assert_eq!(
                    info.codec_simd == "AVX2",
                    std::arch::is_x86_feature_detected!("avx2") && info.fast_paths
                );
            }
        }
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        assert!(
            info.optimisation
                .starts_with(&format!("{profile} (opt-level ")),
            "{}",
            info.optimisation
        );
        let details = info.details();
        assert_eq!(details.lines().count(), 4);
        assert!(details.contains(info.codec) && details.contains(info.optimisation));
    }
}
