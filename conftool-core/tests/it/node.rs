//! [`Store::find_node`] against a real etcd: point reads when the sync record and service
//! definitions allow them, the same answer as a full selection either way.

use conftool_core::{Config, NodeName, Selector, Store};
use conftool_testkit::Etcd;

async fn store(etcd: &Etcd) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
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

fn names(ns: &[&str]) -> Vec<NodeName> {
    ns.iter().map(|n| n.parse().expect("name")).collect()
}

/// Node keys of the found selection, as `dc/cluster/service/node`.
async fn found(s: &Store, ns: &[&str], service: Option<&str>) -> Option<Vec<String>> {
    let service = service.map(|x| x.parse().expect("service"));
    let (sel, selection) = s
        .find_node(&names(ns), service.as_ref())
        .await
        .expect("find")?;
    // Always the same as the full selection by the returned selector.
    let full = s.select(&sel).await.expect("select");
    assert_eq!(selection.objects, full.objects, "{sel}");
    Some(
        selection
            .objects
            .iter()
            .map(|o| o.key.to_string())
            .collect(),
    )
}

#[tokio::test]
async fn finds_a_nodes_objects_by_point_reads_and_falls_back() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let v = r#"{"pooled":"yes","weight":1}"#;
    for (key, value) in [
        (
            "/v1/services/appservers/apache",
            r#"{"port":80,"default_values":{"pooled":"yes","weight":1}}"#,
        ),
        (
            "/v1/services/appservers/nginx",
            r#"{"port":443,"default_values":{"pooled":"yes","weight":1}}"#,
        ),
        ("/v1/pools/eqiad/appservers/apache/mw1018", v),
        ("/v1/pools/eqiad/appservers/nginx/mw1018", v),
        ("/v1/pools/codfw/appservers/apache/mw1018", v),
        ("/v1/pools/eqiad/appservers/apache/mw1019", v),
        // A service without a definition (as from the Python layout): only a full read
        // finds it.
        ("/v1/pools/eqiad/legacy/thing/old1", v),
    ] {
        put(&etcd, key, value).await;
    }
    // No sync record yet: the full read answers.
    assert_eq!(
        found(&s, &["mw1018"], None).await.unwrap(),
        [
            "codfw/appservers/apache/mw1018",
            "eqiad/appservers/apache/mw1018",
            "eqiad/appservers/nginx/mw1018"
        ]
    );
    // With the record, the same answer from point reads; a service narrows it; the first
    // name that has objects wins.
    put(
        &etcd,
        "/v1/meta/sync",
        r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#,
    )
    .await;
    assert_eq!(found(&s, &["mw1018"], None).await.unwrap().len(), 3);
    assert_eq!(
        found(&s, &["mw1018.eqiad.wmnet", "mw1018"], Some("nginx"))
            .await
            .unwrap(),
        ["eqiad/appservers/nginx/mw1018"]
    );
    assert_eq!(
        found(&s, &["old1"], None).await.unwrap(),
        ["eqiad/legacy/thing/old1"]
    );
    assert_eq!(found(&s, &["nosuch"], None).await, None);
    // A name that only looks like a regex is matched literally.
    assert_eq!(found(&s, &["mw101."], None).await, None);

    // Proof that the answer came from point reads: an object of mw1018 under a service
    // that has no definition is invisible to them (the full read would see it). Sync never
    // leaves such objects beside a record; this is the documented limit of the fast path.
    put(&etcd, "/v1/pools/eqiad/legacy/thing/mw1018", v).await;
    let sel: Selector = "name=mw1018".parse().unwrap();
    assert_eq!(s.select(&sel).await.unwrap().objects.len(), 4);
    let (_, points) = s
        .find_node(&names(&["mw1018"]), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(points.objects.len(), 3);
}
