//! Where the agent may write: the directories given with `--allow-dir` (made absolute, links
//! resolved) and what lies under them. Every path a page names is canonicalised (links and
//! `..` resolved) and must then lie within one of them; a new folder is one plain name.
//!
//! Owns: the folder rules. Must never: accept a relative path, a path that leads outside the
//! allowed directories through a link or `..`, or make more than one directory level.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::{AgentCode, Refusal};

/// The longest new folder name, in bytes.
const NAME_LIMIT: usize = 100;

/// The allowed directories, canonical: each must exist, be a directory and have a UTF-8 path.
pub(super) fn allowed_roots(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut roots = Vec::new();
    for dir in dirs {
        let root = dir
            .canonicalize()
            .map_err(|e| format!("--allow-dir {}: {e}", dir.display()))?;
        if !root.is_dir() {
            return Err(format!("--allow-dir {}: not a directory", dir.display()));
        }
        if root.to_str().is_none() {
            return Err(format!("--allow-dir {}: not a UTF-8 path", dir.display()));
        }
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    Ok(roots)
}

fn not_allowed(path: &str) -> Refusal {
    Refusal::new(
        AgentCode::FolderNotAllowed,
        format!("{path} is not an existing folder within the directories this agent was allowed"),
    )
}

/// `path` canonicalised, if it is an existing directory within one of `roots`.
pub(super) fn within(roots: &[PathBuf], path: &str) -> Result<PathBuf, Refusal> {
    let given = Path::new(path);
    if !given.is_absolute() || path.contains('\0') {
        return Err(not_allowed(path));
    }
    let canonical = given.canonicalize().map_err(|_| not_allowed(path))?;
    if canonical.is_dir()
        && canonical.to_str().is_some()
        && roots.iter().any(|root| canonical.starts_with(root))
    {
        Ok(canonical)
    } else {
        Err(not_allowed(path))
    }
}

/// Whether `name` is one plain path component a new folder may have.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_LIMIT
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

/// Each root and its immediate subdirectories (not hidden ones, not links), sorted.
pub(super) fn list(roots: &[PathBuf]) -> Vec<(String, Vec<String>)> {
    roots
        .iter()
        .map(|root| {
            let mut folders: Vec<String> = std::fs::read_dir(root)
                .map(|listing| {
                    listing
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
                        .filter_map(|e| e.path().to_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            folders.sort();
            (root.to_string_lossy().into_owned(), folders)
        })
        .collect()
}

/// Make the folder `name` (mode 0700) in `parent`, which must be allowed; its canonical path.
pub(super) fn make(roots: &[PathBuf], parent: &str, name: &str) -> Result<PathBuf, Refusal> {
    if !valid_name(name) {
        return Err(Refusal::new(
            AgentCode::FolderNameInvalid,
            format!(
                "a folder name is one name of 1 to {NAME_LIMIT} bytes, not starting with '.', \
                 without '/', '\\\\' or control characters"
            ),
        ));
    }
    let parent = within(roots, parent)?;
    let path = parent.join(name);
    match std::fs::DirBuilder::new().mode(0o700).create(&path) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Refusal::new(
            AgentCode::FolderExists,
            format!("{} exists already", path.display()),
        )),
        Err(e) => Err(Refusal::new(
            AgentCode::InternalError,
            format!("{}: {e}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    fn setup() -> (tempfile::TempDir, Vec<PathBuf>) {
        let base = tempfile::tempdir().unwrap();
        let allowed = base.path().join("allowed");
        std::fs::create_dir_all(allowed.join("keys")).unwrap();
        std::fs::create_dir_all(allowed.join(".hidden")).unwrap();
        std::fs::create_dir_all(base.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(base.path().join("outside"), allowed.join("link-out")).unwrap();
        std::fs::write(allowed.join("file.txt"), "x").unwrap();
        let roots = allowed_roots(&[allowed]).unwrap();
        (base, roots)
    }

    fn code(r: Result<PathBuf, Refusal>) -> AgentCode {
        r.err().unwrap().code
    }

    /// Inside is allowed; `..`, relative paths, links leading out, files and missing paths are
    /// not.
    #[test]
    fn only_folders_within_the_allowed_directories() {
        let (base, roots) = setup();
        let root = roots[0].to_str().unwrap().to_owned();
        assert_eq!(within(&roots, &root).unwrap(), roots[0]);
        assert_eq!(
            within(&roots, &format!("{root}/keys")).unwrap(),
            roots[0].join("keys")
        );
        assert_eq!(
            within(&roots, &format!("{root}/keys/../keys/.")).unwrap(),
            roots[0].join("keys")
        );
        let outside = base.path().join("outside");
        for bad in [
            format!("{root}/.."),
            format!("{root}/../outside"),
            format!("{root}/link-out"),
            format!("{root}/file.txt"),
            format!("{root}/missing"),
            outside.to_str().unwrap().to_owned(),
            "keys".to_owned(),
            "/".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                code(within(&roots, &bad)),
                AgentCode::FolderNotAllowed,
                "{bad}"
            );
        }
    }

    /// Only one plain name makes a folder; never one that exists, never outside.
    #[test]
    fn new_folders_are_one_plain_name_within() {
        let (_base, roots) = setup();
        let root = roots[0].to_str().unwrap().to_owned();
        for bad in [
            "",
            ".",
            "..",
            ".secret",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            &"x".repeat(101),
        ] {
            assert_eq!(
                code(make(&roots, &root, bad)),
                AgentCode::FolderNameInvalid,
                "{bad:?}"
            );
        }
        let made = make(&roots, &root, "Менің кілттерім").unwrap();
        assert!(made.is_dir());
        assert_eq!(
            code(make(&roots, &root, "Менің кілттерім")),
            AgentCode::FolderExists
        );
        assert_eq!(
            code(make(&roots, &format!("{root}/link-out"), "x")),
            AgentCode::FolderNotAllowed
        );
        assert_eq!(
            code(make(&roots, &format!("{root}/.."), "x")),
            AgentCode::FolderNotAllowed
        );
    }

    /// The listing shows plain subfolders only: no hidden ones, links or files.
    #[test]
    fn the_listing_shows_plain_subfolders() {
        let (_base, roots) = setup();
        let listed = list(&roots);
        let root = roots[0].to_str().unwrap();
        assert_eq!(listed, [(root.to_owned(), vec![format!("{root}/keys")])]);
    }
}
