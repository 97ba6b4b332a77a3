//! Reads `centers.pt` fixtures written by the real `torch.save` (see
//! `tests/data/torchfile/make_fixtures.py`) and round-trips our own writer.
//!
//! `DLAS_TORCHFILE_BLESS=1` rewrites `rust_written.pt`, which
//! `make_fixtures.py --check-rust` verifies with `torch.load`.

use std::path::{Path, PathBuf};

use dlas_core::torchfile::{
    centers_to_bytes, load_pickled_object, read_centers, read_centers_bytes, write_centers,
    CentersMap, PickleValue, TorchFileError,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/torchfile")
        .join(name)
}

type Entry = (i64, (i64, i64), i64);

/// Same dict as `realistic_centers()` in make_fixtures.py, in the same order.
fn realistic() -> Vec<Entry> {
    let mut v: Vec<Entry> = (0..58)
        .map(|i| {
            let w = if i % 5 == 0 { 128 } else { 64 };
            (i + 1, (32 + 64 * (i / 8), 32 + 64 * (i % 8)), w)
        })
        .collect();
    v.push((59, (-48, 7), 64));
    v.push((-3, (0, 0), 1));
    v.push((1_000_000, ((1 << 40) + 5, -(1 << 33)), 1 << 31));
    v.push((1 << 62, (i64::MAX, i64::MIN), 0));
    v
}

fn as_map(entries: &[Entry]) -> CentersMap {
    entries.iter().map(|&(id, c, w)| (id, (c, w))).collect()
}

#[test]
fn reads_torch_zip_and_legacy_formats() {
    let want = as_map(&realistic());
    assert_eq!(want.len(), 62);
    assert_eq!(want[&1], ((32, 32), 128));
    assert_eq!(want[&58], ((480, 96), 64));
    for name in ["centers_zip.pt", "centers_legacy.pt"] {
        let got = read_centers(&fixture(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn reads_empty_dicts() {
    for name in ["empty_zip.pt", "empty_legacy.pt"] {
        assert_eq!(
            read_centers(&fixture(name)).unwrap(),
            CentersMap::new(),
            "{name}"
        );
    }
}

#[test]
fn refuses_malicious_pickles_without_running_them() {
    for name in ["malicious_zip.pt", "malicious_legacy.pt"] {
        let path = fixture(name);
        let err = read_centers(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                TorchFileError::ForbiddenOpcode {
                    opcode: "GLOBAL",
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains("GLOBAL ('os system')"), "{msg}");
        assert!(msg.contains("refusing to load code"), "{msg}");
    }
}

#[test]
fn refuses_tensors_and_wrong_shapes() {
    let err = read_centers(&fixture("tensor_zip.pt")).unwrap_err();
    assert!(
        matches!(err, TorchFileError::ForbiddenOpcode { .. }),
        "{err}"
    );
    let err = read_centers(&fixture("wrong_shape_zip.pt")).unwrap_err();
    assert!(
        matches!(err, TorchFileError::UnexpectedStructure { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("wrong_shape_zip.pt"), "{msg}");
    assert!(
        msg.contains(
            "value for tile 1 should be ((row, col), width) of ints, found tuple (32, 32, 64)"
        ),
        "{msg}"
    );
}

#[test]
fn refuses_non_torch_files_and_reports_the_path() {
    let missing = fixture("does_not_exist.pt");
    let err = read_centers(&missing).unwrap_err();
    assert!(matches!(err, TorchFileError::Io { .. }));
    assert!(err.to_string().contains("does_not_exist.pt"));
    let err = read_centers(&fixture("make_fixtures.py")).unwrap_err();
    assert!(matches!(err, TorchFileError::NotATorchFile { .. }), "{err}");
    assert!(err.to_string().contains("make_fixtures.py"), "{err}");
    // A zip whose central directory was cut off.
    let zip = std::fs::read(fixture("centers_zip.pt")).unwrap();
    let err = read_centers_bytes(&zip[..zip.len() / 2]).unwrap_err();
    assert!(matches!(err, TorchFileError::NotATorchFile { .. }), "{err}");
    // A legacy file cut inside the object pickle.
    let legacy = std::fs::read(fixture("centers_legacy.pt")).unwrap();
    let err = read_centers_bytes(&legacy[..400]).unwrap_err();
    assert!(
        matches!(err, TorchFileError::MalformedPickle { .. }),
        "{err}"
    );
}

#[test]
fn generic_value_of_a_torch_file() {
    let v = load_pickled_object(&std::fs::read(fixture("wrong_shape_zip.pt")).unwrap()).unwrap();
    let t = |v: Vec<i64>| PickleValue::Tuple(v.into_iter().map(PickleValue::Int).collect());
    assert_eq!(
        v,
        PickleValue::Dict(vec![(PickleValue::Int(1), t(vec![32, 32, 64]))])
    );
}

#[test]
fn round_trip_and_determinism() {
    let dir = std::env::temp_dir().join(format!("dlas_torchfile_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entries in [realistic(), vec![], vec![(7, (1, 2), 3)]] {
        let path = dir.join("centers.pt");
        write_centers(&path, &entries).unwrap();
        assert_eq!(read_centers(&path).unwrap(), as_map(&entries));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes, centers_to_bytes(&entries));
        assert_eq!(bytes, centers_to_bytes(&entries), "not deterministic");
    }
    let big: Vec<Entry> = (0..2500)
        .map(|i| (i * 7 - 9000, (i << 33, -i), i % 300))
        .collect();
    assert_eq!(
        read_centers_bytes(&centers_to_bytes(&big)).unwrap(),
        as_map(&big)
    );
    let err = write_centers(&dir.join("no/such/dir/centers.pt"), &[]).unwrap_err();
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn written_file_matches_the_torch_verified_golden() {
    let golden = fixture("rust_written.pt");
    let bytes = centers_to_bytes(&realistic());
    if std::env::var_os("DLAS_TORCHFILE_BLESS").is_some() {
        std::fs::write(&golden, &bytes).unwrap();
    }
    let want = std::fs::read(&golden).expect("run with DLAS_TORCHFILE_BLESS=1 to create it");
    assert!(
        bytes == want,
        "writer output changed: re-verify with `make_fixtures.py --check-rust` and re-bless"
    );
    // Our data.pkl is byte for byte the one torch wrote for this dict (both start at
    // offset 64, the first aligned position; torch's is followed by a data descriptor).
    let torch_zip = std::fs::read(fixture("centers_zip.pt")).unwrap();
    let end = torch_zip
        .windows(6)
        .position(|w| w == b"u.PK\x07\x08")
        .unwrap()
        + 2;
    assert_eq!(&bytes[64..end], &torch_zip[64..end]);
    assert_eq!(&bytes[end..end + 4], b"PK\x03\x04");
}
