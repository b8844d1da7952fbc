//! Reading a Python conftool deployment's keyspace over etcd's **v2** HTTP API, for the
//! migration to v3 ([`crate::migrate`]).
//!
//! The Python tool and its consumers speak v2 (`/v2/keys/conftool/v1/pools/...` with JSON
//! string values); etcd 3.6 drops v2. This module does one thing: one recursive, quorum read
//! of a prefix (`GET /v2/keys<prefix>?recursive=true&sorted=true&quorum=true`), flattened into
//! [`V2Entry`]s in key order. It never writes to v2.
//!
//! What is supported, honestly: `http://` and `https://` URLs (TLS with rustls: the server
//! certificate checked against a CA file, the system bundle by default; a client certificate
//! if the source asks for one), HTTP basic auth (etcd v2 auth: a user and a password file; over plain
//! `http://` only when explicitly allowed), one endpoint
//! (the read is one request; there is no failover), a timeout for the whole read, and a
//! bound on the response size.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio_rustls::rustls;

/// Where Debian keeps the system's CA bundle (the default trust for `https://` sources).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The largest v2 response read (a fleet of 100,000 objects is about 20 MB of JSON).
pub const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// What can go wrong reading v2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL, a prefix or an option is unusable (bad input: nothing was read).
    #[error("{0}")]
    BadInput(String),
    /// A file named by an option (CA bundle, password file) cannot be used.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("etcd v2 at {url}: {reason}")]
    Connect {
        /// The source URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("etcd v2 at {url}: no answer within {timeout:?}")]
    Timeout {
        /// The source URL.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The prefix does not exist in v2 (a wrong `--prefix`, or the wrong server).
    #[error("etcd v2 at {url} has no key {prefix}")]
    NotFound {
        /// The source URL.
        url: String,
        /// The prefix asked for.
        prefix: String,
    },
    /// The server answered with an error status (401: wrong or missing credentials).
    #[error("etcd v2 at {url} answered {status}: {body}")]
    Status {
        /// The source URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer is not the JSON of a v2 read.
    #[error("etcd v2 at {url}: unexpected answer: {reason}")]
    Protocol {
        /// The source URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Whether this is bad input (a usage error: exit code 2) rather than a runtime failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::BadInput(_) | Error::File { .. } | Error::NotFound { .. }
        )
    }
}

/// How to reach a v2 source.
#[derive(Debug, Clone)]
pub struct V2Source {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// CA bundle for `https://` (default: [`SYSTEM_CA_BUNDLE`]).
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for an `https://` source that asks for one.
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key: Option<PathBuf>,
    /// Basic-auth user (etcd v2 auth).
    pub username: Option<String>,
    /// File holding the user's password (its first line).
    pub password_file: Option<PathBuf>,
    /// For the whole read: connect, request and response.
    pub timeout: Duration,
    /// Send the password over plain `http://` anyway (refused otherwise, as the v3
    /// configuration's `allow_insecure_auth` does).
    pub allow_insecure_auth: bool,
}

/// One node of the v2 tree, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Entry {
    /// The full key, e.g. `/conftool/v1/pools/eqiad/appservers/apache/mw1018`.
    pub key: String,
    /// What it is.
    pub kind: V2Kind,
}

/// What a v2 node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Kind {
    /// A value (v2 values are strings), with the index of its last change.
    Value {
        /// The stored string, exactly.
        value: String,
        /// `modifiedIndex`.
        modified_index: u64,
    },
    /// A directory (v3 has none; its keys are listed on their own).
    Dir,
    /// A value with a TTL (a lock, a lease): ephemeral, not migrated.
    Expiring {
        /// Seconds left when read.
        ttl: i64,
    },
}

/// A recursive read of one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Read {
    /// `X-Etcd-Index` of the answer: the v2 store's index the read saw.
    pub index: u64,
    /// Every node under the prefix (the prefix's own node excluded), sorted by key.
    pub entries: Vec<V2Entry>,
}

/// Check a `--from-v2` URL: `http(s)://host[:port]`, nothing else (no path, no credentials).
pub fn parse_url(url: &str) -> Result<Uri, Error> {
    let bad = |why: &str| Error::BadInput(format!("--from-v2 {url:?}: {why}"));
    let uri: Uri = url.parse().map_err(|e| bad(&format!("not a URL ({e})")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("expected http://HOST:PORT or https://HOST:PORT")),
    }
    let Some(auth) = uri.authority() else {
        return Err(bad("no host"));
    };
    if auth.as_str().contains('@') {
        return Err(bad(
            "credentials do not belong in the URL (use --v2-username and --v2-password-file)",
        ));
    }
    if auth.host().is_empty() {
        return Err(bad("no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(
            "give only scheme, host and port (the /v2/keys path is added)",
        ));
    }
    Ok(uri)
}

/// Check a key prefix: absolute, no trailing `/` (except the root `/`), no empty segments.
pub fn check_prefix(prefix: &str) -> Result<(), Error> {
    let ok = prefix.starts_with('/')
        && (prefix == "/" || !prefix.ends_with('/'))
        && !prefix.contains("//")
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadInput(format!(
            "--prefix {prefix:?}: expected an absolute key path like /conftool \
             (letters, digits, '.', '_', '-'; no trailing '/')"
        )))
    }
}

impl V2Source {
    /// Read everything under `prefix` with one recursive quorum read.
    pub async fn read(&self, prefix: &str) -> Result<V2Read, Error> {
        check_prefix(prefix)?;
        let uri = parse_url(&self.url)?;
        if uri.scheme_str() == Some("http") && self.username.is_some() && !self.allow_insecure_auth
        {
            return Err(Error::BadInput(format!(
                "{}: a password over plain http:// travels in clear; use https:// or pass \
                 --v2-allow-insecure-auth",
                self.url
            )));
        }
        let auth = self.auth_header()?;
        let tls = match uri.scheme_str() {
            Some("https") => Some(self.tls_connector()?),
            _ => None,
        };
        let read = fetch(&self.url, &uri, prefix, auth, tls);
        match tokio::time::timeout(self.timeout, read).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                url: self.url.clone(),
                timeout: self.timeout,
            }),
        }
    }

    fn auth_header(&self) -> Result<Option<String>, Error> {
        use base64::Engine as _;
        match (&self.username, &self.password_file) {
            (None, None) => Ok(None),
            (Some(user), Some(file)) => {
                let password = read_password(file)?;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Ok(Some(format!("Basic {token}")))
            }
            _ => Err(Error::BadInput(
                "--v2-username and --v2-password-file go together".into(),
            )),
        }
    }

    fn tls_connector(&self) -> Result<tokio_rustls::TlsConnector, Error> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::CertificateDer;
        let path = self
            .ca
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        let file_err = |reason: String| Error::File {
            path: path.clone(),
            reason,
        };
        let pem = crate::trust::read_bounded(&path, 16 << 20, "CA file")
            .map_err(|e| file_err(format!("cannot read CA file: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| file_err(format!("not a PEM certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| file_err(format!("unusable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(file_err("no certificate in the CA file".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::BadInput(format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let (chain, key) = client_identity(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::File {
                        path: cert.clone(),
                        reason: format!("unusable client certificate or key: {e}"),
                    })?
            }
            _ => {
                return Err(Error::BadInput(
                    "a client certificate needs both --v2-cert and --v2-key".into(),
                ))
            }
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

/// A client certificate chain and its key, from PEM files.
fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<
    (
        Vec<rustls_pki_types::CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    ),
    Error,
> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &Path, what: &'static str| {
        crate::trust::read_bounded(p, 1 << 20, what).map_err(|e| Error::File {
            path: p.to_path_buf(),
            reason: format!("cannot read {what}: {e}"),
        })
    };
    let bad = |p: &Path, reason: String| Error::File {
        path: p.to_path_buf(),
        reason,
    };
    let pem = read(cert, "client certificate")?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, format!("not a PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(bad(cert, "no certificate in the file".into()));
    }
    let pem = read(key, "client key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| bad(key, format!("not a PEM private key: {e}")))?;
    Ok((chain, key_der))
}

/// The first line of a password file.
fn read_password(path: &Path) -> Result<String, Error> {
    let fail = |reason: String| Error::File {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = crate::trust::read_bounded(path, 64 << 10, "password file")
        .map_err(|e| fail(format!("cannot read password file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not valid UTF-8".into()))?;
    match text.lines().next() {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(fail("empty password file".into())),
    }
}

/// Connect, send the GET, read and parse the answer.
async fn fetch(
    url: &str,
    uri: &Uri,
    prefix: &str,
    auth: Option<String>,
    tls: Option<tokio_rustls::TlsConnector>,
) -> Result<V2Read, Error> {
    let connect = |reason: String| Error::Connect {
        url: url.to_string(),
        reason,
    };
    let host = uri.host().unwrap_or_default().to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    // An IPv6 literal comes bracketed in the URI; the socket and TLS want it bare.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| connect(e.to_string()))?;
    let path = format!("/v2/keys{prefix}?recursive=true&sorted=true&quorum=true");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host.as_str());
    let mut req = Request::get(path.as_str()).header(hyper::header::HOST, authority);
    if let Some(a) = auth {
        req = req.header(hyper::header::AUTHORIZATION, a);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| connect(format!("cannot build request: {e}")))?;
    let resp = match tls {
        None => send(TokioIo::new(tcp), req).await,
        Some(tls) => {
            let name = rustls_pki_types::ServerName::try_from(bare)
                .map_err(|e| connect(format!("bad server name: {e}")))?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| connect(format!("TLS: {e}")))?;
            send(TokioIo::new(stream), req).await
        }
    }
    .map_err(connect)?;
    let (status, index, body) = resp;
    if status == StatusCode::NOT_FOUND {
        return Err(Error::NotFound {
            url: url.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(Error::Status {
            url: url.to_string(),
            status: status.as_u16(),
            body: text.trim().to_string(),
        });
    }
    parse(&body, index, prefix).map_err(|reason| Error::Protocol {
        url: url.to_string(),
        reason,
    })
}

/// Send one request on a fresh HTTP/1.1 connection and read the whole (bounded) answer.
async fn send<S>(
    io: TokioIo<S>,
    req: Request<Empty<Bytes>>,
) -> Result<(StatusCode, u64, Bytes), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let index = resp
        .headers()
        .get("x-etcd-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    driver.abort();
    Ok((status, index, body))
}

/// A v2 node as the API returns it (fields not listed are ignored).
#[derive(Debug, Deserialize)]
struct RawNode {
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    dir: bool,
    #[serde(default)]
    nodes: Vec<RawNode>,
    ttl: Option<i64>,
    #[serde(rename = "modifiedIndex", default)]
    modified_index: u64,
}

#[derive(Debug, Deserialize)]
struct RawAnswer {
    node: RawNode,
}

/// Parse a v2 `GET ...?recursive=true` answer into entries sorted by key. Pure.
pub fn parse(body: &[u8], index: u64, prefix: &str) -> Result<V2Read, String> {
    let answer: RawAnswer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    let root = answer.node;
    if !root.dir {
        return Err(format!("{prefix} is a value, not a directory of keys"));
    }
    for n in root.nodes {
        flatten(n, &mut entries)?;
    }
    let under = format!("{}/", prefix.trim_end_matches('/'));
    if let Some(e) = entries.iter().find(|e| !e.key.starts_with(&under)) {
        return Err(format!("key {} is not under {prefix}", e.key));
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(V2Read { index, entries })
}

fn flatten(n: RawNode, out: &mut Vec<V2Entry>) -> Result<(), String> {
    let key = n.key.ok_or("a node without a key")?;
    if n.dir {
        out.push(V2Entry {
            key,
            kind: V2Kind::Dir,
        });
        for c in n.nodes {
            flatten(c, out)?;
        }
        return Ok(());
    }
    let kind = match (n.ttl, n.value) {
        (Some(ttl), _) => V2Kind::Expiring { ttl },
        (None, Some(value)) => V2Kind::Value {
            value,
            modified_index: n.modified_index,
        },
        (None, None) => return Err(format!("{key}: a value node without a value")),
    };
    out.push(V2Entry { key, kind });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_scheme_host_and_port_only() {
        assert!(parse_url("http://127.0.0.1:2379").is_ok());
        assert!(parse_url("https://etcd1.example:2379/").is_ok());
        for bad in [
            "127.0.0.1:2379",
            "ftp://h:1",
            "http://u:p@h:1",
            "http://h:1/v2/keys",
            "http://h:1?x=1",
            "",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.is_bad_input(), "{bad}: {e}");
        }
    }

    #[test]
    fn prefixes_are_absolute_paths() {
        for ok in ["/conftool", "/", "/a/b-c_d.e"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["conftool", "/conftool/", "//x", "/a b", "/a?b", ""] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tree_is_flattened_in_key_order() {
        let body = br#"{"action":"get","node":{"key":"/conftool","dir":true,"nodes":[
            {"key":"/conftool/v1","dir":true,"nodes":[
                {"key":"/conftool/v1/pools","dir":true,"nodes":[
                    {"key":"/conftool/v1/pools/b","value":"{\"pooled\": \"no\"}","modifiedIndex":9},
                    {"key":"/conftool/v1/pools/a","value":"x","modifiedIndex":8}
                ]},
                {"key":"/conftool/v1/empty","dir":true},
                {"key":"/conftool/v1/lock","value":"me","ttl":30,"modifiedIndex":7}
            ]}]}}"#;
        let r = parse(body, 42, "/conftool").unwrap();
        assert_eq!(r.index, 42);
        let keys: Vec<&str> = r.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/conftool/v1",
                "/conftool/v1/empty",
                "/conftool/v1/lock",
                "/conftool/v1/pools",
                "/conftool/v1/pools/a",
                "/conftool/v1/pools/b"
            ]
        );
        assert_eq!(r.entries[2].kind, V2Kind::Expiring { ttl: 30 });
        assert_eq!(
            r.entries[5].kind,
            V2Kind::Value {
                value: "{\"pooled\": \"no\"}".into(),
                modified_index: 9
            }
        );
    }

    #[test]
    fn foreign_keys_and_garbage_are_protocol_errors() {
        let outside =
            br#"{"node":{"key":"/conftool","dir":true,"nodes":[{"key":"/other/x","value":"1"}]}}"#;
        assert!(parse(outside, 0, "/conftool")
            .unwrap_err()
            .contains("not under"));
        assert!(parse(b"<html>", 0, "/conftool").is_err());
        let no_value = br#"{"node":{"key":"/c","dir":true,"nodes":[{"key":"/c/x"}]}}"#;
        assert!(parse(no_value, 0, "/c").is_err());
    }
}
