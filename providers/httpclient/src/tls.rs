//! TLS for `https` URLs: rustls on ring (the stack the lattice's NATS client already
//! brings), trusting the system's CA certificates and, where a link gives them in
//! `tls_roots_pem`, those CAs as well (a private CA). Each trust set's configuration is
//! built once, with its client ([`crate::pool`]).

use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::sync::Arc;

/// The most certificates one `tls_roots_pem` may hold.
pub const MAX_ROOTS: usize = 100;

/// A client configuration trusting the system's roots and, if a link gave them, the CAs
/// in `link_roots` (PEM), speaking HTTP/1.1.
pub fn config(link_roots: Option<&str>) -> Result<ClientConfig, String> {
    let extra = match link_roots {
        Some(pem) => parse_roots(pem)?,
        None => Vec::new(),
    };
    build(extra)
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

/// The name the server's certificate must carry for `host` (a name, an IPv4 address, or an
/// IPv6 address with or without its brackets).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(bare.to_string())
            .map_err(|e| format!("{host} cannot be checked against a certificate: {e}")),
    }
}
