//! The keys the agent holds between "Submit application" and "Download certificates": one
//! file `<handle>.json` per key pair set in the state directory, mode 0600, holding the
//! AES-256-GCM encryption (random 12-byte nonce, the handle as associated data) of the JSON
//! [`Entry`] under the 32 random bytes of `agent.key` (mode 0600, made on first use).
//!
//! Owns: the state directory's files, their encryption and their life (unbound keys pruned
//! after a day, bound ones after 30 days, a set of keys deleted once its containers are
//! written). Must never: write a
//! key in clear, accept a file that does not decrypt and authenticate under its own handle,
//! or name a file by anything but a parsed UUID.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use serde::{Deserialize, Serialize};

/// The file of the key that encrypts every held-key file.
const KEY_FILE: &str = "agent.key";
/// How large a held-key file may be (two RSA keys and a few strings take about 5 KiB).
const FILE_LIMIT: u64 = 256 * 1024;
/// Keys never bound to an application are deleted after this many seconds.
pub(super) const UNBOUND_LIFETIME: i64 = 24 * 3600;
/// Keys bound to an application whose containers were never written (an application
/// abandoned, or rejected) are deleted this many seconds after they were made.
pub(super) const BOUND_LIFETIME: i64 = 30 * 24 * 3600;

/// What is held for one handle (encrypted on disk).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Entry {
    /// The two private keys, PKCS#8 DER in base64.
    pub keys: HeldKeys,
    /// Set when bound.
    pub application_id: Option<String>,
    /// The application's access token, set when bound.
    pub access_token: Option<String>,
    /// The canonical folder the containers go to, set when bound.
    pub folder: Option<String>,
    /// The origin that made the keys and bound them: the only one that may use them.
    pub origin: String,
    /// When the keys were made (Unix seconds).
    pub created_at: i64,
}

/// The AUTH and SIGN private keys as PKCS#8 DER, base64.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct HeldKeys {
    pub auth: String,
    pub sign: String,
}

/// The sealed form of an [`Entry`] on disk.
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    /// Format version.
    v: u32,
    /// The 12-byte GCM nonce, base64.
    nonce: String,
    /// Ciphertext then the 16-byte tag, base64.
    sealed: String,
}

/// The state directory and its key.
pub(super) struct Held {
    dir: PathBuf,
    key: [u8; 32],
}

/// A handle as the agent names files: a UUID in its hyphenated lower-case form, or `None`.
pub(super) fn parse_handle(handle: &str) -> Option<String> {
    uuid::Uuid::parse_str(handle)
        .ok()
        .map(|u| u.hyphenated().to_string())
        .filter(|h| h == handle)
}

/// Refuse a file or directory that others may read or write.
fn private_mode(path: &Path, what: &str) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {} is open to other users (mode {:o}): it must be {}",
            path.display(),
            meta.permissions().mode() & 0o777,
            if meta.is_dir() { "0700" } else { "0600" }
        ));
    }
    Ok(())
}

impl Held {
    /// Open the state directory `dir` (made with mode 0700 if missing; refused when others
    /// may use it) and its key (made on first use).
    pub fn open(dir: &Path) -> Result<Held, String> {
        if std::fs::symlink_metadata(dir).is_err() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("--state-dir {}: {e}", dir.display()))?;
        }
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("--state-dir {}: {e}", dir.display()))?;
        if !dir.is_dir() {
            return Err(format!("--state-dir {}: not a directory", dir.display()));
        }
        private_mode(&dir, "the state directory")?;
        let path = dir.join(KEY_FILE);
        let mut key = [0u8; 32];
        if std::fs::symlink_metadata(&path).is_ok() {
            private_mode(&path, "the agent's key")?;
            let bytes = crate::input::read_bounded(&path, 64)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            key = bytes
                .as_slice()
                .try_into()
                .map_err(|_| format!("{}: not 32 bytes", path.display()))?;
        } else {
            openssl::rand::rand_bytes(&mut key).map_err(|e| e.to_string())?;
            super::super::write_new(&path, &key).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(Held { dir, key })
    }

    fn path(&self, handle: &str) -> PathBuf {
        self.dir.join(format!("{handle}.json"))
    }

    /// The sealed bytes of `entry` under `handle`.
    fn seal(&self, handle: &str, entry: &Entry) -> Result<Vec<u8>, String> {
        let plain = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
        let mut nonce = [0u8; 12];
        openssl::rand::rand_bytes(&mut nonce).map_err(|e| e.to_string())?;
        let mut tag = [0u8; 16];
        let mut sealed = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            handle.as_bytes(),
            &plain,
            &mut tag,
        )
        .map_err(|e| e.to_string())?;
        sealed.extend_from_slice(&tag);
        serde_json::to_vec(&Sealed {
            v: 1,
            nonce: B64.encode(nonce),
            sealed: B64.encode(sealed),
        })
        .map_err(|e| e.to_string())
    }

    /// Store a new entry; its handle.
    pub fn create(&self, entry: &Entry) -> Result<String, String> {
        let handle = uuid::Uuid::new_v4().hyphenated().to_string();
        let bytes = self.seal(&handle, entry)?;
        let path = self.path(&handle);
        super::super::write_new(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(handle)
    }

    /// Replace the entry of `handle` at once (a new file renamed over the old one).
    pub fn replace(&self, handle: &str, entry: &Entry) -> Result<(), String> {
        let bytes = self.seal(handle, entry)?;
        let path = self.path(handle);
        let temporary = self.dir.join(format!(".{handle}.json.new"));
        let _ = std::fs::remove_file(&temporary);
        super::super::write_new(&temporary, &bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temporary);
                format!("{}: {e}", path.display())
            })
    }

    /// The entry of `handle`: `Ok(None)` when there is none, an error when its file does not
    /// open (tampered, another agent's key, another handle's file).
    pub fn load(&self, handle: &str) -> Result<Option<Entry>, String> {
        let Some(handle) = parse_handle(handle) else {
            return Ok(None);
        };
        let path = self.path(&handle);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let bytes = crate::input::read_bounded(&path, FILE_LIMIT)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.open_sealed(&handle, &bytes)
            .map(Some)
            .map_err(|why| format!("{}: {why}", path.display()))
    }

    fn open_sealed(&self, handle: &str, bytes: &[u8]) -> Result<Entry, String> {
        let refused = "does not open with the agent's key (damaged or tampered with)";
        let sealed: Sealed = serde_json::from_slice(bytes).map_err(|_| refused.to_owned())?;
        let nonce = B64.decode(&sealed.nonce).map_err(|_| refused.to_owned())?;
        let data = B64.decode(&sealed.sealed).map_err(|_| refused.to_owned())?;
        if sealed.v != 1 || nonce.len() != 12 || data.len() < 16 {
            return Err(refused.to_owned());
        }
        let (ciphertext, tag) = data.split_at(data.len() - 16);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            handle.as_bytes(),
            ciphertext,
            tag,
        )
        .map_err(|_| refused.to_owned())?;
        serde_json::from_slice(&plain).map_err(|_| refused.to_owned())
    }

    /// Every handle with a file, and what it holds (files that do not open are left out and
    /// named on standard error).
    pub fn entries(&self) -> Result<Vec<(String, Entry)>, String> {
        let mut found = Vec::new();
        let listing =
            std::fs::read_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        for item in listing.flatten() {
            let name = item.file_name();
            let Some(handle) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(parse_handle)
            else {
                continue;
            };
            match self.load(&handle) {
                Ok(Some(entry)) => found.push((handle, entry)),
                Ok(None) => {}
                Err(e) => eprintln!("tamga-enroll agent: skipped {e}"),
            }
        }
        Ok(found)
    }

    /// The handle and entry bound to `application_id` for `origin`.
    pub fn find(
        &self,
        application_id: &str,
        origin: &str,
    ) -> Result<Option<(String, Entry)>, String> {
        Ok(self.entries()?.into_iter().find(|(_, e)| {
            e.application_id.as_deref() == Some(application_id) && e.origin == origin
        }))
    }

    /// Delete the keys of `handle`.
    pub fn remove(&self, handle: &str) -> Result<(), String> {
        let path = self.path(handle);
        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Delete keys never bound to an application and older than a day, and bound keys older
    /// than 30 days, as of `now`. The caller holds the agent's lock (a bind must not race it).
    pub fn prune(&self, now: i64) -> Result<(), String> {
        for (handle, entry) in self.entries()? {
            let lifetime = if entry.application_id.is_none() {
                UNBOUND_LIFETIME
            } else {
                BOUND_LIFETIME
            };
            if now - entry.created_at > lifetime {
                self.remove(&handle)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entry() -> Entry {
        Entry {
            keys: HeldKeys {
                auth: B64.encode(b"\x30\x82auth-key-der"),
                sign: B64.encode(b"\x30\x82sign-key-der"),
            },
            application_id: None,
            access_token: None,
            folder: None,
            origin: "http://127.0.0.1:8080".to_owned(),
            created_at: 1_800_000_000,
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// What is written opens again, under the same key and handle only; the files are 0600
    /// and the directory 0700; the keys are not in the file in clear.
    #[test]
    fn held_keys_round_trip_encrypted() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("state");
        let held = Held::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        let handle = held.create(&entry()).unwrap();
        let file = dir.join(format!("{handle}.json"));
        assert_eq!(mode(&file), 0o600);
        let stored = std::fs::read(&file).unwrap();
        let clear = entry().keys.auth;
        assert!(!String::from_utf8_lossy(&stored).contains(&clear));
        assert!(!stored.windows(8).any(|w| w == b"auth-key"));
        let back = held.load(&handle).unwrap().unwrap();
        assert_eq!(back.keys.auth, clear);
        assert_eq!(back.origin, "http://127.0.0.1:8080");

        // A second opening of the directory reads the same key.
        let again = Held::open(&dir).unwrap();
        assert!(again.load(&handle).unwrap().is_some());

        // Bound, then found by its application for its origin only.
        let mut bound = entry();
        bound.application_id = Some("app-1".to_owned());
        held.replace(&handle, &bound).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(held
            .find("app-1", "http://127.0.0.1:8080")
            .unwrap()
            .is_some());
        assert!(held.find("app-1", "http://evil.example").unwrap().is_none());
        assert!(held
            .find("app-2", "http://127.0.0.1:8080")
            .unwrap()
            .is_none());

        // Unknown or malformed handles are simply not there.
        assert!(held
            .load(&uuid::Uuid::new_v4().to_string())
            .unwrap()
            .is_none());
        assert!(held.load("../agent").unwrap().is_none());
        held.remove(&handle).unwrap();
        assert!(held.load(&handle).unwrap().is_none());
    }

    /// A file changed by one bit, moved to another handle's name, or sealed under another
    /// agent's key is refused, never read.
    #[test]
    fn a_tampered_held_key_file_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let held = Held::open(&base.path().join("s")).unwrap();
        let handle = held.create(&entry()).unwrap();
        let file = base.path().join("s").join(format!("{handle}.json"));
        let original = std::fs::read(&file).unwrap();
        let mut sealed: Sealed = serde_json::from_slice(&original).unwrap();
        let mut data = B64.decode(&sealed.sealed).unwrap();
        data[3] ^= 1;
        sealed.sealed = B64.encode(&data);
        std::fs::write(&file, serde_json::to_vec(&sealed).unwrap()).unwrap();
        let refused = held.load(&handle).unwrap_err();
        assert!(refused.contains("tampered"), "{refused}");
        assert!(held.entries().unwrap().is_empty());

        // The right bytes under another handle's name.
        let other = uuid::Uuid::new_v4().hyphenated().to_string();
        std::fs::write(&file, &original).unwrap();
        std::fs::rename(&file, base.path().join("s").join(format!("{other}.json"))).unwrap();
        assert!(held.load(&other).is_err());

        // Another agent's key.
        let stranger = Held::open(&base.path().join("t")).unwrap();
        let theirs = stranger.create(&entry()).unwrap();
        std::fs::copy(
            base.path().join("t").join(format!("{theirs}.json")),
            base.path().join("s").join(format!("{theirs}.json")),
        )
        .unwrap();
        assert!(held.load(&theirs).is_err());
    }

    /// Keys never bound are pruned after a day; bound ones stay 30 days.
    #[test]
    fn unbound_keys_are_pruned_after_a_day() {
        let base = tempfile::tempdir().unwrap();
        let held = Held::open(&base.path().join("s")).unwrap();
        let loose = held.create(&entry()).unwrap();
        let mut bound = entry();
        bound.application_id = Some("a".to_owned());
        let kept = held.create(&bound).unwrap();
        held.prune(entry().created_at + UNBOUND_LIFETIME).unwrap();
        assert!(held.load(&loose).unwrap().is_some());
        held.prune(entry().created_at + UNBOUND_LIFETIME + 1)
            .unwrap();
        assert!(held.load(&loose).unwrap().is_none());
        assert!(held.load(&kept).unwrap().is_some());
        held.prune(entry().created_at + BOUND_LIFETIME).unwrap();
        assert!(held.load(&kept).unwrap().is_some());
        held.prune(entry().created_at + BOUND_LIFETIME + 1).unwrap();
        assert!(held.load(&kept).unwrap().is_none());
    }

    /// A state directory others may read is refused.
    #[test]
    fn a_state_directory_open_to_others_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let refused = Held::open(&dir).err().unwrap();
        assert!(refused.contains("0700"), "{refused}");
    }
}
