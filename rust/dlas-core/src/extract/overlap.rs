//! Whether SRC and DST overlap: DST is SRC, lies inside it, or holds it, judged on
//! real paths (links resolved) and on the folders along them (bind mounts).

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::dest::refuse;
use crate::error::{CoreError, Result};

/// How a destination folder stands to a source folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// The same folder.
    Same,
    /// The destination lies inside the source.
    Inside,
    /// The destination holds the source.
    Holds,
}

/// How `dst` stands to `src`, comparing real paths (links resolved; a `dst` still to
/// be made is resolved through its nearest existing ancestor) and the folders along
/// them (bind mounts); None when apart. Also the source's path as shown in messages.
pub fn overlap(src: &Path, dst: &Path) -> Result<(Option<Overlap>, String)> {
    let s = std::fs::canonicalize(src).map_err(|e| CoreError::io(src, e))?;
    let d = resolve(dst).map_err(|e| CoreError::io(dst, e))?;
    let shown = if s.as_path() == src {
        format!("`{}`", s.display())
    } else {
        format!("`{}` (`{}`)", src.display(), s.display())
    };
    // The same folder can also be reached by paths that no link explains (a bind
    // mount): the folders along each path are compared too.
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let under = |path: &Path, folder: Option<(u64, u64)>| {
        folder.is_some() && path.ancestors().any(|a| id(a) == folder)
    };
    let d_in_s = d.starts_with(&s) || under(&d, id(&s));
    let s_in_d = s.starts_with(&d) || under(&s, id(&d));
    let relation = if d == s || (d_in_s && s_in_d) {
        Some(Overlap::Same)
    } else if d_in_s {
        Some(Overlap::Inside)
    } else if s_in_d {
        Some(Overlap::Holds)
    } else {
        None
    };
    Ok((relation, shown))
}

/// Refuses a DST that is SRC, lies inside SRC, or holds SRC (see [`overlap`]).
pub fn check_overlap(src: &Path, dst: &Path) -> Result<()> {
    let (relation, shown) = overlap(src, dst)?;
    let reason = match relation {
        Some(Overlap::Same) => format!(
            "is the source folder SRC {shown} itself: the chunks would be written among \
             the photos; nothing was changed: choose a DST outside SRC"
        ),
        Some(Overlap::Inside) => format!(
            "is inside the source folder SRC {shown}: the chunks would be written among \
             the photos and taken for sources by later runs; nothing was changed: choose \
             a DST outside SRC"
        ),
        Some(Overlap::Holds) => format!(
            "holds the source folder SRC {shown}: the chunks would be written beside the \
             photos; nothing was changed: choose a DST that neither is nor holds SRC"
        ),
        None => return Ok(()),
    };
    Err(refuse(dst, reason))
}

/// The real path `path` has or will have once made: its nearest existing ancestor
/// with links resolved, then the rest of it (`..` there undoes the folder before it,
/// as creating the folders would).
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let parts: Vec<Component<'_>> = abs.components().collect();
    for keep in (1..=parts.len()).rev() {
        let head: PathBuf = parts[..keep].iter().collect();
        match std::fs::canonicalize(&head) {
            Ok(mut real) => {
                for part in &parts[keep..] {
                    match part {
                        Component::ParentDir => {
                            real.pop();
                        }
                        Component::Normal(name) => real.push(name),
                        _ => {}
                    }
                }
                return Ok(real);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_judged_on_real_paths() {
        let dir = std::env::temp_dir().join(format!("dlas-overlap-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("other")).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&src, &link).unwrap();
        let refused = |s: &Path, d: &Path| check_overlap(s, d).is_err();
        assert!(refused(&src, &src));
        assert!(refused(&src, &link));
        assert!(refused(&link, &src.join("out")));
        assert!(refused(&src, &link.join("new/deeper")));
        assert!(refused(&src, &dir.join("other/../src/x")));
        assert!(refused(&src.join("sub"), &link));
        assert!(refused(&src, &dir.join("nope/../src")));
        assert!(!refused(&src, &dir.join("other")));
        assert!(!refused(&src, &dir.join("src-out")));
        assert!(!refused(&src, &dir.join("nope/../out")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
