//! The pool model: [`Pooled`], [`Weight`], the state of one object ([`PoolState`]), a
//! service definition ([`ServiceDef`]) and the typed keys [`PoolKey`] and [`ObjectKey`].

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::names::{Cluster, Datacenter, NodeName, Service};

/// Whether a node serves traffic in a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pooled {
    /// Serving (if the load balancer's health checks pass).
    Yes,
    /// Depooled, but still known to the load balancer (counts towards depool thresholds).
    No,
    /// Out of rotation long-term: removed from load balancer configuration.
    Inactive,
}

impl Pooled {
    /// The wire form: `yes`, `no` or `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooled::Yes => "yes",
            Pooled::No => "no",
            Pooled::Inactive => "inactive",
        }
    }
}

impl fmt::Display for Pooled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pooled {
    type Err = Error;
    /// Accepts `yes`/`no`/`inactive` and, because people write them meaning the same (they
    /// are YAML 1.1 booleans), `true`/`false`/`on`/`off`, in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        let is = |words: &[&str]| words.iter().any(|w| s.eq_ignore_ascii_case(w));
        if is(&["yes", "true", "on"]) {
            Ok(Pooled::Yes)
        } else if is(&["no", "false", "off"]) {
            Ok(Pooled::No)
        } else if is(&["inactive"]) {
            Ok(Pooled::Inactive)
        } else {
            Err(Error::Pooled(s.to_string()))
        }
    }
}

impl Serialize for Pooled {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pooled {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Pooled;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("pooled: yes, no or inactive")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Pooled, E> {
                Ok(if v { Pooled::Yes } else { Pooled::No })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Pooled, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A load-balancing weight, 0..=65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct Weight(pub u16);

impl Weight {
    /// The weight as an integer.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Weight {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        s.parse::<u16>()
            .map(Weight)
            .map_err(|_| Error::Weight(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Weight;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a weight: an integer from 0 to 65535")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Weight, E> {
                u16::try_from(v)
                    .map(Weight)
                    .map_err(|_| E::custom(format!("weight {v} is out of range 0..=65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Weight, E> {
                u16::try_from(v)
                    .map(Weight)
                    .map_err(|_| E::custom(format!("weight {v} is out of range 0..=65535")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The dynamic state of one object: the JSON value stored at its key.
///
/// Fields this version does not know are kept in `extra` and written back unchanged, so a
/// newer writer's data survives an older reader's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolState {
    /// Whether the node serves.
    pub pooled: Pooled,
    /// Its weight.
    pub weight: Weight,
    /// Unknown fields, preserved.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// By hand rather than derived: serde's `flatten` buffers every field of every value before
/// reading `pooled` and `weight` out of the buffer, and a selection decodes thousands of
/// values. The same shape is accepted: a map with `pooled` and `weight` once each, any other
/// field kept in `extra` (the last of a repeated one wins).
impl<'de> Deserialize<'de> for PoolState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Field {
            Pooled,
            Weight,
            Other(String),
        }
        impl<'de> Deserialize<'de> for Field {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = Field;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a field name")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                        Ok(match v {
                            "pooled" => Field::Pooled,
                            "weight" => Field::Weight,
                            _ => Field::Other(v.to_string()),
                        })
                    }
                }
                d.deserialize_identifier(V)
            }
        }
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = PoolState;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with pooled and weight")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<PoolState, A::Error> {
                let (mut pooled, mut weight) = (None, None);
                let mut extra = serde_json::Map::new();
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Pooled if pooled.is_some() => {
                            return Err(de::Error::duplicate_field("pooled"))
                        }
                        Field::Weight if weight.is_some() => {
                            return Err(de::Error::duplicate_field("weight"))
                        }
                        Field::Pooled => pooled = Some(map.next_value()?),
                        Field::Weight => weight = Some(map.next_value()?),
                        Field::Other(name) => {
                            extra.insert(name, map.next_value()?);
                        }
                    }
                }
                Ok(PoolState {
                    pooled: pooled.ok_or_else(|| de::Error::missing_field("pooled"))?,
                    weight: weight.ok_or_else(|| de::Error::missing_field("weight"))?,
                    extra,
                })
            }
        }
        d.deserialize_map(V)
    }
}

impl PoolState {
    /// A state with no extra fields.
    pub fn new(pooled: Pooled, weight: Weight) -> Self {
        PoolState {
            pooled,
            weight,
            extra: serde_json::Map::new(),
        }
    }

    /// Parse the JSON stored at `key`.
    pub fn from_json(key: &str, bytes: &[u8]) -> Result<Self, Error> {
        if let Some(state) = Self::from_own_text(bytes) {
            return Ok(state);
        }
        serde_json::from_slice(bytes).map_err(|e| Error::MalformedValue {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// The exact text [`PoolState::to_json`] writes for a state with no extra fields,
    /// `{"pooled":"yes","weight":10}`, read without a JSON parser: what nearly every value is,
    /// and a selection reads thousands. `None` for any other text, which is then parsed as
    /// JSON; what is read here is what that parse gives.
    fn from_own_text(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(br#"{"pooled":""#)?;
        let (pooled, rest) = [Pooled::Yes, Pooled::No, Pooled::Inactive]
            .into_iter()
            .find_map(|p| {
                let rest = rest.strip_prefix(p.as_str().as_bytes())?;
                Some((p, rest.strip_prefix(br#"","weight":"#)?))
            })?;
        let digits = rest.strip_suffix(b"}")?;
        // JSON's integers: no sign, no leading zero; a weight is at most 65535.
        let plain = match digits {
            [b'0'] => true,
            [b'1'..=b'9', more @ ..] => more.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if !plain {
            return None;
        }
        let n = digits.iter().try_fold(0u16, |n, d| {
            n.checked_mul(10)?.checked_add(u16::from(d - b'0'))
        })?;
        Some(PoolState::new(pooled, Weight(n)))
    }

    /// Whether the object takes traffic: `pooled: yes` with a weight above 0 (a pooled
    /// object of weight 0 is drained: a load balancer sends it nothing).
    pub fn serving(&self) -> bool {
        self.pooled == Pooled::Yes && self.weight.0 > 0
    }

    /// The JSON stored in etcd.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, integers and a JSON map cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The static definition of a service, as declared in `services.yaml` and stored at
/// `/v1/services/<cluster>/<service>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// The port the service listens on.
    pub port: u16,
    /// The state a node gets when it is first added to the service's pool.
    pub default_values: Defaults,
    /// The least share of the pool's nodes that must stay pooled (as PyBal has it); when
    /// absent, [`DepoolThreshold::DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depool_threshold: Option<DepoolThreshold>,
    /// The least number of nodes that must stay serving, whatever the share (an absolute
    /// floor next to the threshold: `min_pooled: 2` on a pool of 3 keeps 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pooled: Option<u32>,
}

impl ServiceDef {
    /// The limits a write to this service's pools must respect.
    pub fn limits(&self) -> PoolLimits {
        PoolLimits {
            threshold: self.depool_threshold.unwrap_or_default(),
            min_pooled: self.min_pooled.unwrap_or(0),
        }
    }
}

/// What must stay serving in a pool: a share of its nodes and an absolute floor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolLimits {
    /// The service's depool threshold (a share of the nodes that are not `inactive`).
    pub threshold: DepoolThreshold,
    /// The service's `min_pooled` (0 when not set).
    pub min_pooled: u32,
}

impl PoolLimits {
    /// How many of `nodes` (not `inactive`) must stay serving: the threshold's share
    /// rounded up, or `min_pooled`, whichever is more.
    ///
    /// ```
    /// use conftool_model::{DepoolThreshold, PoolLimits};
    /// let l = PoolLimits { threshold: DepoolThreshold::new(0.5).unwrap(), min_pooled: 3 };
    /// assert_eq!(l.required(4), 3);
    /// assert_eq!(l.required(10), 5);
    /// ```
    pub fn required(self, nodes: usize) -> usize {
        self.threshold
            .required(nodes)
            .max(usize::try_from(self.min_pooled).unwrap_or(usize::MAX))
    }
}

impl fmt::Display for PoolLimits {
    /// `depool threshold 0.5`, or `depool threshold 0.5 and min_pooled 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "depool threshold {}", self.threshold)?;
        if self.min_pooled > 0 {
            write!(f, " and min_pooled {}", self.min_pooled)?;
        }
        Ok(())
    }
}

/// The least share (0.0..=1.0) of a pool's nodes (those not `inactive`) that must stay
/// `pooled: yes`. Writes that lower a pool's pooled count below it are refused unless
/// explicitly overridden; the load-balancer agent keeps servers in rotation rather than go
/// below it.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct DepoolThreshold(f64);

impl Eq for DepoolThreshold {}

impl DepoolThreshold {
    /// PyBal's default: half of a pool must stay pooled.
    pub const DEFAULT: DepoolThreshold = DepoolThreshold(0.5);

    /// A threshold from a share; `None` unless it is a number from 0 to 1.
    pub fn new(share: f64) -> Option<DepoolThreshold> {
        (0.0..=1.0)
            .contains(&share)
            .then_some(DepoolThreshold(share))
    }

    /// The share.
    pub fn get(self) -> f64 {
        self.0
    }

    /// How many of `nodes` must stay pooled: the share, rounded up.
    pub fn required(self, nodes: usize) -> usize {
        // Shares are at most 1 and node counts small, so the product is exact enough; the
        // epsilon keeps 0.3 * 10 from rounding up to 4.
        let exact = self.0 * nodes as f64;
        (exact - 1e-9).ceil().max(0.0) as usize
    }
}

impl Default for DepoolThreshold {
    fn default() -> Self {
        DepoolThreshold::DEFAULT
    }
}

impl fmt::Display for DepoolThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for DepoolThreshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let share = f64::deserialize(d)?;
        DepoolThreshold::new(share).ok_or_else(|| {
            de::Error::custom(format!(
                "depool_threshold {share} is not a share from 0.0 to 1.0"
            ))
        })
    }
}

/// Default state for new objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Initial pooled state.
    pub pooled: Pooled,
    /// Initial weight.
    pub weight: Weight,
}

impl Defaults {
    /// What the Python conftool gives objects of services it has no definition for.
    pub const LEGACY: Defaults = Defaults {
        pooled: Pooled::Inactive,
        weight: Weight(0),
    };

    /// The state a new object is created with.
    pub fn state(self) -> PoolState {
        PoolState::new(self.pooled, self.weight)
    }
}

/// A pool: the backends of one load-balanced service in one datacenter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    /// Datacenter.
    pub dc: Datacenter,
    /// Cluster.
    pub cluster: Cluster,
    /// Service.
    pub service: Service,
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.dc, self.cluster, self.service)
    }
}

/// The form [`PoolKey`]'s `Display` writes, `dc/cluster/service` (`eqiad/appservers/apache`),
/// each part a valid name.
///
/// ```
/// use conftool_model::model::PoolKey;
/// let p: PoolKey = "eqiad/appservers/apache".parse().unwrap();
/// assert_eq!(p.to_string(), "eqiad/appservers/apache");
/// assert!("eqiad/appservers".parse::<PoolKey>().is_err());
/// ```
impl FromStr for PoolKey {
    type Err = crate::error::NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let [dc, cluster, service] = parts.as_slice() else {
            return Err(crate::error::NameError {
                kind: "pool",
                name: s.to_string(),
                reason: "is not dc/cluster/service",
            });
        };
        Ok(PoolKey {
            dc: dc.parse()?,
            cluster: cluster.parse()?,
            service: service.parse()?,
        })
    }
}

/// One object: a node in a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The pool.
    pub pool: PoolKey,
    /// The node.
    pub node: NodeName,
}

impl ObjectKey {
    /// Build a key from its four names.
    pub fn new(dc: Datacenter, cluster: Cluster, service: Service, node: NodeName) -> Self {
        ObjectKey {
            pool: PoolKey {
                dc,
                cluster,
                service,
            },
            node,
        }
    }

    /// The Python tool's tag string: `dc=eqiad,cluster=appservers,service=apache`.
    pub fn tags(&self) -> String {
        format!(
            "dc={},cluster={},service={}",
            self.pool.dc, self.pool.cluster, self.pool.service
        )
    }
}

impl FromStr for ObjectKey {
    type Err = Error;
    /// `dc/cluster/service/node`, the form [`fmt::Display`] writes.
    ///
    /// ```
    /// use conftool_model::ObjectKey;
    /// let k: ObjectKey = "eqiad/appservers/apache/mw1018".parse()?;
    /// assert_eq!(k.node.as_str(), "mw1018");
    /// assert_eq!(k.to_string(), "eqiad/appservers/apache/mw1018");
    /// assert!("eqiad/appservers/apache".parse::<ObjectKey>().is_err());
    /// # Ok::<(), conftool_model::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        let [dc, cluster, service, node] = parts.as_slice() else {
            return Err(Error::Selector {
                input: s.to_string(),
                reason: "an object is dc/cluster/service/node".into(),
            });
        };
        Ok(ObjectKey::new(
            dc.parse()?,
            cluster.parse()?,
            service.parse()?,
            node.parse()?,
        ))
    }
}

impl fmt::Display for ObjectKey {
    /// `dc/cluster/service/node`, the form used in messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.pool, self.node)
    }
}

/// The sync record at `<ns>/v1/meta/sync`, written by `conftool-sync`: what is live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The datacenters the synced objects span (lets tools find a node's objects with point
    /// reads instead of reading the whole fleet).
    #[serde(default)]
    pub datacenters: Vec<Datacenter>,
    /// The git commit synced, or `None` after a sync from a working tree.
    #[serde(default)]
    pub git_rev: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_reads_what_people_mean() {
        let y: Pooled = serde_json::from_str("true").unwrap();
        let n: Pooled = serde_json::from_str("false").unwrap();
        assert_eq!((y, n), (Pooled::Yes, Pooled::No));
        for (s, p) in [
            ("yes", Pooled::Yes),
            ("no", Pooled::No),
            ("inactive", Pooled::Inactive),
        ] {
            assert_eq!(s.parse::<Pooled>().unwrap(), p);
            assert_eq!(p.to_string(), s);
        }
        assert!("maybe".parse::<Pooled>().is_err());
        for (s, p) in [
            ("Yes", Pooled::Yes),
            ("NO", Pooled::No),
            ("off", Pooled::No),
            ("On", Pooled::Yes),
        ] {
            assert_eq!(s.parse::<Pooled>().unwrap(), p, "{s}");
        }
        assert!(serde_json::from_str::<Pooled>("1").is_err());
    }

    #[test]
    fn weight_range_is_enforced() {
        assert_eq!(
            serde_json::from_str::<Weight>("65535").unwrap(),
            Weight(65535)
        );
        for bad in ["-1", "70000", "\"ten\"", "1.5"] {
            assert!(serde_json::from_str::<Weight>(bad).is_err(), "{bad}");
        }
        assert!("65536".parse::<Weight>().is_err());
    }

    #[test]
    fn depool_threshold_is_a_share_and_rounds_up() {
        let t = |s: f64| DepoolThreshold::new(s).unwrap();
        assert_eq!(t(0.5).required(4), 2);
        assert_eq!(t(0.5).required(5), 3);
        assert_eq!(t(0.3).required(10), 3);
        assert_eq!(t(0.0).required(10), 0);
        assert_eq!(t(1.0).required(7), 7);
        assert_eq!(t(0.5).required(0), 0);
        assert_eq!(DepoolThreshold::default(), t(0.5));
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(DepoolThreshold::new(bad).is_none(), "{bad}");
        }
        let def: ServiceDef = serde_json::from_str(
            r#"{"port":80,"default_values":{"pooled":"no","weight":1},"depool_threshold":0.75}"#,
        )
        .unwrap();
        assert_eq!(def.depool_threshold, Some(t(0.75)));
        let err = serde_json::from_str::<ServiceDef>(
            r#"{"port":80,"default_values":{"pooled":"no","weight":1},"depool_threshold":2}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("depool_threshold 2 is not a share"),
            "{err}"
        );
        // Absent stays absent when written back (stored values are unchanged by this field).
        let plain: ServiceDef =
            serde_json::from_str(r#"{"port":80,"default_values":{"pooled":"no","weight":1}}"#)
                .unwrap();
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"port":80,"default_values":{"pooled":"no","weight":1}}"#
        );
    }

    #[test]
    fn wrong_types_say_what_was_expected() {
        let e = serde_json::from_str::<Pooled>("1").unwrap_err().to_string();
        assert!(e.contains("expected pooled: yes, no or inactive"), "{e}");
        let e = serde_json::from_str::<Weight>("\"ten\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected a weight: an integer from 0 to 65535"),
            "{e}"
        );
        assert_eq!(
            DepoolThreshold::new(0.25).map(DepoolThreshold::get),
            Some(0.25)
        );
        assert_eq!(DepoolThreshold::DEFAULT.get(), 0.5);
        assert_eq!(DepoolThreshold::DEFAULT.to_string(), "0.5");
    }

    #[test]
    fn keys_print_as_messages_and_the_python_tags() {
        let k = ObjectKey::new(
            "eqiad".parse().unwrap(),
            "appservers".parse().unwrap(),
            "apache".parse().unwrap(),
            "mw1018".parse().unwrap(),
        );
        assert_eq!(k.to_string(), "eqiad/appservers/apache/mw1018");
        assert_eq!(k.pool.to_string(), "eqiad/appservers/apache");
        assert_eq!(k.tags(), "dc=eqiad,cluster=appservers,service=apache");
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(
            "maybe".parse::<Pooled>().unwrap_err().to_string(),
            "invalid pooled value \"maybe\": expected yes, no or inactive"
        );
        assert_eq!(
            "70000".parse::<Weight>().unwrap_err().to_string(),
            "invalid weight \"70000\": expected an integer from 0 to 65535"
        );
        let e = serde_json::from_str::<Weight>("70000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight 70000 is out of range 0..=65535"), "{e}");
        let e = serde_json::from_str::<Weight>("-3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight -3 is out of range 0..=65535"), "{e}");
        let e = PoolState::from_json("/v1/k", b"[]")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("etcd key /v1/k: malformed value: "), "{e}");
        assert_eq!(Weight(7).get(), 7);
        assert_eq!(Weight(7).to_string(), "7");
        assert_eq!("42".parse::<Weight>().unwrap(), Weight(42));
    }

    #[test]
    fn defaults_make_the_state_new_objects_get() {
        assert_eq!(
            Defaults::LEGACY.state(),
            PoolState::new(Pooled::Inactive, Weight(0))
        );
        let d = Defaults {
            pooled: Pooled::Yes,
            weight: Weight(10),
        };
        assert_eq!(d.state().to_json(), r#"{"pooled":"yes","weight":10}"#);
        let rec = SyncRecord {
            datacenters: vec!["codfw".parse().unwrap(), "eqiad".parse().unwrap()],
            git_rev: None,
        };
        assert_eq!(
            serde_json::to_string(&rec).unwrap(),
            r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#
        );
        let back: SyncRecord = serde_json::from_str(r#"{"git_rev":"abc","new":1}"#).unwrap();
        assert_eq!(back.git_rev.as_deref(), Some("abc"));
        assert!(back.datacenters.is_empty());
    }

    #[test]
    fn state_keeps_unknown_fields_and_python_shape() {
        let raw = br#"{"pooled":"no","weight":3,"comment":"disk"}"#;
        let st = PoolState::from_json("k", raw).unwrap();
        assert_eq!(st.pooled, Pooled::No);
        assert_eq!(st.extra["comment"], "disk");
        let back: serde_json::Value = serde_json::from_str(&st.to_json()).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"pooled":"no","weight":3,"comment":"disk"})
        );
        assert!(PoolState::from_json("k", br#"{"pooled":"no"}"#).is_err());
    }

    #[test]
    fn the_own_text_is_read_as_json_reads_it() {
        for pooled in [Pooled::Yes, Pooled::No, Pooled::Inactive] {
            for w in [0, 1, 9, 10, 99, 100, 9999, 10000, 65535] {
                let text = PoolState::new(pooled, Weight(w)).to_json();
                let json: PoolState = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    PoolState::from_own_text(text.as_bytes()),
                    Some(json),
                    "{text}"
                );
            }
        }
        // Anything else is left to the JSON parser, which reads some of these and refuses
        // the others.
        for text in [
            r#"{"pooled":"yes","weight":65536}"#,
            r#"{"pooled":"yes","weight":100000}"#,
            r#"{"pooled":"yes","weight":99999999999999999999999}"#,
            r#"{"pooled":"yes","weight":01}"#,
            r#"{"pooled":"yes","weight":-1}"#,
            r#"{"pooled":"yes","weight":1.0}"#,
            r#"{"pooled":"yes","weight":1a}"#,
            r#"{"pooled":"yes","weight":}"#,
            r#"{"pooled":"yes","weight":1"#,
            r#"{"pooled":"yes","weight":1} "#,
            r#"{"pooled":"yes", "weight":1}"#,
            r#"{"pooled":"yes","weight":1,"x":2}"#,
            r#"{"pooled":"YES","weight":1}"#,
            r#"{"pooled":"yess","weight":1}"#,
            r#"{"pooled":"","weight":1}"#,
            r#"{"weight":1,"pooled":"yes"}"#,
            r#"{"pooled":"no""weight":1}"#,
        ] {
            assert_eq!(PoolState::from_own_text(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn state_decoding_refuses_what_is_not_one_state() {
        let err = |raw: &str| {
            PoolState::from_json("k", raw.as_bytes())
                .unwrap_err()
                .to_string()
        };
        for (raw, why) in [
            (r#"{"weight":1}"#, "missing field `pooled`"),
            (r#"{"pooled":"no"}"#, "missing field `weight`"),
            (
                r#"{"pooled":"yes","weight":1,"pooled":"no"}"#,
                "duplicate field `pooled`",
            ),
            (
                r#"{"weight":1,"pooled":"yes","weight":2}"#,
                "duplicate field `weight`",
            ),
            (r#"{"pooled":"maybe","weight":1}"#, "maybe"),
            (
                r#"{"pooled":"yes","weight":"x"}"#,
                "invalid type: string \"x\"",
            ),
            (
                r#"["yes",1]"#,
                "invalid type: sequence, expected an object with pooled and weight",
            ),
            ("null", "invalid type: null"),
            (r#"{"pooled":"yes","weight":1"#, "EOF"),
        ] {
            let e = err(raw);
            assert!(e.contains(why), "{raw}: {e}");
        }
        // A field name that is not a string (YAML allows it).
        let keys = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            [(1u8, 2u8)].into_iter(),
        );
        let e = PoolState::deserialize(keys).unwrap_err().to_string();
        assert_eq!(e, "invalid type: integer `1`, expected a field name");
        // Any case of the words, and booleans, as the Python tool's YAML wrote them.
        let st = PoolState::from_json("k", br#"{"weight":0,"pooled":"INACTIVE"}"#).unwrap();
        assert_eq!((st.pooled, st.weight), (Pooled::Inactive, Weight(0)));
        let st = PoolState::from_json("k", br#"{"pooled":false,"weight":2}"#).unwrap();
        assert_eq!(st.pooled, Pooled::No);
        assert_eq!("On".parse::<Pooled>().unwrap(), Pooled::Yes);
        assert_eq!("fAlSe".parse::<Pooled>().unwrap(), Pooled::No);
        assert!("yess".parse::<Pooled>().is_err());
        // Unknown fields of any shape are kept; the last of a repeated one wins.
        let st = PoolState::from_json(
            "k",
            br#"{"a":1,"pooled":"yes","b":{"c":[1]},"weight":3,"a":2}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(st.extra),
            serde_json::json!({"a": 2, "b": {"c": [1]}})
        );
    }
}
