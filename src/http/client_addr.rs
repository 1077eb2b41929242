//! The address of the client behind a request. Behind a TLS proxy every connection comes from
//! the proxy, so from peers in `--trusted-proxies` the address is read from the one header the
//! proxy writes (`--forwarded-header`: `X-Forwarded-For` by default, or `Forwarded`, RFC 7239):
//! the right-most hop that is not itself a trusted proxy (everything left of it was written by
//! the client and proves nothing). The other header is never read, since most proxies pass it
//! through from the client untouched; from any other peer neither is.
//!
//! A hop that cannot be read (`unknown`, an obfuscated name, bytes that are not text) makes the
//! client [`UNKNOWN_CLIENT`]: all such clients share one rate-limit bucket and read `unknown` in
//! logs, and none of them is ever taken for the proxy (whose bucket every client behind it
//! would then share).

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

use crate::config::server::ForwardedHeader;
pub(crate) use crate::net::client_address::{UNKNOWN_CLIENT, describe};

/// Whether `ip` is one of the `--trusted-proxies`, whose forwarded headers are read.
pub(crate) fn is_trusted_proxy(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client's address, for rate limits, audit and logs.
pub(crate) fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| is_trusted_proxy(*ip, trusted);
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops = forwarded_hops(headers, header);
    let mut nearest_trusted = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => nearest_trusted = *ip,
            Some(ip) => return Some(*ip),
            // A hop that is not an address ("unknown", an obfuscated name, unreadable bytes):
            // nothing left of it can be placed, and the proxy is not the client.
            None => return Some(UNKNOWN_CLIENT),
        }
    }
    Some(nearest_trusted)
}

/// The `for` addresses of `Forwarded`, or the addresses of `X-Forwarded-For`, in order
/// (left-most first), across repeated headers; `None` for a hop that is not an address.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    // Read lossily: a byte that is not text spoils only its own hop, which then parses as no
    // address, instead of hiding the whole header (and every hop in it) from the parse.
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    if header == ForwardedHeader::Forwarded {
        return values("forwarded")
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(v.trim().trim_matches('"')))
                })
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711` or a bare IPv6 address.
fn parse_node(raw: &str) -> Option<IpAddr> {
    if let Ok(ip) = raw.parse() {
        return Some(ip);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = raw.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]
    }

    fn client_address(peer: Option<IpAddr>, h: &HeaderMap, t: &[IpNet]) -> Option<IpAddr> {
        super::client_address(peer, h, t, ForwardedHeader::XForwardedFor)
    }

    #[test]
    fn the_right_most_untrusted_hop_from_a_trusted_peer_only() {
        let trusted = trusted();
        let proxy = Some(ip("10.1.2.3"));
        let from_forwarded = |peer, h: &HeaderMap, t: &[IpNet]| {
            super::client_address(peer, h, t, ForwardedHeader::Forwarded)
        };
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.9.9.9")]);
        assert_eq!(
            client_address(proxy, &xff, &trusted),
            Some(ip("203.0.113.7")),
            "the client-written left part is ignored"
        );
        assert_eq!(
            client_address(Some(ip("198.51.100.1")), &xff, &trusted),
            Some(ip("198.51.100.1")),
            "an untrusted peer's headers are ignored"
        );
        let fwd = headers(&[
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
            ),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(
            from_forwarded(proxy, &fwd, &trusted),
            Some(ip("2001:db8::7")),
            "Forwarded, when the proxy writes it"
        );
        assert_eq!(
            client_address(proxy, &fwd, &trusted),
            Some(ip("1.1.1.1")),
            "a Forwarded the client sent is ignored when the proxy writes X-Forwarded-For"
        );
        let split = headers(&[
            ("x-forwarded-for", "203.0.113.8"),
            ("x-forwarded-for", "10.0.0.9"),
        ]);
        assert_eq!(
            client_address(proxy, &split, &trusted),
            Some(ip("203.0.113.8")),
            "repeated headers read in order"
        );
        let unknown = headers(&[("forwarded", "for=unknown, for=10.0.0.5")]);
        assert_eq!(
            from_forwarded(proxy, &unknown, &trusted),
            Some(UNKNOWN_CLIENT),
            "an unknown hop is not the proxy"
        );
        assert_eq!(
            client_address(proxy, &HeaderMap::new(), &trusted),
            proxy,
            "no header: the proxy"
        );
        let ported = headers(&[("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(
            client_address(proxy, &ported, &trusted),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn an_unreadable_hop_is_unknown_never_the_proxy() {
        let trusted = trusted();
        let proxy = Some(ip("10.1.2.3"));
        // Regression (issue 22, item 10): one byte that is not text dropped the whole header,
        // and the client landed in the proxy's bucket.
        let mut unreadable = HeaderMap::new();
        unreadable.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"6.6.6.\xff, 203.0.113.5").unwrap(),
        );
        assert_eq!(
            client_address(proxy, &unreadable, &trusted),
            Some(ip("203.0.113.5")),
            "an unreadable byte left of the client spoils nothing"
        );
        let mut unreadable_last = HeaderMap::new();
        unreadable_last.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"203.0.113.5, 198.51.100.\xff").unwrap(),
        );
        assert_eq!(
            client_address(proxy, &unreadable_last, &trusted),
            Some(UNKNOWN_CLIENT),
            "an unreadable nearest hop is unknown, never the proxy"
        );
        assert_eq!(describe(Some(UNKNOWN_CLIENT)), "unknown");
    }
}
