//! TLS with rustls (ring provider): the listener's server configuration, reloadable on `SIGHUP`,
//! and the client configurations of `tb-cli` and the peer poller. Certificates, keys and CA
//! bundles are PEM files; every error names the file and the setting it came from.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tb_config::RpcTlsConfig;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (`what` names the setting in errors).
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{what} {}: no PEM certificate in the file",
        path.display()
    );
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path, what: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
}

/// A root store of every certificate of a PEM CA bundle.
fn read_roots(path: &Path, what: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, what)? {
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// Builds the listener's configuration from `[rpc.tls]` (which must have `cert` and `key`).
fn server_config(tls: &RpcTlsConfig) -> Result<Arc<ServerConfig>> {
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        anyhow::bail!("rpc.tls.cert and rpc.tls.key must both be set to serve TLS");
    };
    let chain = read_certs(cert, "rpc.tls.cert")?;
    let key_der = read_key(key, "rpc.tls.key")?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(read_roots(ca, "rpc.tls.client_ca")?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            let verifier = if tls.client_cert_optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| anyhow::anyhow!("rpc.tls.client_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key_der).map_err(|e| {
        anyhow::anyhow!(
            "rpc.tls.cert {} and rpc.tls.key {} do not make a usable pair: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Arc::new(config))
}

/// The listener's TLS: the configuration being served, swapped on `SIGHUP`, and the handshake
/// time limit.
#[derive(Debug)]
pub struct ServerTls {
    /// The configuration new connections get; a reload replaces it, connections already open
    /// keep the one they started with.
    config: RwLock<Arc<ServerConfig>>,
    /// `rpc.tls.handshake_timeout_ms`: a handshake not done by then closes the connection.
    pub handshake_timeout: Duration,
}

impl ServerTls {
    /// Reads the files of `[rpc.tls]`; `None` when TLS is off. An unreadable or malformed file
    /// is an error naming it.
    pub fn load(tls: &RpcTlsConfig) -> Result<Option<Arc<Self>>> {
        if !tls.enabled() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self {
            config: RwLock::new(server_config(tls)?),
            handshake_timeout: Duration::from_millis(tls.handshake_timeout_ms),
        })))
    }

    /// Reads the files again and serves them to new connections; on error the configuration
    /// being served is kept.
    pub fn reload(&self, tls: &RpcTlsConfig) -> Result<()> {
        let fresh = server_config(tls)?;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// An acceptor with the configuration being served now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }
}

/// Where a client's TLS settings come from: CA bundle, client certificate and key, and a name
/// the server's certificate must carry instead of the URL's host.
#[derive(Debug, Clone, Default)]
pub struct ClientTls<'a> {
    /// PEM CA bundle to verify the server with; `None` uses the system's roots.
    pub ca: Option<&'a Path>,
    /// PEM client certificate chain and private key, for servers that require mutual TLS.
    pub identity: Option<(&'a Path, &'a Path)>,
    /// The name to verify the server's certificate against, instead of the URL's host.
    pub server_name: Option<&'a str>,
    /// What the settings are called in errors (`--tls-ca`, `peers.tls."https://…"`, …).
    pub origin: &'a str,
}

impl ClientTls<'_> {
    /// The rustls client configuration these settings describe.
    pub fn config(&self) -> Result<ClientConfig> {
        let origin = self.origin;
        let roots = match self.ca {
            Some(ca) => read_roots(ca, &format!("{origin} CA"))?,
            None => {
                let mut roots = RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                roots
            }
        };
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| anyhow::anyhow!("{origin}: no usable CA certificate: {e}"))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("rustls protocol versions")?;
        let builder = match self.server_name {
            None => builder.with_webpki_verifier(verifier),
            Some(name) => {
                let name = ServerName::try_from(name.to_owned())
                    .map_err(|e| anyhow::anyhow!("{origin}: server name {name:?}: {e}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Pinned {
                        inner: verifier,
                        name,
                    }))
            }
        };
        let config = match self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = read_certs(cert, &format!("{origin} client certificate"))?;
                let key_der = read_key(key, &format!("{origin} client key"))?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    anyhow::anyhow!(
                        "{origin}: client certificate {} and key {} do not make a usable pair: {e}",
                        cert.display(),
                        key.display()
                    )
                })?
            }
        };
        Ok(config)
    }
}

/// Verifies the server's certificate chain as usual, but against a fixed name instead of the
/// host the client connected to (a peer reached by address whose certificate names a host).
#[derive(Debug)]
struct Pinned {
    /// The usual chain and name check.
    inner: Arc<WebPkiServerVerifier>,
    /// The name the certificate must carry.
    name: ServerName<'static>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
