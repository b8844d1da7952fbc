//! The small HTTP/1.1 client the readers over HTTP share (the load-balancer checks of
//! [`mod@crate::verify`], the v2 reader of the `conftool-migrate` crate): one request on a fresh
//! connection, its body read only up to a cap, the connection dropped with its driver
//! however the read ends (an over-large answer is never read to its end).

use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;

/// Where Debian keeps the system's CA bundle (the default trust for `https://`).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a request or a TLS setup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The connection, the request or the body failed.
    #[error("{0}")]
    Transport(#[from] hyper::Error),
    /// A CA file holds something that is not a PEM certificate.
    #[error("not a PEM certificate: {0}")]
    Pem(rustls_pki_types::pem::Error),
    /// A certificate that cannot be a trust root.
    #[error("unusable CA certificate: {0}")]
    Certificate(rustls::Error),
    /// A CA file without any certificate.
    #[error("no certificate in the CA file")]
    NoCertificate,
    /// The TLS library refused the configuration.
    #[error("TLS setup: {0}")]
    Tls(rustls::Error),
}

/// Aborts the connection's task when dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Send one request on a fresh HTTP/1.1 connection; the answer's head, and the task that
/// drives the connection (the body is read through it).
pub async fn send<S>(
    io: TokioIo<S>,
    req: Request<Empty<Bytes>>,
) -> Result<(Response<Incoming>, tokio::task::JoinHandle<()>), HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(async move {
        // Its errors reach the request or the body, where they are reported.
        let _ = conn.await;
    });
    match sender.send_request(req).await {
        Ok(resp) => Ok((resp, driver)),
        Err(e) => {
            driver.abort();
            Err(e.into())
        }
    }
}

/// Read the body, at most `limit` bytes: stops (without reading the rest) at the frame that
/// passes it. Returns what was read and whether that is the whole body.
pub async fn read_body(resp: Response<Incoming>, limit: u64) -> Result<(Vec<u8>, bool), HttpError> {
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() as u64 + data.len() as u64 > limit {
            let room = usize::try_from(limit).unwrap_or(usize::MAX) - buf.len();
            buf.extend_from_slice(&data[..room.min(data.len())]);
            return Ok((buf, false));
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf, true))
}

/// The CA certificates of a PEM bundle, or why they cannot be used.
pub fn roots(pem: &[u8]) -> Result<rustls::RootCertStore, HttpError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(HttpError::Pem)?;
        roots.add(cert).map_err(HttpError::Certificate)?;
    }
    if roots.is_empty() {
        return Err(HttpError::NoCertificate);
    }
    Ok(roots)
}

/// A TLS client configuration builder trusting `roots` (ring, TLS 1.2 and 1.3).
pub fn client_builder(
    roots: rustls::RootCertStore,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, HttpError>
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(HttpError::Tls)?
        .with_root_certificates(roots))
}
