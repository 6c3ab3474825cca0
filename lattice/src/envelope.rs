//! Signed envelopes: a body, who signed it (an nkey), for whom (an audience: a host id, or
//! every host), when, and a nonce, under an ed25519 signature over all of it. What a receiver
//! acts on is what a key it trusts signed for it, recently, once: [`Verifier::open`] refuses
//! an envelope that is unsigned or malformed, signed by a key it does not trust, addressed to
//! another audience, outside its time window, or seen before (a replay), and says which.
//!
//! The control interface uses them with operator keys (`O…`): a subject name proves nothing,
//! a signature over the message does.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The audience of an envelope meant for every host (an inventory ping).
pub const EVERY_HOST: &str = "*";
/// How far an envelope's time may be from the receiver's clock, either way.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
/// Most nonces a verifier remembers; past it, the oldest are forgotten first (they are
/// outside the window soon anyway) — a flood of fresh envelopes cannot grow it without bound.
pub const MAX_REMEMBERED_NONCES: usize = 100_000;

/// What is signed: everything but the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Signed {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    signer: String,
    audience: String,
    issued_at_ms: u64,
    nonce: u128,
}

/// An envelope as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The MessagePack of the signed part.
    #[serde(with = "serde_bytes")]
    signed: Vec<u8>,
    /// The signer's ed25519 signature over `signed`.
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not an envelope at all (an unsigned request, or garbage).
    #[error("the message is not signed: {0}")]
    Unsigned(String),
    /// The signature does not match the signed part and key.
    #[error("the signature of {signer} does not verify: the message was forged or altered")]
    BadSignature {
        /// The key it claims.
        signer: String,
    },
    /// Signed by a key the receiver does not trust.
    #[error("signed by {signer}, which this host does not trust (give it with --ctl-key)")]
    Untrusted {
        /// The key.
        signer: String,
    },
    /// Addressed to someone else.
    #[error("addressed to {audience}, not to this host")]
    WrongAudience {
        /// Its audience.
        audience: String,
    },
    /// Too old or too far in the future.
    #[error(
        "signed {skew_ms} ms away from this host's clock, outside the {window_ms} ms window \
         (a stale or replayed message, or clocks out of step)"
    )]
    Stale {
        /// How far from now.
        skew_ms: u64,
        /// The window.
        window_ms: u64,
    },
    /// Seen before.
    #[error("a replay: this signed message was already received")]
    Replayed,
    /// The signing key cannot sign (a public key given where a seed is needed).
    #[error("cannot sign: {0}")]
    Key(String),
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EnvelopeError> {
    rmp_serde::to_vec_named(value).map_err(|e| EnvelopeError::Unsigned(e.to_string()))
}

impl Envelope {
    /// `body` signed by `key` for `audience` (a host id, or [`EVERY_HOST`]), now, with a fresh
    /// nonce.
    pub fn seal(
        key: &nkeys::KeyPair,
        audience: &str,
        body: Vec<u8>,
    ) -> Result<Self, EnvelopeError> {
        let signed = encode(&Signed {
            body,
            signer: key.public_key(),
            audience: audience.to_string(),
            issued_at_ms: now_ms(),
            nonce: rand::random(),
        })?;
        let signature = key
            .sign(&signed)
            .map_err(|e| EnvelopeError::Key(e.to_string()))?;
        Ok(Envelope { signed, signature })
    }

    /// The envelope as bytes on the wire.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        encode(self)
    }
}

/// What [`Verifier::open`] hands out: the body, and the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The signed body.
    pub body: Vec<u8>,
    /// The public key that signed it.
    pub signer: String,
}

/// Opens envelopes for one receiver: trusted keys, its audience names, a time window, and the
/// nonces it has seen within it.
#[derive(Debug)]
pub struct Verifier {
    trusted: BTreeSet<String>,
    window: Duration,
    /// Nonce → when it can be forgotten (Unix ms).
    seen: Mutex<HashMap<u128, u64>>,
}

impl Verifier {
    /// Trusts `keys` (public keys), within [`DEFAULT_WINDOW`].
    pub fn new(keys: impl IntoIterator<Item = String>) -> Self {
        Verifier {
            trusted: keys.into_iter().collect(),
            window: DEFAULT_WINDOW,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The keys it trusts.
    pub fn trusted(&self) -> impl Iterator<Item = &str> {
        self.trusted.iter().map(String::as_str)
    }

    /// The body of `bytes` if a trusted key signed it for `audience` (or for every host),
    /// within the window, and it was not seen before.
    pub fn open(&self, audience: &str, bytes: &[u8]) -> Result<Opened, EnvelopeError> {
        let envelope: Envelope =
            rmp_serde::from_slice(bytes).map_err(|e| EnvelopeError::Unsigned(e.to_string()))?;
        let signed: Signed = rmp_serde::from_slice(&envelope.signed)
            .map_err(|e| EnvelopeError::Unsigned(e.to_string()))?;
        if !self.trusted.contains(&signed.signer) {
            return Err(EnvelopeError::Untrusted {
                signer: signed.signer,
            });
        }
        let bad_signature = || EnvelopeError::BadSignature {
            signer: signed.signer.clone(),
        };
        nkeys::KeyPair::from_public_key(&signed.signer)
            .map_err(|_| bad_signature())?
            .verify(&envelope.signed, &envelope.signature)
            .map_err(|_| bad_signature())?;
        if signed.audience != audience && signed.audience != EVERY_HOST {
            return Err(EnvelopeError::WrongAudience {
                audience: signed.audience,
            });
        }
        let now = now_ms();
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let skew_ms = now.abs_diff(signed.issued_at_ms);
        if skew_ms > window_ms {
            return Err(EnvelopeError::Stale { skew_ms, window_ms });
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_REMEMBERED_NONCES {
            seen.retain(|_, forget_at| *forget_at > now);
        }
        if seen.len() >= MAX_REMEMBERED_NONCES {
            // Still full of live nonces: forget the ones that expire soonest.
            let mut by_expiry: Vec<(u128, u64)> = seen.iter().map(|(n, t)| (*n, *t)).collect();
            by_expiry.sort_by_key(|(_, t)| *t);
            for (nonce, _) in by_expiry.iter().take(MAX_REMEMBERED_NONCES / 10) {
                seen.remove(nonce);
            }
        }
        let forget_at = signed.issued_at_ms.saturating_add(window_ms);
        if seen.insert(signed.nonce, forget_at).is_some() {
            return Err(EnvelopeError::Replayed);
        }
        Ok(Opened {
            body: signed.body,
            signer: signed.signer,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_key_s_fresh_message_for_this_host_opens_once() {
        let operator = nkeys::KeyPair::new_operator();
        let stranger = nkeys::KeyPair::new_operator();
        let verifier = Verifier::new([operator.public_key()]);
        let sealed = Envelope::seal(&operator, "NHOST", b"start".to_vec())
            .unwrap()
            .to_bytes()
            .unwrap();
        let opened = verifier.open("NHOST", &sealed).unwrap();
        assert_eq!(opened.body, b"start");
        assert_eq!(opened.signer, operator.public_key());
        assert_eq!(
            verifier.open("NHOST", &sealed).unwrap_err(),
            EnvelopeError::Replayed
        );
        let other_host = Envelope::seal(&operator, "NOTHER", b"x".to_vec())
            .unwrap()
            .to_bytes()
            .unwrap();
        assert!(matches!(
            verifier.open("NHOST", &other_host),
            Err(EnvelopeError::WrongAudience { .. })
        ));
        let untrusted = Envelope::seal(&stranger, "NHOST", b"x".to_vec())
            .unwrap()
            .to_bytes()
            .unwrap();
        assert!(matches!(
            verifier.open("NHOST", &untrusted),
            Err(EnvelopeError::Untrusted { .. })
        ));
        // The body swapped under a valid signature.
        let mut envelope: Envelope = rmp_serde::from_slice(
            &Envelope::seal(&operator, "NHOST", b"stop".to_vec())
                .unwrap()
                .to_bytes()
                .unwrap(),
        )
        .unwrap();
        let mut signed: Signed = rmp_serde::from_slice(&envelope.signed).unwrap();
        signed.body = b"start everything".to_vec();
        envelope.signed = encode(&signed).unwrap();
        assert!(matches!(
            verifier.open("NHOST", &encode(&envelope).unwrap()),
            Err(EnvelopeError::BadSignature { .. })
        ));
        assert!(matches!(
            verifier.open("NHOST", b"plain request"),
            Err(EnvelopeError::Unsigned(_))
        ));
        // Signed a minute ago: outside the window.
        let old = encode(&Signed {
            body: b"x".to_vec(),
            signer: operator.public_key(),
            audience: "NHOST".into(),
            issued_at_ms: now_ms() - 60_000,
            nonce: 7,
        })
        .unwrap();
        let stale = Envelope {
            signature: operator.sign(&old).unwrap(),
            signed: old,
        };
        assert!(matches!(
            verifier.open("NHOST", &encode(&stale).unwrap()),
            Err(EnvelopeError::Stale { .. })
        ));
    }
}
