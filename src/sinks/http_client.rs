//! The webhook's HTTP client: HTTP/1.1 through hyper, over TCP or TLS
//! (rustls; the system's roots or a configured CA file), one connection
//! kept and reused while the receiver keeps it open, redirects refused (a
//! webhook that moved is a configuration to fix, not a place to follow
//! alerts to).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use super::webhook::Endpoint;

/// What one try may take once the daemon is stopping.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// The trust for `https://`: the CA certificates in a PEM file, or the
/// system's.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(p) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", p.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no PEM certificate in it", p.display()));
            }
            for c in certs {
                roots.add(c).map_err(|e| format!("{}: {e}", p.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err("no system CA certificates (install ca-certificates, or set alerts.webhook.ca_file)".into());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A client for one endpoint.
pub struct Client {
    rt: tokio::runtime::Runtime,
    endpoint: Endpoint,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl Client {
    pub fn new(endpoint: Endpoint, ca_file: Option<&Path>) -> Result<Client, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the webhook's runtime: {e}"))?;
        let tls = if endpoint.tls {
            let cfg = tls_config(ca_file)?;
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|e| format!("{}: {e}", endpoint.host))?;
            Some((TlsConnector::from(Arc::new(cfg)), name))
        } else {
            None
        };
        Ok(Client {
            rt,
            endpoint,
            tls,
            conn: None,
        })
    }

    /// POSTs `body` as JSON; `Ok` for a 2xx answer. Waits at most
    /// `timeout`, cut to [`STOP_TIMEOUT`] once `stopping` is set.
    pub fn post(
        &mut self,
        body: &[u8],
        timeout: Duration,
        stopping: &AtomicBool,
    ) -> Result<(), String> {
        let started = Instant::now();
        let body = Bytes::copy_from_slice(body);
        let Client {
            rt,
            endpoint,
            tls,
            conn,
        } = self;
        let work = async {
            // A kept connection the receiver closed is found out here:
            // one fresh connection is tried then.
            for fresh in [false, true] {
                let mut sender = match conn.take() {
                    Some(s) if !fresh && !s.is_closed() => s,
                    _ => connect(endpoint, tls.as_ref()).await?,
                };
                if sender.ready().await.is_err() {
                    if fresh {
                        return Err("the connection closed before the request".to_string());
                    }
                    continue;
                }
                let req = Request::post(&endpoint.path)
                    .header(header::HOST, endpoint.host_header())
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(
                        header::USER_AGENT,
                        concat!("trafficalerted/", env!("CARGO_PKG_VERSION")),
                    )
                    .body(Full::new(body.clone()))
                    .map_err(|e| e.to_string())?;
                let resp = match sender.send_request(req).await {
                    Ok(r) => r,
                    // A kept connection the receiver had closed.
                    Err(_) if !fresh => continue,
                    Err(e) => return Err(format!("no answer: {e}")),
                };
                let status = resp.status();
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // The answer is read (at most 64 KiB) so the connection can
                // carry the next request.
                let mut b = resp.into_body();
                let mut read = 0usize;
                while let Some(frame) = b.frame().await {
                    match frame {
                        Ok(f) => read += f.data_ref().map_or(0, |d| d.len()),
                        Err(_) => break,
                    }
                    if read > 64 << 10 {
                        break;
                    }
                }
                if read <= 64 << 10 {
                    *conn = Some(sender);
                }
                return answer(status, location);
            }
            Err("no connection".to_string())
        };
        rt.block_on(async {
            tokio::select! {
                r = work => r,
                _ = tokio::time::sleep(timeout) => Err(format!("no answer within {timeout:?}")),
                _ = stop_watch(stopping, started) => Err(format!("no answer within {STOP_TIMEOUT:?} of the stop")),
            }
        })
    }
}

fn answer(status: StatusCode, location: Option<String>) -> Result<(), String> {
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        Err(format!(
            "HTTP {} redirect to {} refused: point alerts.webhook.url there",
            status.as_u16(),
            location.as_deref().unwrap_or("(no Location)")
        ))
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Ends once the daemon has been stopping for [`STOP_TIMEOUT`].
async fn stop_watch(stopping: &AtomicBool, started: Instant) {
    loop {
        if stopping.load(Ordering::Relaxed) && started.elapsed() >= STOP_TIMEOUT {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(
    e: &Endpoint,
    tls: Option<&(TlsConnector, ServerName<'static>)>,
) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect((e.host.as_str(), e.port))
        .await
        .map_err(|err| format!("connect {}: {err}", e.host_header()))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        Some((connector, name)) => {
            let stream = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|err| format!("TLS with {}: {err}", e.host_header()))?;
            handshake(TokioIo::new(stream)).await
        }
        None => handshake(TokioIo::new(tcp)).await,
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
