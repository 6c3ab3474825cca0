//! `https` against a real TLS server on loopback (tokio-rustls and hyper, started here on a
//! free port, its certificate made here by a private CA): a link that trusts the CA reaches
//! it; one that does not, a certificate for another name, a bad `tls_roots_pem` and a
//! redirect down to plain HTTP are each refused, saying what to do.

use crate::httpclient::{link, request, request_on, serve, serve_counted, server};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use weft_httpclient::HttpClient;
use weft_provider_sdk::Provider;

/// A CA, and a certificate it signed for `names` with its key.
struct Pki {
    ca_pem: String,
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn made_for(names: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<String>>())
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// Starts the test's routes behind TLS with `pki`'s certificate; its address.
async fn tls_server(pki: &Pki) -> std::net::SocketAddr {
    serve(Some(acceptor(pki))).await
}

/// A TLS acceptor presenting `pki`'s certificate.
fn acceptor(pki: &Pki) -> tokio_rustls::TlsAcceptor {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn https_reaches_a_server_whose_ca_the_link_trusts_and_bounds_still_hold() {
    let pki = made_for(&["127.0.0.1"]);
    let at = tls_server(&pki).await;
    let host = at.to_string();
    let trusting = link(&[("allowed_hosts", &host), ("tls_roots_pem", &pki.ca_pem)]);
    let answer = request(
        &trusting,
        "POST",
        &format!("https://{at}/echo?a=1"),
        b"body",
    )
    .await
    .unwrap();
    assert_eq!(answer.status_code, 201);
    assert_eq!(answer.body, b"POST hello a=1 body");
    // The body bound holds over TLS: obeyed and violated.
    let bounded = link(&[
        ("allowed_hosts", &host),
        ("tls_roots_pem", &pki.ca_pem),
        ("max_body_bytes", "1048576"),
    ]);
    let err = request(&bounded, "GET", &format!("https://{at}/big"), b"")
        .await
        .unwrap_err();
    assert!(err.contains("over the link's max_body_bytes"), "{err}");
    let roomy = link(&[
        ("allowed_hosts", &host),
        ("tls_roots_pem", &pki.ca_pem),
        ("max_body_bytes", "4194304"),
    ]);
    let big = request(&roomy, "GET", &format!("https://{at}/big"), b"")
        .await
        .unwrap();
    assert_eq!(big.body.len(), 2 * 1024 * 1024);
}

#[tokio::test]
async fn a_certificate_the_link_does_not_trust_or_for_another_name_is_refused() {
    let pki = made_for(&["127.0.0.1"]);
    let at = tls_server(&pki).await;
    let host = at.to_string();
    // Only the system's roots: the private CA is unknown.
    let system_only = link(&[("allowed_hosts", &host)]);
    let err = request(&system_only, "GET", &format!("https://{at}/hello"), b"")
        .await
        .unwrap_err();
    assert!(
        err.contains("TLS with https://")
            && err.contains("give the CA's certificate in the link value tls_roots_pem"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Another CA given: still unknown.
    let other_ca = link(&[
        ("allowed_hosts", &host),
        ("tls_roots_pem", &made_for(&["127.0.0.1"]).ca_pem),
    ]);
    assert!(
        request(&other_ca, "GET", &format!("https://{at}/hello"), b"")
            .await
            .unwrap_err()
            .contains("TLS with")
    );
    // The right CA, but the certificate names another host.
    let elsewhere = made_for(&["elsewhere.example"]);
    let at = tls_server(&elsewhere).await;
    let trusting = link(&[
        ("allowed_hosts", &at.to_string()),
        ("tls_roots_pem", &elsewhere.ca_pem),
    ]);
    let err = request(&trusting, "GET", &format!("https://{at}/hello"), b"")
        .await
        .unwrap_err();
    assert!(
        err.contains("TLS with") && err.contains("not valid for name \"127.0.0.1\""),
        "{err}"
    );
}

#[tokio::test]
async fn tls_roots_that_are_not_certificates_are_refused_when_the_link_is_put() {
    for (pem, says) in [
        ("not pem at all", "holds no certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
            "cannot be a root",
        ),
    ] {
        let err = HttpClient::new()
            .put_link(&link(&[("tls_roots_pem", pem)]))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{pem:?}: {err}");
    }
    let many = made_for(&["127.0.0.1"]).ca_pem.repeat(101);
    let err = HttpClient::new()
        .put_link(&link(&[("tls_roots_pem", &many)]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("over 100 certificates"), "{err}");
    let one = made_for(&["127.0.0.1"]).ca_pem;
    HttpClient::new()
        .put_link(&link(&[("tls_roots_pem", &one)]))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_redirect_from_https_down_to_plain_http_is_not_followed() {
    let pki = made_for(&["127.0.0.1"]);
    let secure = tls_server(&pki).await;
    let plain = server().await;
    let following = link(&[
        ("allowed_hosts", &format!("{secure},{plain}")),
        ("tls_roots_pem", &pki.ca_pem),
        ("follow_redirects", "true"),
    ]);
    let down = format!("https://{secure}/to?url=http://{plain}/hello");
    let err = request(&following, "GET", &down, b"").await.unwrap_err();
    assert!(
        err.contains("from https to plain HTTP; not followed"),
        "{err}"
    );
    // Within https, followed.
    let answer = request(&following, "GET", &format!("https://{secure}/moved"), b"")
        .await
        .unwrap();
    assert_eq!((answer.status_code, answer.body), (200, b"hi".to_vec()));
}

#[tokio::test]
async fn a_connection_verified_for_one_links_cas_never_carries_a_link_that_lacks_them() {
    let pki = made_for(&["127.0.0.1"]);
    let (at, accepted) = serve_counted(Some(acceptor(&pki))).await;
    let host = at.to_string();
    let client = HttpClient::new();
    let trusting = link(&[("allowed_hosts", &host), ("tls_roots_pem", &pki.ca_pem)]);
    for _ in 0..3 {
        request_on(
            &client,
            &trusting,
            "GET",
            &format!("https://{at}/hello"),
            b"",
        )
        .await
        .unwrap();
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "three requests, one TLS connection"
    );
    // The same provider, the same server, an idle verified connection to it: a link that does
    // not trust the CA still makes its own connection, and is refused.
    let untrusting = link(&[("allowed_hosts", &host)]);
    let err = request_on(
        &client,
        &untrusting,
        "GET",
        &format!("https://{at}/hello"),
        b"",
    )
    .await
    .unwrap_err();
    assert!(err.contains("TLS with"), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
