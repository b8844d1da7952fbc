//! [`Store::labels`] and [`Store::hosts_with_labels`] against a real etcd: what the sync
//! writes under `/v1/labels/`, read back by datacenter and by selector; a malformed value is
//! an error naming its key, never a crash or a host silently left out.

use conftool_core::Classify as _;
use conftool_core::{Config, Datacenter, Error, LabelSelector, ModelError, NodeName, Store};
use conftool_testkit::Etcd;

async fn store(etcd: &Etcd, namespace: &str) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        namespace: namespace.to_string(),
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

async fn put(etcd: &Etcd, key: &str, value: &str) {
    etcd.client()
        .await
        .put(key, value, None)
        .await
        .expect("put");
}

fn dc(s: &str) -> Datacenter {
    s.parse().expect("dc")
}

fn sel(s: &str) -> LabelSelector {
    s.parse().expect("selector")
}

fn names(v: &[NodeName]) -> Vec<&str> {
    v.iter().map(NodeName::as_str).collect()
}

/// Two datacenters that both have a rack B4, a pool object and keys that are not labels.
async fn fleet(etcd: &Etcd, ns: &str) {
    for (key, value) in [
        ("labels/eqiad/mw1018", r#"{"rack":"B4","row":"B"}"#),
        ("labels/eqiad/mw1019", r#"{"rack":"B4","row":"B"}"#),
        ("labels/eqiad/cp1052", r#"{ "row": "B", "rack": "B5" }"#),
        ("labels/eqiad/mw1221", r#"{"rack":"C2","row":"C"}"#),
        ("labels/codfw/mw2001", r#"{"rack":"B4","row":"B"}"#),
        ("labels/codfw/mw2002", r#"{"rack":"A1","row":"A"}"#),
        // Not labels keys: skipped by readers.
        ("labels/eqiad/mw1018/notes", "free text"),
        ("labels/eqiad", "not a node"),
        // A pool object of a host that has labels: a separate keyspace.
        (
            "pools/eqiad/appservers/apache/mw1018",
            r#"{"pooled":"yes","weight":1}"#,
        ),
    ] {
        put(etcd, &format!("{ns}/v1/{key}"), value).await;
    }
}

#[tokio::test]
async fn labels_are_read_by_datacenter_and_hosts_by_selector() {
    let etcd = Etcd::start();
    fleet(&etcd, "").await;
    let s = store(&etcd, "").await;

    let all = s.labels(None).await.expect("labels");
    let shown: Vec<String> = all
        .iter()
        .map(|((d, n), l)| format!("{d}/{n} {l}"))
        .collect();
    assert_eq!(
        shown,
        [
            "codfw/mw2001 rack=B4,row=B",
            "codfw/mw2002 rack=A1,row=A",
            "eqiad/cp1052 rack=B5,row=B",
            "eqiad/mw1018 rack=B4,row=B",
            "eqiad/mw1019 rack=B4,row=B",
            "eqiad/mw1221 rack=C2,row=C",
        ]
    );
    let eqiad = s.labels(Some(&dc("eqiad"))).await.expect("labels");
    assert_eq!(eqiad.len(), 4);
    assert!(eqiad.keys().all(|(d, _)| d.as_str() == "eqiad"));
    // A datacenter whose name is a prefix of another's is its own range.
    put(&etcd, "/v1/labels/eqiad2/mw9001", r#"{"rack":"B4"}"#).await;
    assert_eq!(s.labels(Some(&dc("eqiad"))).await.expect("labels"), eqiad);
    assert!(s
        .labels(Some(&dc("esams")))
        .await
        .expect("labels")
        .is_empty());

    let eqiad_dc = dc("eqiad");
    let hosts = |selector: &'static str, d: Option<&'static str>| {
        let s = s.clone();
        async move {
            let d = d.map(dc);
            s.hosts_with_labels(d.as_ref(), &sel(selector))
                .await
                .expect("hosts")
        }
    };
    assert_eq!(
        names(&hosts("rack=B4", Some("eqiad")).await),
        ["mw1018", "mw1019"]
    );
    assert_eq!(
        names(&hosts("row=B", Some("eqiad")).await),
        ["cp1052", "mw1018", "mw1019"]
    );
    assert_eq!(
        names(&hosts("rack=B4,row=B", Some("codfw")).await),
        ["mw2001"]
    );
    // Every term must match, exactly.
    assert!(hosts("rack=B4,row=C", Some("eqiad")).await.is_empty());
    assert!(hosts("rack=B", Some("eqiad")).await.is_empty());
    // Without a datacenter: rack B4 of every datacenter, each host once, sorted.
    assert_eq!(
        names(&hosts("rack=B4", None).await),
        ["mw1018", "mw1019", "mw2001", "mw9001"]
    );
    assert_eq!(
        names(
            &s.hosts_with_labels(Some(&eqiad_dc), &sel("rack=C2"))
                .await
                .expect("hosts")
        ),
        ["mw1221"]
    );
}

#[tokio::test]
async fn a_namespace_reads_its_own_labels_only() {
    let etcd = Etcd::start();
    fleet(&etcd, "/conftool").await;
    put(&etcd, "/v1/labels/eqiad/other", r#"{"rack":"B4"}"#).await;
    let s = store(&etcd, "/conftool").await;
    let hosts = s
        .hosts_with_labels(None, &sel("rack=B4"))
        .await
        .expect("hosts");
    assert_eq!(names(&hosts), ["mw1018", "mw1019", "mw2001"]);
    let plain = store(&etcd, "").await;
    assert_eq!(plain.labels(None).await.expect("labels").len(), 1);
}

#[tokio::test]
async fn a_malformed_value_is_an_error_naming_its_key() {
    let etcd = Etcd::start();
    fleet(&etcd, "").await;
    put(&etcd, "/v1/labels/eqiad/mw1020", r#"{"rack":4}"#).await;
    let s = store(&etcd, "").await;
    for result in [
        s.labels(Some(&dc("eqiad"))).await.map(|_| ()),
        s.hosts_with_labels(Some(&dc("eqiad")), &sel("rack=B4"))
            .await
            .map(|_| ()),
        s.labels(None).await.map(|_| ()),
    ] {
        match result {
            Err(e @ Error::Model(ModelError::MalformedValue { .. })) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("etcd key /v1/labels/eqiad/mw1020: malformed value"),
                    "{msg}"
                );
                assert!(!e.is_bad_input(), "a runtime failure, not bad input");
            }
            other => panic!("{other:?}"),
        }
    }
    // Another datacenter's read is not affected.
    let codfw = s
        .hosts_with_labels(Some(&dc("codfw")), &sel("rack=B4"))
        .await
        .expect("hosts");
    assert_eq!(names(&codfw), ["mw2001"]);
}
