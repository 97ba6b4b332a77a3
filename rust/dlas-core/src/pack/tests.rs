use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlas-pack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A dataset of `chunks` chunk folders with tiles of varied sizes, a ref.jpg and a
/// centers.pt each (the pack does not read them as images).
fn dataset(dir: &Path, chunks: usize) -> PathBuf {
    let root = dir.join("ds");
    for c in 0..chunks {
        let chunk = root.join(format!("photo_{c:03}"));
        std::fs::create_dir_all(&chunk).unwrap();
        for t in 1..=5 {
            let bytes: Vec<u8> = (0..(300 * t + 37 * c)).map(|i| (i * 7 + c) as u8).collect();
            std::fs::write(chunk.join(format!("{t:08}.jpg")), bytes).unwrap();
        }
        std::fs::write(chunk.join("ref.jpg"), vec![c as u8; 2000]).unwrap();
        std::fs::write(chunk.join("centers.pt"), b"not really a torch file").unwrap();
    }
    std::fs::write(root.join(".dlas_fast-index.bin"), b"cache").unwrap();
    root
}

/// Every file under the chunk folders of `root`: relative path -> bytes.
fn files(root: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let name = e.file_name();
            if name.as_bytes().starts_with(b".") {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if dir != root {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Every member of the shards in `out`, read with the tar crate: path -> bytes; and a
/// check that each sidecar gives each member's data offset.
fn members(out: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let manifest = read_manifest(&out.join(MANIFEST_NAME)).unwrap();
    let mut all = BTreeMap::new();
    for shard in &manifest.shards {
        let index = read_sidecar(&out.join(&shard.index)).unwrap();
        let bytes = std::fs::read(out.join(&shard.tar)).unwrap();
        assert_eq!(bytes.len() as u64, index.size);
        assert_eq!(index.size, shard.size);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut listed = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path_bytes().to_vec();
            let offset = entry.raw_file_position();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert_eq!(entry.header().mode().unwrap(), 0o644);
            listed.push((path.clone(), offset, data.len() as u64));
            all.insert(path, data);
        }
        let sidecar: Vec<_> = index
            .members
            .iter()
            .map(|m| (m.path.clone(), m.offset, m.size))
            .collect();
        assert_eq!(listed, sidecar);
        for m in &index.members {
            let at = m.offset as usize;
            assert_eq!(&bytes[at..at + m.size as usize], &all[&m.path][..]);
        }
    }
    all
}

fn shard_bytes(out: &Path) -> Vec<Vec<u8>> {
    let manifest = read_manifest(&out.join(MANIFEST_NAME)).unwrap();
    manifest
        .shards
        .iter()
        .map(|s| std::fs::read(out.join(&s.tar)).unwrap())
        .collect()
}

fn opts(shard_size: u64, threads: usize) -> PackOptions {
    PackOptions {
        shard_size,
        threads,
    }
}

#[test]
fn shards_hold_every_chunk_file_whole_chunks_each_and_their_offsets() {
    let dir = temp("whole");
    let root = dataset(&dir, 7);
    let out = dir.join("out");
    let summary = pack(&root, &out, &opts(20_000, 2), &Quiet).unwrap();
    assert!(summary.shards.len() >= 3, "{summary:?}");
    assert_eq!(summary.chunks, 7);
    assert_eq!(summary.files, 7 * 7);
    assert_eq!(summary.written, summary.shards.len());
    assert_eq!(members(&out), files(&root));
    // Whole chunks per shard, in order.
    let manifest = read_manifest(&out.join(MANIFEST_NAME)).unwrap();
    let mut seen = Vec::new();
    for s in &manifest.shards {
        let index = read_sidecar(&out.join(&s.index)).unwrap();
        let mut chunks: Vec<_> = index
            .members
            .iter()
            .map(|m| m.path.split(|&b| b == b'/').next().unwrap().to_vec())
            .collect();
        chunks.dedup();
        for c in chunks {
            assert!(!seen.contains(&c), "chunk split across shards");
            seen.push(c);
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_output_is_the_same_whatever_the_threads() {
    let dir = temp("threads");
    let root = dataset(&dir, 9);
    pack(&root, &dir.join("one"), &opts(15_000, 1), &Quiet).unwrap();
    pack(&root, &dir.join("four"), &opts(15_000, 4), &Quiet).unwrap();
    assert_eq!(
        shard_bytes(&dir.join("one")),
        shard_bytes(&dir.join("four"))
    );
    let read = |p: &Path| std::fs::read(p.join(MANIFEST_NAME)).unwrap();
    assert_eq!(read(&dir.join("one")), read(&dir.join("four")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn long_and_non_utf8_names_are_pax_and_ustar_members() {
    let dir = temp("names");
    let root = dataset(&dir, 1);
    let chunk = root.join("photo_000");
    let long = format!("{}.jpg", "x".repeat(250));
    let deep = chunk.join("a".repeat(120)).join("b".repeat(90));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(chunk.join(&long), b"long").unwrap();
    std::fs::write(deep.join("00000009.jpg"), b"deep").unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    std::fs::write(chunk.join(odd), b"latin-1").unwrap();
    let out = dir.join("out");
    pack(&root, &out, &opts(1 << 20, 2), &Quiet).unwrap();
    let got = members(&out);
    assert_eq!(got, files(&root));
    assert!(got.contains_key(format!("photo_000/{long}").as_bytes()));
    let _ = std::fs::remove_dir_all(&dir);
}

struct Count(AtomicUsize, usize);
impl PackProgress for Count {
    fn cancelled(&self) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed) >= self.1
    }
}

#[test]
fn a_stopped_pack_resumes_keeping_its_finished_shards() {
    let dir = temp("resume");
    let root = dataset(&dir, 8);
    let whole = dir.join("whole");
    pack(&root, &whole, &opts(12_000, 1), &Quiet).unwrap();
    let out = dir.join("out");
    // Stopped after 20 members: some shards done, one part-written.
    let stop = Count(AtomicUsize::new(0), 20);
    assert!(matches!(
        pack(&root, &out, &opts(12_000, 1), &stop),
        Err(CoreError::Interrupted)
    ));
    assert!(!out.join(MANIFEST_NAME).exists());
    let again = pack(&root, &out, &opts(12_000, 1), &Quiet).unwrap();
    assert!(again.kept >= 1 && again.written >= 1, "{again:?}");
    assert_eq!(again.kept + again.written, again.shards.len());
    assert_eq!(shard_bytes(&out), shard_bytes(&whole));
    // Everything there: nothing is written again.
    let third = pack(&root, &out, &opts(12_000, 1), &Quiet).unwrap();
    assert_eq!((third.kept, third.written), (third.shards.len(), 0));
    // A changed file rewrites its shard only.
    let tile = root.join("photo_007").join("00000001.jpg");
    std::fs::write(&tile, b"new bytes").unwrap();
    let fourth = pack(&root, &out, &opts(12_000, 1), &Quiet).unwrap();
    assert_eq!(fourth.written, 1);
    assert_eq!(members(&out), files(&root));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_it_did_not_write_are_never_overwritten() {
    let dir = temp("foreign");
    let root = dataset(&dir, 2);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("shard-000000.tar"), b"mine").unwrap();
    std::fs::write(out.join("notes.txt"), b"mine too").unwrap();
    let err = pack(&root, &out, &opts(1 << 20, 1), &Quiet).unwrap_err();
    assert!(err.to_string().contains("shard-000000.tar"), "{err}");
    assert!(err.to_string().contains("not written by"), "{err}");
    assert_eq!(
        std::fs::read(out.join("shard-000000.tar")).unwrap(),
        b"mine"
    );
    std::fs::remove_file(out.join("shard-000000.tar")).unwrap();
    std::fs::write(out.join(MANIFEST_NAME), b"{\"mine\": 1}").unwrap();
    let err = pack(&root, &out, &opts(1 << 20, 1), &Quiet).unwrap_err();
    assert!(err.to_string().contains(MANIFEST_NAME), "{err}");
    assert_eq!(
        std::fs::read(out.join(MANIFEST_NAME)).unwrap(),
        b"{\"mine\": 1}"
    );
    std::fs::remove_file(out.join(MANIFEST_NAME)).unwrap();
    pack(&root, &out, &opts(1 << 20, 1), &Quiet).unwrap();
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine too");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn out_apart_from_the_dataset_and_odd_files_named() {
    let dir = temp("refuse");
    let root = dataset(&dir, 2);
    for bad in [
        root.clone(),
        root.join("photo_000"),
        root.join("packed"),
        dir.clone(),
    ] {
        let err = pack(&root, &bad, &opts(1 << 20, 1), &Quiet).unwrap_err();
        assert!(
            matches!(err, CoreError::Destination { .. }),
            "{bad:?}: {err}"
        );
    }
    assert!(!root.join("packed").exists());
    let chunk = root.join("photo_001");
    let fifo = chunk.join("pipe.jpg");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a path string this test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("/etc/hostname", chunk.join("outside.jpg")).unwrap();
    std::os::unix::fs::symlink(root.join("photo_000/ref.jpg"), chunk.join("inside.jpg")).unwrap();
    std::os::unix::fs::symlink(&root, chunk.join("loop")).unwrap();
    let out = dir.join("out");
    let summary = pack(&root, &out, &opts(1 << 20, 1), &Quiet).unwrap();
    let skipped: Vec<_> = summary
        .skipped
        .iter()
        .map(|s| (s.path.file_name().unwrap().to_owned(), s.reason.clone()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped
        .iter()
        .any(|(n, r)| n == "pipe.jpg" && r.contains("FIFO")));
    assert!(skipped
        .iter()
        .any(|(n, r)| n == "outside.jpg" && r.contains("outside")));
    assert!(skipped
        .iter()
        .any(|(n, r)| n == "loop" && r.contains("folder")));
    let got = members(&out);
    assert_eq!(got[&b"photo_001/inside.jpg".to_vec()], vec![0u8; 2000]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pax_records_count_their_own_length() {
    for n in [0, 1, 85, 86, 90, 95, 96, 989, 990, 995, 996, 10_000] {
        let record = write::pax_path_record(&vec![b'a'; n]);
        let text = String::from_utf8(record.clone()).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), record.len(), "{n}");
    }
}
