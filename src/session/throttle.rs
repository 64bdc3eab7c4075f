//! [`LoginThrottle`]: GCRA limits on login attempts, per client address and per username, kept
//! in the session store so every node counts together.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use http::HeaderMap;

use super::digest;
use super::store::{Rate, StoreError, Throttle, ThrottleOp, ThrottleStore};
use crate::text::hex;

/// The peer address of the connection a request came on. Put it in the request extensions
/// (your server knows it: hyper's accept loop) so that [`LoginThrottle`] can limit attempts
/// per client address. With the `axum` feature, axum's `ConnectInfo<SocketAddr>` (from
/// `into_make_service_with_connect_info::<SocketAddr>()`) is read too: nothing to insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The connection's peer: [`PeerAddr`], else axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`).
fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    let inserted = extensions.get::<PeerAddr>().map(|p| p.0);
    #[cfg(feature = "axum")]
    let inserted = inserted.or_else(|| {
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
    });
    inserted
}

/// A login with no peer address is not limited per address: say so, once per process, so a
/// server wired without it does not go unnoticed.
fn warn_no_peer_once() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "tower_jwt_auth",
            "a login carried no peer address, so the per-address limit does not apply: serve \
             axum with `into_make_service_with_connect_info::<SocketAddr>()`, or insert \
             `PeerAddr` into each request's extensions"
        );
    }
}

/// Networks of reverse proxies whose `X-Forwarded-For` is believed. Parses from a
/// comma-separated list of CIDRs or single addresses (`"10.0.0.0/8, ::1"`).
///
/// From a peer inside one of them, the client address is the rightmost `X-Forwarded-For`
/// entry outside them (entries to its left could have been written by the client). From any
/// other peer, the header is ignored: the client is the peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// No proxy is trusted: the client address is always the peer's.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks
            .iter()
            .any(|(net, bits)| in_network(ip, *net, *bits))
    }

    /// The client address of a request that came from `peer` with these headers.
    #[must_use]
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            let Some(ip) = std::str::from_utf8(hop).ok().and_then(parse_hop) else {
                // Garbage: whoever wrote it is not to be believed past this point.
                return client;
            };
            client = canonical(ip);
            if !self.contains(client) {
                return client;
            }
        }
        client
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = || format!("{item:?} is not an IP address or CIDR (like 10.0.0.0/8)");
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?,
            };
            networks.push((addr, bits));
        }
        Ok(Self { networks })
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (b >> shift)
}

/// The address a limit applies to: IPv6 grouped by /64 (one subscriber usually has a whole
/// /64), IPv4 as is.
fn group(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Default limit on failed logins per username: 5, refilled over 60 s.
pub const DEFAULT_PER_USER: Rate = match Rate::new(5, std::time::Duration::from_secs(60)) {
    Some(r) => r,
    None => unreachable!(),
};

/// Default limit on login attempts per client address: 30, refilled over 60 s.
pub const DEFAULT_PER_ADDRESS: Rate = match Rate::new(30, std::time::Duration::from_secs(60)) {
    Some(r) => r,
    None => unreachable!(),
};

/// Limits on login attempts, kept in a [`ThrottleStore`] (so several nodes count together), with
/// GCRA: a burst, then an even refill.
///
/// - **Per client address**, every attempt counts (default 30 per 60 s). The address is the
///   [`PeerAddr`] in the request extensions (or, with the `axum` feature, axum's
///   `ConnectInfo<SocketAddr>`), or an `X-Forwarded-For` entry behind [`TrustedProxies`]; IPv6
///   addresses count per /64.
/// - **Per username**, failures count (default 5 per 60 s): a unit is taken before the
///   password is checked and given back if it was right, so concurrent guesses cannot slip
///   past the limit. The username is hashed before it goes into the store; unknown usernames
///   are limited exactly like known ones.
///
/// A throttled attempt is answered 429 with `Retry-After` and never runs the password hash.
#[derive(Clone)]
pub struct LoginThrottle {
    store: Arc<dyn ThrottleStore>,
    per_user: Option<Rate>,
    per_address: Option<Rate>,
    proxies: TrustedProxies,
}

impl LoginThrottle {
    /// The default limits, counted in `store` (the sessions' store, shared through an `Arc`,
    /// so that every node sharing it counts together).
    #[must_use]
    pub fn new(store: impl ThrottleStore) -> Self {
        Self {
            store: Arc::new(store),
            per_user: Some(DEFAULT_PER_USER),
            per_address: Some(DEFAULT_PER_ADDRESS),
            proxies: TrustedProxies::none(),
        }
    }

    /// The limit on failed logins per username (`None`: no limit).
    #[must_use]
    pub fn per_user(mut self, rate: Option<Rate>) -> Self {
        self.per_user = rate;
        self
    }

    /// The limit on attempts per client address (`None`: no limit).
    #[must_use]
    pub fn per_address(mut self, rate: Option<Rate>) -> Self {
        self.per_address = rate;
        self
    }

    /// Believe `X-Forwarded-For` from these proxies.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Count an attempt from the request's client address. Without a [`PeerAddr`] (or axum's
    /// `ConnectInfo`) in the extensions there is no address to count: allowed.
    ///
    /// # Errors
    ///
    /// When the store is unavailable.
    pub async fn attempt(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<Throttle, StoreError> {
        self.address(headers, extensions, "a", ThrottleOp::Take)
            .await
    }

    /// Take a unit of the request's client address before a client's secret is checked (the
    /// OAuth endpoints): failed client authentications are limited per address with the
    /// per-address rate, never per client id, so nobody can lock a client out.
    ///
    /// # Errors
    ///
    /// When the store is unavailable.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) async fn take_client_failure(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<Throttle, StoreError> {
        self.address(headers, extensions, "c", ThrottleOp::Take)
            .await
    }

    /// Give the unit back: the client authenticated.
    ///
    /// # Errors
    ///
    /// When the store is unavailable.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) async fn give_client_failure(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<(), StoreError> {
        self.address(headers, extensions, "c", ThrottleOp::Give)
            .await
            .map(drop)
    }

    /// `op` on the budget `kind` of the request's client address (allowed without one).
    async fn address(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
        kind: &str,
        op: ThrottleOp,
    ) -> Result<Throttle, StoreError> {
        let Some(rate) = self.per_address else {
            return Ok(Throttle::Allowed);
        };
        let Some(peer) = peer_addr(extensions) else {
            warn_no_peer_once();
            return Ok(Throttle::Allowed);
        };
        let client = group(self.proxies.client_addr(peer.ip(), headers));
        let key = format!(
            "{kind}:{}",
            hex(&digest("tja login address", client.to_string().as_bytes())[..16])
        );
        self.store.throttle(&key, rate, op).await
    }

    /// Take a failure unit for `username` before its password is checked.
    ///
    /// # Errors
    ///
    /// When the store is unavailable.
    pub async fn take_user(&self, username: &str) -> Result<Throttle, StoreError> {
        match self.per_user {
            Some(rate) => {
                self.store
                    .throttle(&user_key(username), rate, ThrottleOp::Take)
                    .await
            }
            None => Ok(Throttle::Allowed),
        }
    }

    /// Give the unit back: the attempt did not fail on a wrong password (it was right, or it
    /// could not be checked). Only wrong passwords count against a user.
    ///
    /// # Errors
    ///
    /// When the store is unavailable.
    pub async fn give_user(&self, username: &str) -> Result<(), StoreError> {
        if let Some(rate) = self.per_user {
            self.store
                .throttle(&user_key(username), rate, ThrottleOp::Give)
                .await?;
        }
        Ok(())
    }
}

fn user_key(username: &str) -> String {
    format!(
        "u:{}",
        hex(&digest("tja login user", username.as_bytes())[..16])
    )
}

impl fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("per_user", &self.per_user)
            .field("per_address", &self.per_address)
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let p = TrustedProxies::none();
        assert_eq!(
            p.client_addr(ip("10.0.0.1"), &xff(&["1.2.3.4"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let p: TrustedProxies = "10.0.0.0/8, ::1".parse().unwrap();
        let h = xff(&["6.6.6.6, 1.2.3.4", "10.1.1.1"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        assert_eq!(p.client_addr(ip("::1"), &xff(&["5.5.5.5"])), ip("5.5.5.5"));
        // From an untrusted peer the header means nothing.
        assert_eq!(p.client_addr(ip("8.8.8.8"), &h), ip("8.8.8.8"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            p.client_addr(ip("10.0.0.1"), &xff(&["1.2.3.4, nonsense"])),
            ip("10.0.0.1")
        );
        // Ports and IPv4-mapped addresses.
        assert_eq!(
            p.client_addr(ip("::ffff:10.0.0.1"), &xff(&["1.2.3.4:555"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn proxy_lists_parse_or_explain() {
        assert!(
            "10.0.0.0/8,fd00::/8, 127.0.0.1"
                .parse::<TrustedProxies>()
                .is_ok()
        );
        for bad in ["10.0.0.0/33", "nonsense", "::/129"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
        let all: TrustedProxies = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
    }

    #[test]
    fn ipv6_groups_by_64() {
        assert_eq!(group(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(group(ip("1.2.3.4")), ip("1.2.3.4"));
    }
}
