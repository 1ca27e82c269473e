//! Keeps UnifiedPush endpoints — URLs chosen by whoever holds a device's
//! credentials — from turning the relay against the network it runs in.
//! Twice: when an endpoint is registered ([`check_endpoint`]: https on
//! port 443, no credentials, no local names, no literal non-public
//! address) and when the relay connects ([`GuardedResolver`] keeps only
//! public unicast addresses from what DNS answered, so a name that
//! resolves, or later rebinds, to a private address is never dialled;
//! [`literal_allowed`] does the same for URLs that name an address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Longest endpoint URL accepted.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// Why an endpoint was refused at registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointRefused {
    #[error("endpoint is not a URL")]
    NotAUrl,
    #[error("endpoint is longer than {MAX_ENDPOINT_LEN} bytes")]
    TooLong,
    #[error("endpoint must be https")]
    NotHttps,
    #[error("endpoint must use port 443")]
    Port,
    #[error("endpoint must not carry credentials")]
    Credentials,
    #[error("endpoint must be a public host")]
    NotPublic,
}

/// Is `ip` an address on the public internet that a push server may have?
/// No loopback, private, shared (CGNAT), link-local, multicast, broadcast,
/// unspecified, documentation, benchmarking or reserved range, and no
/// IPv6 form of one (mapped, compatible, NAT64, 6to4, ULA).
pub fn is_public_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", unspecified
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // NAT64 well-known prefix: as public as the IPv4 address it carries.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return public_v4(embedded_v4(s[6], s[7]));
    }
    // 6to4: likewise.
    if s[0] == 0x2002 {
        return public_v4(embedded_v4(s[1], s[2]));
    }
    // Only global unicast (2000::/3) is public; that excludes ::, ::1,
    // IPv4-compatible ::/96, ULA fc00::/7, link-local fe80::/10,
    // multicast ff00::/8 and the local-use NAT64 64:ff9b:1::/48.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // IETF protocol assignments 2001::/23 (Teredo, benchmarking, ORCHID)
    // and the documentation ranges 2001:db8::/32 and 3fff::/20.
    let ietf = s[0] == 0x2001 && s[1] < 0x0200;
    let documentation = (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000);
    !(ietf || documentation)
}

fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Checks a UnifiedPush endpoint at registration. `loopback_ok` (the relay
/// serves plain HTTP on loopback: tests and the demo) also admits http or
/// https to `localhost` or a loopback address on any port.
pub fn check_endpoint(endpoint: &str, loopback_ok: bool) -> Result<Url, EndpointRefused> {
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(EndpointRefused::TooLong);
    }
    let url = Url::parse(endpoint).map_err(|_| EndpointRefused::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointRefused::Credentials);
    }
    let host = url.host().ok_or(EndpointRefused::NotAUrl)?;
    let loopback_host = match &host {
        url::Host::Domain(d) => is_localhost_name(d),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    if loopback_ok && loopback_host && matches!(url.scheme(), "http" | "https") {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err(EndpointRefused::NotHttps);
    }
    if url.port_or_known_default() != Some(443) {
        return Err(EndpointRefused::Port);
    }
    let public = match host {
        url::Host::Ipv4(ip) => public_v4(ip),
        url::Host::Ipv6(ip) => public_v6(ip),
        // A single label or a local-only suffix names a host inside some
        // network, never a push server on the internet.
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d.contains('.')
                && !is_localhost_name(&d)
                && ![".local", ".internal", ".localdomain", ".home.arpa", ".lan"]
                    .iter()
                    .any(|suffix| d.ends_with(suffix))
        }
    };
    if !public {
        return Err(EndpointRefused::NotPublic);
    }
    Ok(url)
}

/// Whether the relay may connect to a URL that names the address `ip`
/// itself (reqwest does not consult the resolver for those).
pub(crate) fn literal_allowed(ip: IpAddr, loopback_ok: bool) -> bool {
    is_public_unicast(ip) || (loopback_ok && ip.is_loopback())
}

/// Every address DNS gave for a push host was refused.
#[derive(Debug, thiserror::Error)]
#[error("push host resolves to no public address")]
pub struct NoPublicAddress;

/// Resolves push hosts and keeps only public unicast answers; with
/// `loopback_ok`, `localhost` may also resolve to loopback (tests and the
/// demo). Any other name that answers only non-public addresses fails to
/// resolve, so nothing is dialled. `source` replaces the system resolver
/// (tests feed it hostile answers).
pub(crate) struct GuardedResolver {
    source: Option<Arc<dyn Resolve>>,
    loopback_ok: bool,
}

impl GuardedResolver {
    pub(crate) fn new(source: Option<Arc<dyn Resolve>>, loopback_ok: bool) -> Self {
        Self {
            source,
            loopback_ok,
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let source = self.source.clone();
        let host = name.as_str().to_owned();
        let loopback_ok = self.loopback_ok && is_localhost_name(&host);
        Box::pin(async move {
            let answers: Vec<SocketAddr> = match source {
                Some(s) => s.resolve(name).await?.collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let kept: Vec<SocketAddr> = answers
                .into_iter()
                .filter(|a| is_public_unicast(a.ip()) || (loopback_ok && a.ip().is_loopback()))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(NoPublicAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// Whether a request error came from [`GuardedResolver`] refusing a host.
pub(crate) fn refused_by_guard(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<NoPublicAddress>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public_unicast(s.parse().unwrap())
    }

    #[test]
    fn non_public_ipv4_ranges_are_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip} must be refused");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.254",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[test]
    fn non_public_ipv6_ranges_and_embedded_forms_are_refused() {
        for ip in [
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:2::1",
            "2001:10::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
        ] {
            assert!(!public(ip), "{ip} must be refused");
        }
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:82b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[test]
    fn registration_wants_https_on_443_to_a_public_host() {
        let ok = |u: &str| check_endpoint(u, false);
        assert!(ok("https://push.example.org/up/abc").is_ok());
        assert!(ok("https://push.example.org:443/up").is_ok());
        assert!(ok("https://8.8.8.8/up").is_ok());
        use EndpointRefused::*;
        for (u, why) in [
            ("not a url", NotAUrl),
            ("http://push.example.org/up", NotHttps),
            ("ftp://push.example.org/up", NotHttps),
            ("https://push.example.org:8443/up", Port),
            ("https://user:pw@push.example.org/up", Credentials),
            ("https://10.0.0.1/up", NotPublic),
            ("https://169.254.169.254/latest/meta-data", NotPublic),
            ("https://[::1]/up", NotPublic),
            ("https://[fd00::1]/up", NotPublic),
            ("https://[::ffff:127.0.0.1]/up", NotPublic),
            ("https://2130706433/up", NotPublic),
            ("https://0x7f.1/up", NotPublic),
            ("https://localhost/up", NotPublic),
            ("https://a.localhost/up", NotPublic),
            ("https://metadata/up", NotPublic),
            ("https://metadata.google.internal/up", NotPublic),
            ("https://printer.local/up", NotPublic),
        ] {
            assert_eq!(ok(u).err(), Some(why), "{u}");
        }
        let long = format!("https://push.example.org/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(ok(&long).err(), Some(TooLong));
    }

    #[test]
    fn loopback_mode_admits_only_loopback_hosts_over_http() {
        let t = |u: &str| check_endpoint(u, true);
        assert!(t("http://127.0.0.1:8080/up").is_ok());
        assert!(t("http://[::1]:9/up").is_ok());
        assert!(t("http://localhost:1234/up").is_ok());
        assert_eq!(
            t("http://10.0.0.1:8080/up").err(),
            Some(EndpointRefused::NotHttps)
        );
        assert_eq!(
            t("https://169.254.169.254/").err(),
            Some(EndpointRefused::NotPublic)
        );
    }

    struct Fixed(Vec<IpAddr>);

    impl Resolve for Fixed {
        fn resolve(&self, _: Name) -> Resolving {
            let addrs: Vec<SocketAddr> = self.0.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
            Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) })
        }
    }

    async fn resolve(answers: &[&str], host: &str, loopback_ok: bool) -> Option<Vec<IpAddr>> {
        let src = Fixed(answers.iter().map(|a| a.parse().unwrap()).collect());
        let r = GuardedResolver::new(Some(Arc::new(src)), loopback_ok);
        let name: Name = host.parse().unwrap();
        r.resolve(name)
            .await
            .ok()
            .map(|a| a.map(|s| s.ip()).collect())
    }

    #[tokio::test]
    async fn resolver_keeps_only_public_answers() {
        assert_eq!(resolve(&["10.0.0.1"], "push.example", false).await, None);
        assert_eq!(
            resolve(&["169.254.169.254", "fd00::1"], "push.example", true).await,
            None
        );
        // Loopback answers only for localhost, and only in loopback mode.
        assert_eq!(resolve(&["127.0.0.1"], "push.example", true).await, None);
        assert_eq!(resolve(&["127.0.0.1"], "localhost", false).await, None);
        assert_eq!(
            resolve(&["127.0.0.1"], "localhost", true).await,
            Some(vec!["127.0.0.1".parse().unwrap()])
        );
        // A mixed answer keeps its public part only.
        assert_eq!(
            resolve(&["10.1.1.1", "8.8.4.4"], "push.example", false).await,
            Some(vec!["8.8.4.4".parse().unwrap()])
        );
    }
}
