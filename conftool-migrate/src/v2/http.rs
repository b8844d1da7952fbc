//! One recursive read of one v2 endpoint over HTTP/1.1 (and TLS): connect, send the GET,
//! read the answer within the cap on bytes, and parse it within the cap on keys.

use std::path::Path;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;

use conftool_core::http1::{read_body, send, AbortOnDrop};

use super::parse::{parse, ParseError};
use super::{Error, V2Read, V2Source, SYSTEM_CA_BUNDLE};

/// How much of an error answer is read (its start is quoted in the error).
const ERROR_BODY_BYTES: u64 = 4096;

/// Connect to `url` (`uri`), send the GET, read and parse the answer.
pub(super) async fn fetch(
    source: &V2Source,
    url: &str,
    uri: &Uri,
    prefix: &str,
    auth: Option<&str>,
    tls: Option<&tokio_rustls::TlsConnector>,
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
    let (resp, driver) = match tls {
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
    .map_err(|e| connect(e.to_string()))?;
    // The connection is dropped with the driver, however this ends (a refusal included: the
    // rest of an over-large answer is never read).
    let _driver = AbortOnDrop(driver);
    let status = resp.status();
    let index = resp
        .headers()
        .get("x-etcd-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if status == StatusCode::NOT_FOUND {
        return Err(Error::NotFound {
            url: url.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if !status.is_success() {
        let (body, _) = read_body(resp, ERROR_BODY_BYTES)
            .await
            .map_err(|e| connect(format!("reading the answer: {e}")))?;
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(Error::Status {
            url: url.to_string(),
            status: status.as_u16(),
            body: text.trim().to_string(),
        });
    }
    let too_large = |declared| Error::TooLarge {
        url: url.to_string(),
        limit: source.max_bytes,
        declared,
    };
    // A stated length over the cap is refused before a byte of the body is read.
    let declared = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > source.max_bytes) {
        return Err(too_large(Some(len)));
    }
    let (body, complete) = read_body(resp, source.max_bytes)
        .await
        .map_err(|e| connect(format!("reading the answer: {e}")))?;
    if !complete {
        return Err(too_large(None));
    }
    let mut read = parse(&body, index, prefix, source.max_keys).map_err(|e| match e {
        ParseError::TooManyKeys { limit } => Error::TooManyKeys {
            url: url.to_string(),
            prefix: prefix.to_string(),
            limit,
        },
        ParseError::Duplicate { key } => Error::Duplicate {
            url: url.to_string(),
            key,
        },
        ParseError::Invalid(reason) => Error::Protocol {
            url: url.to_string(),
            reason,
        },
    })?;
    read.endpoint = url.to_string();
    Ok(read)
}

/// The TLS client of `source`: its CA (the system bundle by default) and client identity.
pub(super) fn tls_connector(source: &V2Source) -> Result<tokio_rustls::TlsConnector, Error> {
    let path = source
        .ca
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(SYSTEM_CA_BUNDLE));
    let file_err = |reason: String| Error::File {
        path: path.clone(),
        reason,
    };
    let pem = conftool_trust::read_bounded(&path, 16 << 20, "CA file")
        .map_err(|e| file_err(format!("cannot read CA file: {e}")))?;
    let roots = conftool_core::http1::roots(&pem).map_err(|e| file_err(e.to_string()))?;
    let builder =
        conftool_core::http1::client_builder(roots).map_err(|e| Error::BadInput(e.to_string()))?;
    let config = match (&source.cert, &source.key) {
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
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
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
        conftool_trust::read_bounded(p, 1 << 20, what).map_err(|e| Error::File {
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
