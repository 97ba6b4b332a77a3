//! Facts about this build that `build_info` reports at run time: the libjpeg-turbo
//! version compiled in (read from the `jconfig.h` of the build the `turbojpeg-sys`
//! crate made, so it follows that crate's vendored source), and the cargo profile.
//! Also compiles libjpeg's memory functions (`csrc/jmem_rust.c`) against that build's
//! headers.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TURBOJPEG_INCLUDE");

    // turbojpeg-sys (`links = "turbojpeg"`) reports its include folders, comma-separated.
    let include = env::var("DEP_TURBOJPEG_INCLUDE").unwrap_or_default();
    let version = include
        .split(',')
        .filter(|dir| !dir.is_empty())
        .find_map(|dir| {
            let header = Path::new(dir).join("jconfig.h");
            println!("cargo:rerun-if-changed={}", header.display());
            let text = std::fs::read_to_string(header).ok()?;
            text.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("#define"), Some("LIBJPEG_TURBO_VERSION"), Some(v)) => Some(v.to_owned()),
                    _ => None,
                }
            })
        });
    let codec = match version {
        Some(v) => format!("libjpeg-turbo {v}"),
        None => {
            println!(
                "cargo:warning=libjpeg-turbo's jconfig.h not found in turbojpeg-sys's include \
                 folders ({include:?}): its version is reported as unknown"
            );
            "libjpeg-turbo (version unknown)".to_owned()
        }
    };
    println!("cargo:rustc-env=DLAS_CODEC={codec}");

    // libjpeg's memory functions, taken from the Rust allocator (src/image/jpeg/memory.rs).
    let source = "csrc/jmem_rust.c";
    println!("cargo:rerun-if-changed={source}");
    let mut c = cc::Build::new();
    c.file(source).warnings(true).extra_warnings(true);
    for dir in include.split(',').filter(|dir| !dir.is_empty()) {
        c.include(dir);
    }
    c.compile("dlas_jmem_rust");

    // The profile this package is compiled with (PROFILE is "release" for release and
    // profiles inheriting it, "debug" otherwise).
    let var = |name| env::var(name).unwrap_or_else(|_| "?".to_owned());
    let debug_info = match (var("PROFILE").as_str(), var("DEBUG").as_str()) {
        ("release", "true" | "1" | "2" | "full" | "limited" | "line-tables-only") => ", debug info",
        _ => "",
    };
    println!(
        "cargo:rustc-env=DLAS_OPTIMISATION={} (opt-level {}{debug_info})",
        var("PROFILE"),
        var("OPT_LEVEL")
    );
}
