//! The etcd keyspace (a contract):
//!
//! ```text
//! <namespace>/v1/pools/<dc>/<cluster>/<service>/<node>  => {"pooled": "yes", "weight": 10}
//! <namespace>/v1/services/<cluster>/<service>           => {"port": 80, "default_values": {...}}
//! <namespace>/v1/meta/sync                              => {"git_rev": "..."}
//! <namespace>/v1/labels/<dc>/<node>                     => {"rack": "B4"}  (see crate::labels)
//! ```

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::str::FromStr;

use crate::model::{ObjectKey, PoolKey};
use crate::names::{Cluster, Datacenter, NodeName, Service};

/// Encodes and decodes keys under one namespace.
///
/// ```
/// use conftool_model::Keyspace;
/// let ks = Keyspace::new("/conftool");
/// assert_eq!(ks.pools_prefix(), "/conftool/v1/pools/");
/// let key = ks.parse_object_key("/conftool/v1/pools/eqiad/appservers/apache/mw1018").unwrap();
/// assert_eq!(ks.object_key(&key), "/conftool/v1/pools/eqiad/appservers/apache/mw1018");
/// assert!(ks.parse_object_key("/conftool/v1/pools/eqiad/appservers/apache").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    root: String,
}

impl Keyspace {
    /// A keyspace under `namespace` (`""` or `/` for none; a trailing `/` is ignored and a
    /// leading one added).
    pub fn new(namespace: &str) -> Self {
        let ns = namespace.trim_end_matches('/');
        let ns = if ns.is_empty() || ns.starts_with('/') {
            ns.to_string()
        } else {
            format!("/{ns}")
        };
        Keyspace {
            root: format!("{ns}/v1"),
        }
    }

    /// `<namespace>/v1/`: every key this tool owns.
    pub fn root_prefix(&self) -> String {
        format!("{}/", self.root)
    }

    /// `<namespace>/v1/pools/`.
    pub fn pools_prefix(&self) -> String {
        format!("{}/pools/", self.root)
    }

    /// `<namespace>/v1/services/`.
    pub fn services_prefix(&self) -> String {
        format!("{}/services/", self.root)
    }

    /// The narrowest prefix covering the given leading literal names: with a datacenter, a
    /// cluster and a service known, only that pool's keys are read.
    pub fn pools_prefix_for(
        &self,
        dc: Option<&Datacenter>,
        cluster: Option<&Cluster>,
        service: Option<&Service>,
    ) -> String {
        let mut p = self.pools_prefix();
        let parts = [
            dc.map(Datacenter::as_str),
            cluster.map(Cluster::as_str),
            service.map(Service::as_str),
        ];
        for part in parts {
            match part {
                Some(s) => {
                    p.push_str(s);
                    p.push('/');
                }
                None => break,
            }
        }
        p
    }

    /// The key of one object.
    pub fn object_key(&self, k: &ObjectKey) -> String {
        // Made once per object written or shown: one allocation of the exact size.
        let p = &k.pool;
        self.joined(
            "/pools/",
            &[
                p.dc.as_str(),
                p.cluster.as_str(),
                p.service.as_str(),
                k.node.as_str(),
            ],
            "",
        )
    }

    /// Decode an object key; `None` for anything that is not exactly
    /// `.../pools/<dc>/<cluster>/<service>/<node>` with valid names.
    pub fn parse_object_key(&self, key: &str) -> Option<ObjectKey> {
        let [dc, cluster, service, node] = self.object_key_parts(key)?;
        Some(ObjectKey::new(
            dc.parse().ok()?,
            cluster.parse().ok()?,
            service.parse().ok()?,
            node.parse::<NodeName>().ok()?,
        ))
    }

    /// The four names of `.../pools/<dc>/<cluster>/<service>/<node>`, not yet validated;
    /// `None` for any other shape. [`Keyspace::parse_object_key`] is the checked form.
    pub fn object_key_parts<'k>(&self, key: &'k str) -> Option<[&'k str; 4]> {
        // Called once per key read: no prefix string built for it.
        let rest = self.under(key, "/pools/")?;
        let mut it = rest.split('/');
        let parts = [it.next()?, it.next()?, it.next()?, it.next()?];
        if it.next().is_some() {
            return None;
        }
        Some(parts)
    }

    /// The key of a service definition.
    pub fn service_key(&self, cluster: &Cluster, service: &Service) -> String {
        self.joined("/services/", &[cluster.as_str(), service.as_str()], "")
    }

    /// Decode a service key.
    pub fn parse_service_key(&self, key: &str) -> Option<(Cluster, Service)> {
        let rest = self.under(key, "/services/")?;
        let (cluster, service) = rest.split_once('/')?;
        Some((cluster.parse().ok()?, service.parse().ok()?))
    }

    /// `<namespace>/v1/operations/`: the records of operations, outside `/v1/pools` so that
    /// no consumer of pool keys sees them.
    pub fn operations_prefix(&self) -> String {
        format!("{}/operations/", self.root)
    }

    /// The key of one operation's record.
    pub fn operation_key(&self, id: &crate::operation::OperationId) -> String {
        format!("{}{id}", self.operations_prefix())
    }

    /// `<namespace>/v1/locks/<name>/`: the entries of one lock.
    pub fn lock_prefix(&self, name: &crate::coordination::LockName) -> String {
        format!("{}/locks/{name}/", self.root)
    }

    /// `<namespace>/v1/locks/`: every lock.
    pub fn locks_prefix(&self) -> String {
        format!("{}/locks/", self.root)
    }

    /// The key of a stop switch: `<namespace>/v1/stop` or `<namespace>/v1/stop/<cluster>`.
    pub fn stop_key(&self, scope: &crate::coordination::StopScope) -> String {
        match scope {
            crate::coordination::StopScope::All => format!("{}/stop", self.root),
            crate::coordination::StopScope::Cluster(c) => format!("{}/stop/{c}", self.root),
        }
    }

    /// The key range of one pool: every object of it starts with this.
    pub fn pool_prefix(&self, pool: &PoolKey) -> String {
        self.joined(
            "/pools/",
            &[
                pool.dc.as_str(),
                pool.cluster.as_str(),
                pool.service.as_str(),
            ],
            "/",
        )
    }

    /// What follows `<root><section>` in `key`, if it starts so (no prefix string built).
    pub(crate) fn under<'k>(&self, key: &'k str, section: &str) -> Option<&'k str> {
        key.strip_prefix(self.root.as_str())?.strip_prefix(section)
    }

    /// `<root><section><parts joined by '/'><end>`, built in one allocation of its size.
    pub(crate) fn joined(&self, section: &str, parts: &[&str], end: &str) -> String {
        let len = self.root.len()
            + section.len()
            + parts.iter().map(|p| p.len()).sum::<usize>()
            + parts.len().saturating_sub(1)
            + end.len();
        let mut key = String::with_capacity(len);
        key.push_str(&self.root);
        key.push_str(section);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push('/');
            }
            key.push_str(part);
        }
        key.push_str(end);
        key
    }

    /// Where `conftool-sync` records what it last synced.
    pub fn sync_meta_key(&self) -> String {
        format!("{}/meta/sync", self.root)
    }
}

/// Parses the object keys of one read ([`Keyspace::parse_object_key`]), each name
/// allocated and checked once and shared by every key that has it: a fleet's keys repeat a
/// few datacenter, cluster and service names, and each node's name once per service (four
/// allocations and four checks per object otherwise). Keys read in order come pool by pool,
/// so a key of the same pool as the key before it takes that pool's names as they are.
#[derive(Debug, Default)]
pub struct KeyNames {
    dcs: HashSet<Datacenter>,
    clusters: HashSet<Cluster>,
    services: HashSet<Service>,
    nodes: HashSet<NodeName>,
    /// The pool of the last key parsed.
    last: Option<PoolKey>,
}

impl KeyNames {
    /// The object key `key` of keyspace `ks` names, with shared names; `None` where
    /// [`Keyspace::parse_object_key`] gives `None`.
    pub fn object_key(&mut self, ks: &Keyspace, key: &str) -> Option<ObjectKey> {
        let [dc, cluster, service, node] = ks.object_key_parts(key)?;
        let pool = match &self.last {
            Some(p)
                if p.service.as_str() == service
                    && p.cluster.as_str() == cluster
                    && p.dc.as_str() == dc =>
            {
                p.clone()
            }
            _ => {
                let p = PoolKey {
                    dc: shared(&mut self.dcs, dc)?,
                    cluster: shared(&mut self.clusters, cluster)?,
                    service: shared(&mut self.services, service)?,
                };
                self.last = Some(p.clone());
                p
            }
        };
        Some(ObjectKey {
            pool,
            node: shared(&mut self.nodes, node)?,
        })
    }
}

/// The name `s` from `set`, parsed and added if it is not there; `None` if it is not valid.
fn shared<T>(set: &mut HashSet<T>, s: &str) -> Option<T>
where
    T: Clone + Eq + Hash + Borrow<str> + FromStr,
{
    if let Some(name) = set.get(s) {
        return Some(name.clone());
    }
    let name: T = s.parse().ok()?;
    set.insert(name.clone());
    Some(name)
}

impl Default for Keyspace {
    /// No namespace: keys under `/v1/`.
    fn default() -> Self {
        Keyspace::new("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_forms() {
        assert_eq!(Keyspace::new("").pools_prefix(), "/v1/pools/");
        assert_eq!(Keyspace::new("/").pools_prefix(), "/v1/pools/");
        assert_eq!(
            Keyspace::new("conftool/").pools_prefix(),
            "/conftool/v1/pools/"
        );
        assert_eq!(Keyspace::new("/a/b").sync_meta_key(), "/a/b/v1/meta/sync");
    }

    #[test]
    fn keys_round_trip_and_reject_junk() {
        let ks = Keyspace::new("");
        let k = ks
            .parse_object_key("/v1/pools/eqiad/cache_text/varnish-fe/cp1052")
            .unwrap();
        assert_eq!(k.to_string(), "eqiad/cache_text/varnish-fe/cp1052");
        for junk in [
            "/v1/pools/eqiad/cache_text/varnish-fe",
            "/v1/pools/eqiad/cache_text/varnish-fe/cp1052/x",
            "/v1/pools/eqiad/cache_text/varnish-fe/..",
            "/v2/pools/eqiad/cache_text/varnish-fe/cp1052",
        ] {
            assert!(ks.parse_object_key(junk).is_none(), "{junk}");
        }
        let (c, s) = ks
            .parse_service_key("/v1/services/appservers/apache")
            .unwrap();
        assert_eq!(ks.service_key(&c, &s), "/v1/services/appservers/apache");
        assert!(ks
            .parse_service_key("/v1/services/appservers/a/b")
            .is_none());
    }

    #[test]
    fn shared_names_parse_each_key_as_it_parses_alone() {
        let ks = Keyspace::new("/conftool");
        let mut names = KeyNames::default();
        let keys = [
            "/conftool/v1/pools/eqiad/web/apache/mw1",
            "/conftool/v1/pools/eqiad/web/apache/mw2",
            // One name of the pool differs from the key before's, each in turn (one a prefix
            // of the other): a pool is taken as it is only when all three are the same.
            "/conftool/v1/pools/eqiad1/web/apache/mw1",
            "/conftool/v1/pools/eqiad/web/apache/mw1",
            "/conftool/v1/pools/eqiad/web1/apache/mw1",
            "/conftool/v1/pools/eqiad/web/apache/mw1",
            "/conftool/v1/pools/eqiad/web/apache1/mw1",
            "/conftool/v1/pools/eqiad/web/apache/mw1",
            // An invalid name in the pool part, then the node part.
            "/conftool/v1/pools/eqiad/web/a b/mw1",
            "/conftool/v1/pools/eqiad/web/apache/..",
            "/conftool/v1/pools/eqiad/web/apache/mw3",
            // Not object keys.
            "/conftool/v1/pools/eqiad/web/apache",
            "/conftool/v1/poolsx/eqiad/web/apache/mw1",
            "/conftoolx/v1/pools/eqiad/web/apache/mw1",
        ];
        for k in keys {
            assert_eq!(names.object_key(&ks, k), ks.parse_object_key(k), "{k}");
        }
        assert!(names.object_key(&ks, keys[2]).is_some());
        assert!(names.object_key(&ks, keys[8]).is_none());
    }

    #[test]
    fn every_prefix_under_a_namespace() {
        let ks = Keyspace::new("/conftool");
        assert_eq!(ks.root_prefix(), "/conftool/v1/");
        assert_eq!(ks.pools_prefix(), "/conftool/v1/pools/");
        assert_eq!(ks.services_prefix(), "/conftool/v1/services/");
        assert_eq!(ks.sync_meta_key(), "/conftool/v1/meta/sync");
        assert_eq!(Keyspace::default().root_prefix(), "/v1/");
        let k = ObjectKey::new(
            "eqiad".parse().unwrap(),
            "cache_text".parse().unwrap(),
            "varnish-fe".parse().unwrap(),
            "cp1052".parse().unwrap(),
        );
        assert_eq!(
            ks.object_key(&k),
            "/conftool/v1/pools/eqiad/cache_text/varnish-fe/cp1052"
        );
        // Another namespace's keys are not this one's.
        assert!(Keyspace::default()
            .parse_object_key(&ks.object_key(&k))
            .is_none());
        assert!(ks
            .parse_service_key("/conftool/v1/services/appservers")
            .is_none());
        assert!(ks
            .parse_service_key("/conftool/v1/services/app servers/apache")
            .is_none());
    }

    #[test]
    fn keys_are_made_in_one_allocation_of_their_size() {
        let ks = Keyspace::new("/conftool");
        let k = ObjectKey::new(
            "eqiad".parse().unwrap(),
            "cache_text".parse().unwrap(),
            "varnish-fe".parse().unwrap(),
            "cp1052".parse().unwrap(),
        );
        let pool = ks.pool_prefix(&k.pool);
        assert_eq!(pool, "/conftool/v1/pools/eqiad/cache_text/varnish-fe/");
        assert_eq!(
            pool,
            ks.pools_prefix_for(
                Some(&k.pool.dc),
                Some(&k.pool.cluster),
                Some(&k.pool.service)
            )
        );
        let service = ks.service_key(&k.pool.cluster, &k.pool.service);
        assert_eq!(service, "/conftool/v1/services/cache_text/varnish-fe");
        let object = ks.object_key(&k);
        assert!(object.starts_with(&pool));
        for key in [pool, service, object] {
            assert_eq!(key.capacity(), key.len(), "{key}");
        }
    }

    #[test]
    fn prefix_narrows_only_on_leading_literals() {
        let ks = Keyspace::new("");
        let dc: Datacenter = "eqiad".parse().unwrap();
        let svc: Service = "apache".parse().unwrap();
        assert_eq!(
            ks.pools_prefix_for(Some(&dc), None, Some(&svc)),
            "/v1/pools/eqiad/"
        );
        assert_eq!(ks.pools_prefix_for(None, None, Some(&svc)), "/v1/pools/");
        let cluster: Cluster = "appservers".parse().unwrap();
        assert_eq!(
            ks.pools_prefix_for(Some(&dc), Some(&cluster), Some(&svc)),
            "/v1/pools/eqiad/appservers/apache/"
        );
        assert_eq!(ks.pools_prefix_for(None, None, None), "/v1/pools/");
    }
}
