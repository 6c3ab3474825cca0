//! TLS for `https` URLs: rustls on ring (the stack the lattice's NATS client already
//! brings), trusting the system's CA certificates and, where a link gives them in
//! `tls_roots_pem`, those CAs as well (a private CA). Each trust set's client configuration
//! is built once and kept: the system's roots are read from disk once per process.

use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Most link trust sets whose configurations are kept; past it the cache starts again (a
/// host has a few distinct private CAs, not thousands).
const MAX_KEPT: usize = 64;
/// The most certificates one `tls_roots_pem` may hold.
pub const MAX_ROOTS: usize = 100;

/// The client configurations, by the PEM a link added to the system's roots.
#[derive(Debug, Default)]
pub struct Trust {
    system: OnceLock<Result<Arc<ClientConfig>, String>>,
    with_link_roots: Mutex<HashMap<String, Arc<ClientConfig>>>,
}

impl Trust {
    /// The configuration for a link that added `link_roots` (PEM) to the system's roots.
    pub fn config(&self, link_roots: Option<&str>) -> Result<Arc<ClientConfig>, String> {
        let Some(pem) = link_roots else {
            return self
                .system
                .get_or_init(|| build(Vec::new()).map(Arc::new))
                .clone();
        };
        let mut kept = self
            .with_link_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = kept.get(pem) {
            return Ok(config.clone());
        }
        let config = Arc::new(build(parse_roots(pem)?)?);
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(pem.to_string(), config.clone());
        Ok(config)
    }
}

/// The certificates of a `tls_roots_pem` link value: at least one, at most [`MAX_ROOTS`],
/// each parsed.
pub fn parse_roots(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut roots = Vec::new();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate
            .map_err(|e| format!("link value tls_roots_pem is not PEM certificates: {e}"))?;
        if roots.len() == MAX_ROOTS {
            return Err(format!(
                "link value tls_roots_pem holds over {MAX_ROOTS} certificates; give only the \
                 CAs the actor's servers use"
            ));
        }
        roots.push(certificate);
    }
    if roots.is_empty() {
        return Err(
            "link value tls_roots_pem holds no certificate (-----BEGIN CERTIFICATE----- ...)"
                .to_string(),
        );
    }
    // Checked now, so a certificate that cannot be a root is refused when the link is put.
    let mut store = rustls::RootCertStore::empty();
    for root in &roots {
        store.add(root.clone()).map_err(|e| {
            format!("link value tls_roots_pem has a certificate that cannot be a root: {e}")
        })?;
    }
    Ok(roots)
}

/// A client configuration trusting the system's roots and `extra`, speaking HTTP/1.1.
fn build(extra: Vec<CertificateDer<'static>>) -> Result<ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: the handshake's error then says the
    // server is not trusted, and what to do.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    roots.add_parsable_certificates(extra);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The name the server's certificate must carry for `host`.
pub fn server_name(host: url::Host<&str>) -> Result<ServerName<'static>, String> {
    match host {
        url::Host::Domain(domain) => ServerName::try_from(domain.to_string())
            .map_err(|e| format!("{domain} cannot be checked against a certificate: {e}")),
        url::Host::Ipv4(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(ip).into())),
        url::Host::Ipv6(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(ip).into())),
    }
}
