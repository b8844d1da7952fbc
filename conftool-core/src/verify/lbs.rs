//! Which load balancers serve which pool: the configuration's `load_balancers`, checked when
//! the configuration is read (a key that is not `dc/cluster/service`, a URL that is not a
//! plain `http(s)://host[:port]/path`, a pool listed twice, an empty list: an error with its
//! place), so a verification never starts from a mistyped setting.
//!
//! ```yaml
//! load_balancers:
//!   eqiad/appservers/apache: [http://lb1:9090/pools/appservers_apache, http://lb2:9090/pools/appservers_apache]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::model::PoolKey;
use crate::names::NodeName;

/// One load balancer's status URL for one pool, PyBal's `/pools/<pool>` shape
/// (`http://lb1:9090/pools/appservers_apache`): a host's state is read at `<url>/<host>`.
/// Only `http://` and `https://`, no user name or password, query or fragment; shown as
/// given, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LbUrl(Arc<Parts>);

/// An [`LbUrl`]'s pieces, shared by its clones (every check and error carries one).
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Parts {
    url: String,
    https: bool,
    /// `host[:port]`, for the `Host` header.
    authority: String,
    /// The host to connect to (an IPv6 literal without its brackets).
    host: String,
    port: u16,
    /// The path, without a trailing `/` (possibly empty).
    path: String,
}

impl LbUrl {
    /// The URL as configured (without a trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.0.url
    }

    /// Whether it is `https://`.
    pub fn is_https(&self) -> bool {
        self.0.https
    }

    /// Where a host's state is read: `<url>/<host>`.
    pub fn host_url(&self, host: &NodeName) -> String {
        format!("{}/{host}", self.0.url)
    }

    pub(super) fn authority(&self) -> &str {
        &self.0.authority
    }

    pub(super) fn host(&self) -> &str {
        &self.0.host
    }

    pub(super) fn port(&self) -> u16 {
        self.0.port
    }

    /// The request path of a host's state.
    pub(super) fn host_path(&self, host: &NodeName) -> String {
        format!("{}/{host}", self.0.path)
    }
}

impl fmt::Display for LbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.url)
    }
}

/// Why a load balancer URL was refused. Never quotes the URL: it might hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LbUrlError(String);

impl FromStr for LbUrl {
    type Err = LbUrlError;

    /// ```
    /// use conftool_core::verify::LbUrl;
    /// let u: LbUrl = "http://lb1:9090/pools/appservers_apache/".parse().unwrap();
    /// assert_eq!(u.host_url(&"mw1018".parse().unwrap()), "http://lb1:9090/pools/appservers_apache/mw1018");
    /// assert!("ftp://lb1/pools/x".parse::<LbUrl>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, LbUrlError> {
        let bad = |why: &str| LbUrlError(why.to_string());
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if s.chars().any(char::is_control) {
            return Err(bad("has control characters in it"));
        } else {
            return Err(bad("is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let scheme = if https { "https" } else { "http" };
        // The etcd endpoints' rules for the scheme and authority: no credentials, a valid
        // host and port, no control characters.
        crate::config::endpoint_scheme(&format!("{scheme}://{authority}"))
            .map_err(|e| bad(&e.to_string()))?;
        if path.chars().any(char::is_control) {
            return Err(bad("has control characters in it"));
        }
        if !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%:+=,;!$&'()*@".contains(&b))
        {
            return Err(bad(
                "has a query, a fragment or characters a URL path cannot have; give \
                 scheme://host[:port]/path",
            ));
        }
        let path = path.trim_end_matches('/').to_string();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !authority.ends_with(']') => (h, p.parse().unwrap_or(0)),
            _ => (authority, if https { 443 } else { 80 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(LbUrl(Arc::new(Parts {
            url: format!("{scheme}://{authority}{path}"),
            https,
            authority: authority.to_string(),
            host,
            port,
            path,
        })))
    }
}

/// Pools → the status URLs of the load balancers that serve them (the configuration's
/// `load_balancers`; see the [module](mod@crate::verify)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancers {
    pools: BTreeMap<PoolKey, Vec<LbUrl>>,
}

impl LoadBalancers {
    /// From a map built by a program; pools with no URL are left out (they have none).
    pub fn new(pools: BTreeMap<PoolKey, Vec<LbUrl>>) -> LoadBalancers {
        LoadBalancers {
            pools: pools.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        }
    }

    /// The load balancers of `pool` (none if it has none configured).
    pub fn for_pool(&self, pool: &PoolKey) -> &[LbUrl] {
        self.pools.get(pool).map_or(&[], Vec::as_slice)
    }

    /// Whether no pool has a load balancer configured.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// Every pool with its load balancers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&PoolKey, &[LbUrl])> {
        self.pools.iter().map(|(p, v)| (p, v.as_slice()))
    }
}

/// `pool: [url, ...]` pairs, every one checked; a pool twice is an error (YAML parsers keep
/// the last of two equal keys without a word).
impl<'de> Deserialize<'de> for LoadBalancers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LoadBalancers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of pools (dc/cluster/service) to lists of load balancer URLs")
            }
            fn visit_unit<E: de::Error>(self) -> Result<LoadBalancers, E> {
                Ok(LoadBalancers::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LoadBalancers, A::Error> {
                let mut pools = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let pool: PoolKey = key.parse().map_err(|e| {
                        de::Error::custom(format!(
                            "load_balancers: {e} (a pool is written dc/cluster/service, e.g. \
                             eqiad/appservers/apache)"
                        ))
                    })?;
                    let urls: Vec<String> = map.next_value()?;
                    if pools.contains_key(&pool) {
                        return Err(de::Error::custom(format!(
                            "load_balancers: pool {pool} is listed twice"
                        )));
                    }
                    if urls.is_empty() {
                        return Err(de::Error::custom(format!(
                            "load_balancers: pool {pool} has an empty list (remove it, or \
                             name its load balancers)"
                        )));
                    }
                    let mut seen = BTreeSet::new();
                    let mut list = Vec::new();
                    for (i, u) in urls.iter().enumerate() {
                        let url: LbUrl = u.parse().map_err(|e| {
                            de::Error::custom(format!(
                                "load_balancers: pool {pool}: load balancer {} {e}",
                                i + 1
                            ))
                        })?;
                        if !seen.insert(url.clone()) {
                            return Err(de::Error::custom(format!(
                                "load_balancers: pool {pool}: {url} is listed twice"
                            )));
                        }
                        list.push(url);
                    }
                    pools.insert(pool, list);
                }
                Ok(LoadBalancers { pools })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_plain_http_with_a_path() {
        let u: LbUrl = "http://lb1.eqiad:9090/pools/appservers_apache/"
            .parse()
            .unwrap();
        assert_eq!(u.as_str(), "http://lb1.eqiad:9090/pools/appservers_apache");
        assert_eq!(
            (u.host(), u.port(), u.authority()),
            ("lb1.eqiad", 9090, "lb1.eqiad:9090")
        );
        let host: NodeName = "mw1018.eqiad.wmnet".parse().unwrap();
        assert_eq!(
            u.host_path(&host),
            "/pools/appservers_apache/mw1018.eqiad.wmnet"
        );
        let v6: LbUrl = "https://[::1]/pools/x".parse().unwrap();
        assert_eq!((v6.host(), v6.port(), v6.is_https()), ("::1", 443, true));
        let bare: LbUrl = "http://lb1".parse().unwrap();
        assert_eq!(
            (bare.port(), bare.host_path(&host).as_str()),
            (80, "/mw1018.eqiad.wmnet")
        );
        for (bad, why) in [
            ("ftp://lb1/pools/x", "is not an http:// or https:// URL"),
            ("lb1:9090/pools/x", "is not an http:// or https:// URL"),
            (
                "http://user:s3cret@lb1/pools/x",
                "has a user name or password",
            ),
            ("http://lb1:99999/pools/x", "has an invalid port"),
            ("http:///pools/x", "has an invalid host"),
            ("http://lb1/pools/x?host=1", "has a query"),
            ("http://lb1/pools/x#frag", "has a query"),
            ("http://lb1/pools/a b", "has a query"),
            ("http://lb1/pools/\x1b[2J", "control characters"),
        ] {
            let e = bad.parse::<LbUrl>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    fn parse(yaml: &str) -> Result<LoadBalancers, String> {
        #[derive(Deserialize, Debug)]
        struct Doc {
            load_balancers: LoadBalancers,
        }
        yaml_serde::from_str::<Doc>(yaml)
            .map(|d| d.load_balancers)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_setting_maps_pools_to_urls() {
        let lbs = parse(
            "load_balancers:\n  eqiad/appservers/apache: [http://lb1:9090/pools/a, http://lb2:9090/pools/a]\n  \
             codfw/appservers/apache:\n    - https://lb3/pools/a\n",
        )
        .unwrap();
        let pool: PoolKey = "eqiad/appservers/apache".parse().unwrap();
        let urls: Vec<&str> = lbs.for_pool(&pool).iter().map(LbUrl::as_str).collect();
        assert_eq!(urls, ["http://lb1:9090/pools/a", "http://lb2:9090/pools/a"]);
        assert!(lbs
            .for_pool(&"eqiad/appservers/nginx".parse().unwrap())
            .is_empty());
        assert_eq!(lbs.iter().count(), 2);
        assert!(parse("load_balancers:\n").unwrap().is_empty());
        assert!(parse("load_balancers: {}\n").unwrap().is_empty());
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        for (yaml, why) in [
            (
                "load_balancers:\n  eqiad/appservers: [http://lb1/p]\n",
                "invalid pool name \"eqiad/appservers\": is not dc/cluster/service",
            ),
            (
                "load_balancers:\n  eqiad/app servers/apache: [http://lb1/p]\n",
                "invalid cluster name",
            ),
            (
                "load_balancers:\n  eqiad/a/b: [http://lb1/p, 'lb2:9090/p']\n",
                "pool eqiad/a/b: load balancer 2 is not an http:// or https:// URL",
            ),
            (
                "load_balancers:\n  eqiad/a/b: [http://lb1/p]\n  eqiad/a/b: [http://lb2/p]\n",
                "pool eqiad/a/b is listed twice",
            ),
            (
                "load_balancers:\n  eqiad/a/b: [http://lb1/p, http://lb1/p/]\n",
                "http://lb1/p is listed twice",
            ),
            ("load_balancers:\n  eqiad/a/b: []\n", "has an empty list"),
            ("load_balancers:\n  eqiad/a/b: http://lb1/p\n", "a sequence"),
            ("load_balancers: [http://lb1/p]\n", "a map of pools"),
        ] {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(why), "{yaml}: {e}");
            assert!(e.contains("line "), "no place: {e}");
        }
    }
}
