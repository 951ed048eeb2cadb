//! TLS for the gRPC listener: the server's certificate and key, and with
//! mutual TLS the CA that client certificates must chain to.
//!
//! The files are read into a rustls configuration held in an [`ArcSwap`]:
//! each connection's handshake takes the configuration current when it
//! starts, so a SIGHUP that re-reads the files rotates certificates without a
//! restart and without touching connections already open.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig, crypto::CryptoProvider, server::WebPkiClientVerifier,
    },
    server::TlsStream,
};
use tokio_stream::{Stream, StreamExt};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Longest a client may take over its TLS handshake; a connection that has not
/// finished it by then is closed, so silent sockets cannot pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most handshakes waiting to be served at once; beyond it, accepting pauses.
const PENDING_HANDSHAKES: usize = 128;

/// Where the TLS material is read from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM), leaf first.
    pub certificate: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// With mutual TLS, the CA certificates (PEM) client certificates must
    /// chain to; without it, clients need no certificate.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS material was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the combination (e.g. a key that does not match the
    /// certificate).
    #[error("the TLS configuration is refused: {0}")]
    Config(String),
}

/// The TLS configuration in force, swapped whole on reload.
#[derive(Clone)]
pub struct ServerTls {
    files: TlsFiles,
    config: Arc<ArcSwap<ServerConfig>>,
}

impl ServerTls {
    /// Reads the files once; the server does not start if they are refused.
    pub fn load(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let config = Arc::new(ArcSwap::from_pointee(server_config(&files)?));
        Ok(ServerTls { files, config })
    }

    /// Re-reads the files; on any problem the running configuration stays.
    /// Blocking: the files are read.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.config.store(Arc::new(server_config(&self.files)?));
        Ok(())
    }

    /// TLS connections from plain ones: each handshake runs on a task of its
    /// own under [`HANDSHAKE_TIMEOUT`], so a slow or silent client delays
    /// nobody else; failed handshakes are logged and dropped.
    pub fn accept<S, IO, E>(self, plain: S) -> impl Stream<Item = Result<TlsStream<IO>, E>>
    where
        S: Stream<Item = Result<IO, E>> + Send + 'static,
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        E: Send + 'static,
    {
        let (sender, receiver) = tokio::sync::mpsc::channel(PENDING_HANDSHAKES);
        tokio::spawn(async move {
            let mut plain = std::pin::pin!(plain);
            while let Some(connection) = plain.next().await {
                let connection = match connection {
                    Ok(connection) => connection,
                    Err(error) => {
                        // The listener's own errors pass on, as without TLS.
                        if sender.send(Err(error)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                let Ok(slot) = sender.clone().reserve_owned().await else {
                    return;
                };
                let acceptor = TlsAcceptor::from(self.config.load_full());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(connection)).await
                    {
                        Ok(Ok(tls)) => {
                            slot.send(Ok(tls));
                        }
                        Ok(Err(error)) => tracing::info!(%error, "TLS handshake refused"),
                        Err(_) => tracing::info!(
                            timeout_ms = HANDSHAKE_TIMEOUT.as_millis() as u64,
                            "TLS handshake not finished in time; connection closed"
                        ),
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(receiver)
    }
}

/// The names a client certificate goes by, for finding its caller: every DNS
/// subject alternative name, then the subject's common names.
pub fn certificate_names(certificate: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = X509Certificate::from_der(certificate.as_ref()) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(alternatives)) = parsed.subject_alternative_name() {
        for name in &alternatives.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push((*dns).to_string());
            }
        }
    }
    for common_name in parsed.subject().iter_common_name() {
        if let Ok(text) = common_name.as_str() {
            names.push(text.to_string());
        }
    }
    names
}

/// The rustls configuration of `files`; the certificate's expiry goes to the
/// metrics as it is read.
fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let chain = read_certificates(&files.certificate)?;
    let expiry = X509Certificate::from_der(chain[0].as_ref())
        .map(|(_, leaf)| leaf.validity().not_after.timestamp());
    let key = PrivateKeyDer::from_pem_slice(&read_small_file(&files.key)?).map_err(|error| {
        TlsError::File {
            path: files.key.clone(),
            reason: format!("no usable private key: {error}"),
        }
    })?;
    let provider = Arc::new(ring_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(path)? {
                roots.add(certificate).map_err(|error| TlsError::File {
                    path: path.clone(),
                    reason: format!("not a usable CA certificate: {error}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| TlsError::Config(error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error: rustls::Error| TlsError::Config(error.to_string()))?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    if let Ok(expiry) = expiry {
        crate::metrics::certificate_expires(expiry);
    }
    Ok(config)
}

/// rustls over *ring*, the backend tonic's `tls-ring` builds on; rustls now
/// marks it deprecated because *ring* lacks post-quantum key exchange, which
/// only the aws-lc-rs backend (a large C build) offers.
#[allow(deprecated)]
pub fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Largest certificate, key or CA file read; a PEM chain is a few KiB.
pub const MAX_TLS_FILE_BYTES: u64 = 1024 * 1024;

/// The bytes of a TLS file, read only if it is a regular file under
/// [`MAX_TLS_FILE_BYTES`].
fn read_small_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::source_files::read_regular_file(path, MAX_TLS_FILE_BYTES)
        .map(String::into_bytes)
        .map_err(|reason| TlsError::File {
            path: path.to_path_buf(),
            reason,
        })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let refused = |reason: String| TlsError::File {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read_small_file(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| refused(format!("not a PEM certificate: {error}")))?;
    if chain.is_empty() {
        return Err(refused("holds no PEM certificate".to_string()));
    }
    Ok(chain)
}
