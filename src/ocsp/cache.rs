//! Pre-signed responses of one instance, keyed by CertID hash algorithm and serial, and the
//! invalidation mark that keeps a revocation from being hidden by an answer signed just
//! before it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::NaiveDateTime;

/// One pre-signed response.
#[derive(Debug, Clone)]
pub struct Cached {
    /// DER of the OCSPResponse.
    pub der: Arc<Vec<u8>>,
    /// `good` or `revoked` (unknown answers are never cached).
    pub status: &'static str,
    /// thisUpdate.
    pub this_update: NaiveDateTime,
    /// nextUpdate.
    pub next_update: NaiveDateTime,
    /// Hex of the first 16 bytes of SHA-256 of `der` (the HTTP ETag), computed once.
    pub digest: Arc<str>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<(usize, String), Cached>,
    /// Revocation-counter value up to which invalidations were applied.
    seen_seq: i64,
    /// Bumped by every invalidation.
    generation: u64,
}

/// The cache. Bounded: when full, it is emptied (and refilled by the requests that follow).
#[derive(Debug)]
pub struct ResponseCache {
    inner: RwLock<Inner>,
    capacity: usize,
}

/// Hash algorithms a CertID may use (SHA-1, -256, -384, -512): the cache keeps one entry per
/// algorithm and serial.
const ALGORITHMS: usize = 4;

impl ResponseCache {
    /// An empty cache of at most `capacity` responses.
    pub fn new(capacity: usize) -> ResponseCache {
        ResponseCache {
            inner: RwLock::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh-enough response: signed less than `refresh_after` ago.
    pub fn get(
        &self,
        alg: usize,
        serial: &str,
        now: NaiveDateTime,
        refresh_after: chrono::Duration,
    ) -> Option<Cached> {
        let inner = self.read();
        let hit = inner.map.get(&(alg, serial.to_owned()))?;
        (now - hit.this_update < refresh_after && now < hit.next_update).then(|| hit.clone())
    }

    /// A response that is still valid (before its nextUpdate), however old: what may be served
    /// when the status cannot be looked up.
    pub fn get_valid(&self, alg: usize, serial: &str, now: NaiveDateTime) -> Option<Cached> {
        let inner = self.read();
        let hit = inner.map.get(&(alg, serial.to_owned()))?;
        (now < hit.next_update).then(|| hit.clone())
    }

    /// The invalidation mark to read before looking a status up.
    pub fn mark(&self) -> u64 {
        self.read().generation
    }

    /// The revocation-counter value applied so far.
    pub fn seen_seq(&self) -> i64 {
        self.read().seen_seq
    }

    /// Keep a response, unless an invalidation happened since `mark` was read (its status
    /// may predate a revocation), or it is `unknown` (the serial may be issued a moment
    /// later, and nothing would invalidate it: issuance does not move the revocation counter).
    /// Returns whether it was kept.
    pub fn insert(&self, alg: usize, serial: &str, cached: Cached, mark: u64) -> bool {
        if cached.status == "unknown" {
            return false;
        }
        let mut inner = self.write();
        if inner.generation != mark {
            return false;
        }
        if inner.map.len() >= self.capacity {
            inner.map.clear();
        }
        inner.map.insert((alg, serial.to_owned()), cached);
        true
    }

    /// Drop every response for `serials` and record that changes up to `seq` are applied.
    pub fn invalidate(&self, serials: &[String], seq: i64) {
        let mut inner = self.write();
        for serial in serials {
            for alg in 0..ALGORITHMS {
                inner.map.remove(&(alg, serial.clone()));
            }
        }
        inner.seen_seq = inner.seen_seq.max(seq);
        inner.generation += 1;
    }

    /// Drop everything (responder certificate renewed).
    pub fn clear(&self) {
        let mut inner = self.write();
        inner.map.clear();
        inner.generation += 1;
    }

    /// How many responses are cached.
    pub fn len(&self) -> usize {
        self.read().map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
