//! The standalone `dlas-fast extract` stops on Ctrl-C (SIGINT) within a second, exits
//! 130 with a message, and `--resume` then completes the run: the same files as an
//! uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../dlas-core/tests/common/mod.rs"]
mod common;
use common::{noisy_jpeg, tree};

const BIN: &str = env!("CARGO_BIN_EXE_dlas-fast");
const SOURCES: usize = 16;

fn chunks(dst: &Path) -> usize {
    std::fs::read_dir(dst).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().is_dir())
            .count()
    })
}

#[test]
fn sigint_stops_the_run_and_resume_completes_it() {
    let dir = std::env::temp_dir().join(format!("dlas-cli-interrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let photos: Vec<Vec<u8>> = (0..4).map(|s| noisy_jpeg(2000, 2000, s, 95)).collect();
    for i in 0..SOURCES {
        std::fs::write(src.join(format!("p{i:02}.jpg")), &photos[i % 4]).unwrap();
    }
    let (dst, whole) = (dir.join("dst"), dir.join("whole"));

    let mut run = Command::new(BIN)
        .args(["extract", "-q", "--threads", "1"])
        .args([&src, &dst])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while chunks(&dst) < 1 {
        assert!(Instant::now() < deadline, "no chunk written");
        assert!(run.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: a plain kill(2) of our child.
    assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGINT) }, 0);
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(30), "still running");
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = sent.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(
        err.contains("interrupted: rerun with --resume to finish"),
        "{err}"
    );
    let done = chunks(&dst);
    assert!((1..SOURCES).contains(&done), "{done} chunks");
    let manifest = std::fs::read_to_string(dst.join(".dlas_fast-job-1of1.json")).unwrap();
    assert!(manifest.contains("\"running\""), "{manifest}");

    let resumed = Command::new(BIN)
        .args(["extract", "-q", "--resume", "--threads", "2"])
        .args([&src, &dst])
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    let alone = Command::new(BIN)
        .args(["extract", "-q", "--threads", "2"])
        .args([&src, &whole])
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(0), "{alone:?}");
    let (got, want) = (tree(&dst), tree(&whole));
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "resumed output differs from an uninterrupted run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
