//! `dlas-fast --version`: the version, then what the build is.

use std::process::Command;

#[test]
fn long_version_names_the_codec_and_the_build() {
    let out = Command::new(env!("CARGO_BIN_EXE_dlas-fast"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("dlas-fast {}", env!("CARGO_PKG_VERSION")),
        "{text}"
    );
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` line in {text:?}"))
    };
    assert!(field("codec: ").starts_with("libjpeg-turbo 3."), "{text}");
    assert!(
        ["AVX2", "SSE2", "NEON", "none"].contains(&field("codec SIMD: ")),
        "{text}"
    );
    assert!(["on", "off"].contains(&field("fast paths (own AVX2 code): ")));
    assert!(field("optimisation: ").contains("(opt-level "), "{text}");

    // `-V` stays one line.
    let short = Command::new(env!("CARGO_BIN_EXE_dlas-fast"))
        .arg("-V")
        .output()
        .unwrap();
    let short = String::from_utf8(short.stdout).unwrap();
    assert_eq!(short.trim(), lines[0]);
}
