//! The per-address flood guard: requests per second from one client address, with a burst,
//! and open connections per client address, counted in this process only.
//!
//! Owns: the client address of a request (the peer, or `X-Forwarded-For` from a trusted
//! proxy), one timestamp per address (GCRA, the token bucket's equivalent), and one count of
//! open connections per address that has any (a [`ConnectionSlot`] lives as long as its
//! connection and gives its place back when dropped). Must never: hold a lock across an
//! await, or grow without bound (a shard that fills up drops what has gone idle, and if that
//! is not enough, starts over — failing open, not refusing; the connection table holds only
//! addresses with an open connection).
//!
//! Why per instance: it guards each process against one address flooding it. N instances
//! behind a balancer admit at most N × the configured rate from one address; a cluster-wide
//! count would put a database or a shared cache in every request's path, which is exactly
//! what a flood guard must not do. Per-IIN limits, which must hold across instances, live in
//! the database (`ra`).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shards of the address table (a lock each), so workers seldom wait on one another.
const SHARDS: usize = 16;
/// Addresses one shard keeps before it drops idle ones.
const SHARD_CAPACITY: usize = 16_384;

/// Token-bucket limits per client address.
#[derive(Debug)]
pub struct ClientLimiter {
    /// Time one request "costs" (1 / rate).
    interval: Duration,
    /// How far ahead of now an address may run: (burst - 1) × interval.
    tolerance: Duration,
    shards: Vec<Mutex<HashMap<IpAddr, Instant>>>,
}

impl ClientLimiter {
    /// `rate` requests per second sustained, `burst` at once; `None` when `rate` is 0.
    pub fn new(rate: u32, burst: u32) -> Option<ClientLimiter> {
        if rate == 0 {
            return None;
        }
        let interval = Duration::from_secs(1) / rate;
        Some(ClientLimiter {
            interval,
            tolerance: interval.saturating_mul(burst.saturating_sub(1)),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// Admit one request from `client` at `now`, or say in how many seconds (at least 1) it
    /// would be admitted.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let Some(shard) = self.shards.get(shard_index(&client)) else {
            return Ok(());
        };
        // A poisoned lock only means another request panicked mid-update of a timestamp;
        // the table is still usable.
        let mut table = shard.lock().unwrap_or_else(|p| p.into_inner());
        let theoretical = table.get(&client).copied().unwrap_or(now).max(now);
        if theoretical > now + self.tolerance {
            let wait = theoretical - (now + self.tolerance);
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        if table.len() >= SHARD_CAPACITY && !table.contains_key(&client) {
            table.retain(|_, t| *t > now);
            if table.len() >= SHARD_CAPACITY {
                table.clear();
            }
        }
        table.insert(client, theoretical + self.interval);
        Ok(())
    }
}

/// Open connections per client address, against a cap.
#[derive(Debug)]
pub struct ConnectionCounter {
    cap: u32,
    shards: Vec<Mutex<HashMap<IpAddr, u32>>>,
}

/// One admitted connection's place in its address's count, given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    counter: Arc<ConnectionCounter>,
    key: IpAddr,
}

fn shard_index(key: &IpAddr) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    usize::try_from(hasher.finish() % SHARDS as u64).unwrap_or(0)
}

impl ConnectionCounter {
    /// At most `cap` connections per address; `None` when `cap` is 0 (no cap).
    pub fn new(cap: u32) -> Option<Arc<ConnectionCounter>> {
        (cap > 0).then(|| {
            Arc::new(ConnectionCounter {
                cap,
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            })
        })
    }

    /// The cap.
    pub fn cap(&self) -> u32 {
        self.cap
    }

    /// Count a new connection from `client` (keyed by [`limit_key`]), or `None` when the
    /// address already holds `cap` connections.
    pub fn open(self: &Arc<Self>, client: IpAddr) -> Option<ConnectionSlot> {
        let key = limit_key(client);
        let shard = self.shards.get(shard_index(&key))?;
        let mut table = shard.lock().unwrap_or_else(|p| p.into_inner());
        let count = table.entry(key).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            counter: Arc::clone(self),
            key,
        })
    }

    /// Connections `client` holds now.
    #[cfg(test)]
    pub fn open_from(&self, client: IpAddr) -> u32 {
        let key = limit_key(client);
        self.shards
            .get(shard_index(&key))
            .and_then(|shard| {
                let table = shard.lock().unwrap_or_else(|p| p.into_inner());
                table.get(&key).copied()
            })
            .unwrap_or(0)
    }

    fn close(&self, key: IpAddr) {
        let Some(shard) = self.shards.get(shard_index(&key)) else {
            return;
        };
        let mut table = shard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = table.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                table.remove(&key);
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.counter.close(self.key);
    }
}

/// The key an address is limited under: IPv4 as is, IPv6 by its /64 (one subscriber's
/// prefix; otherwise a client could pick a new address per request), IPv4-mapped IPv6 as IPv4.
pub fn limit_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The configured proxy addresses in canonical form (an IPv4-mapped IPv6 address as IPv4), as
/// [`client_address`] and the connection cap compare them.
pub fn canonical_proxies(configured: &[IpAddr]) -> Vec<IpAddr> {
    configured.iter().map(IpAddr::to_canonical).collect()
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Addresses are
/// compared in canonical form (`trusted_proxies` is given so, see [`canonical_proxies`]).
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    // An IPv4 peer of a dual-stack listener arrives as ::ffff:a.b.c.d.
    let peer = peer?.to_canonical();
    if trusted_proxies.is_empty() || !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    for entry in header.rsplit(',') {
        let Ok(addr) = entry.trim().parse::<IpAddr>().map(|a| a.to_canonical()) else {
            // Whatever lies left of an unreadable entry was written by someone we cannot
            // trust: stop at the last proxy we can.
            return Some(peer);
        };
        if !trusted_proxies.contains(&addr) {
            return Some(addr);
        }
    }
    Some(peer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = ClientLimiter::new(10, 5).unwrap();
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            assert_eq!(limiter.check(a, t0), Ok(()));
        }
        assert_eq!(limiter.check(a, t0), Err(1));
        // Another address has its own bucket.
        assert_eq!(limiter.check(ip("192.0.2.2"), t0), Ok(()));
        // One interval later, one more request.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limiter.check(a, t1), Ok(()));
        assert_eq!(limiter.check(a, t1), Err(1));
        // Idle for a while: the whole burst again.
        let t2 = t1 + Duration::from_secs(2);
        for _ in 0..5 {
            assert_eq!(limiter.check(a, t2), Ok(()));
        }
        assert!(limiter.check(a, t2).is_err());
        assert!(ClientLimiter::new(0, 5).is_none());
    }

    #[test]
    fn retry_after_counts_whole_seconds() {
        let limiter = ClientLimiter::new(1, 1).unwrap();
        let t0 = Instant::now();
        let a = ip("198.51.100.7");
        assert_eq!(limiter.check(a, t0), Ok(()));
        assert_eq!(limiter.check(a, t0), Err(1));
        assert_eq!(limiter.check(a, t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn connections_are_capped_per_address_and_given_back() {
        let counter = ConnectionCounter::new(2).unwrap();
        let a = ip("192.0.2.1");
        let first = counter.open(a).unwrap();
        let second = counter.open(a).unwrap();
        assert!(counter.open(a).is_none());
        // Another address, and another /64, have their own count; one /64 shares one.
        let b = counter.open(ip("192.0.2.2")).unwrap();
        let v6 = counter.open(ip("2001:db8::1")).unwrap();
        let v6_same = counter.open(ip("2001:db8::2")).unwrap();
        assert!(counter.open(ip("2001:db8::3")).is_none());
        assert_eq!(counter.open_from(a), 2);
        drop(first);
        assert_eq!(counter.open_from(a), 1);
        let third = counter.open(a).unwrap();
        assert!(counter.open(a).is_none());
        drop((second, third, b, v6, v6_same));
        // Nothing is kept for addresses without a connection.
        let kept: usize = counter.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert_eq!(kept, 0);
        assert!(ConnectionCounter::new(0).is_none());
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        let header = Some("203.0.113.9, 198.51.100.1, 10.0.0.2");
        // A stranger's header is ignored.
        assert_eq!(
            client_address(Some(ip("192.0.2.5")), header, &trusted),
            Some(ip("192.0.2.5"))
        );
        // From the proxy: the right-most untrusted entry (the left ones are client-written).
        assert_eq!(
            client_address(Some(proxy), header, &trusted),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(client_address(Some(proxy), None, &trusted), Some(proxy));
        assert_eq!(
            client_address(Some(proxy), Some("junk"), &trusted),
            Some(proxy)
        );
        // Without trusted proxies the header never counts.
        assert_eq!(client_address(Some(proxy), header, &[]), Some(proxy));
        // The proxy seen through a dual-stack listener (::ffff:10.0.0.1), or configured so.
        assert_eq!(
            client_address(Some(ip("::ffff:10.0.0.1")), header, &trusted),
            Some(ip("198.51.100.1"))
        );
        let mapped = canonical_proxies(&[ip("::ffff:10.0.0.1"), ip("10.0.0.2")]);
        assert_eq!(
            client_address(Some(proxy), header, &mapped),
            Some(ip("198.51.100.1"))
        );
    }
}
