//! wascap's JWT: `base64url(header).base64url(claims).base64url(signature)`, unpadded, where the
//! header is `{"typ":"jwt","alg":"Ed25519"}` and the signature is the issuer's ed25519 signature
//! over the first two parts as text.
//!
//! `jsonwebtoken` cannot write `alg: Ed25519` (its EdDSA tokens say `EdDSA`), so tokens are put
//! together here from `nkeys` signatures, `serde_json` and `data-encoding`.

use crate::error::TokenPart;
use crate::keys::{KeyPair, KeyRole, public_key_with_role, require_role};
use crate::verify::{Verified, VerifyOptions};
use crate::{Actor, Claims, ClaimsError, Provider};
use data_encoding::BASE64URL_NOPAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `typ` of every wascap token.
pub const HEADER_TYPE: &str = "jwt";
/// `alg` of every wascap token.
pub const HEADER_ALGORITHM: &str = "Ed25519";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

/// What a kind of token requires of its keys: an actor's subject is a module key, a provider's
/// a service key. Issuers are always accounts.
pub trait Subject: Serialize + DeserializeOwned {
    /// The role the token's `sub` must have.
    const SUBJECT_ROLE: KeyRole;
}

impl Subject for Actor {
    const SUBJECT_ROLE: KeyRole = KeyRole::Module;
}

impl Subject for Provider {
    const SUBJECT_ROLE: KeyRole = KeyRole::Service;
}

/// Signs `claims` with `issuer` (an account seed) and returns the token text.
///
/// The issuer's public key must be the claims' `iss`, and the subject must have the role its
/// metadata requires, so Weft never writes a token that it would then refuse.
pub fn encode<T: Subject>(claims: &Claims<T>, issuer: &KeyPair) -> Result<String, ClaimsError> {
    require_role(issuer, KeyRole::Account, "issuer seed")?;
    if claims.issuer != issuer.public_key() {
        return Err(ClaimsError::IssuerMismatch {
            claimed: claims.issuer.clone(),
            signer: issuer.public_key(),
        });
    }
    public_key_with_role(&claims.subject, T::SUBJECT_ROLE, "subject")?;

    let header = Header {
        typ: HEADER_TYPE.into(),
        alg: HEADER_ALGORITHM.into(),
    };
    let header = BASE64URL_NOPAD.encode(&serde_json::to_vec(&header).map_err(ClaimsError::Encode)?);
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(claims).map_err(ClaimsError::Encode)?);
    let signed = format!("{header}.{body}");
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(|_| ClaimsError::NoSeed { what: "issuer key" })?;
    Ok(format!("{signed}.{}", BASE64URL_NOPAD.encode(&signature)))
}

/// A token taken apart but not yet trusted: its header is checked, its claims parsed.
/// Only [`verify_token`] turns it into something to act on.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<T> {
    /// The claims as the token states them. Nothing here has been checked.
    pub claims: Claims<T>,
    signed_part: String,
    signature: Vec<u8>,
    text: String,
}

impl<T> UnverifiedToken<T> {
    /// The token's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Splits and parses a token without checking its signature or times. For display; to act on a
/// token, use [`verify_token`].
pub fn decode<T: DeserializeOwned>(token: &str) -> Result<UnverifiedToken<T>, ClaimsError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, body, signature] = parts.as_slice() else {
        return Err(ClaimsError::TokenShape { parts: parts.len() });
    };
    let header: Header = parse_part(header, TokenPart::Header)?;
    if header.alg != HEADER_ALGORITHM {
        return Err(ClaimsError::WrongAlgorithm { found: header.alg });
    }
    if header.typ != HEADER_TYPE {
        return Err(ClaimsError::WrongTokenType { found: header.typ });
    }
    let claims: Claims<T> = parse_part(body, TokenPart::Claims)?;
    let signature = BASE64URL_NOPAD
        .decode(signature.as_bytes())
        .map_err(|source| ClaimsError::Base64 {
            part: TokenPart::Signature,
            source,
        })?;
    let signed_part = token
        .rsplit_once('.')
        .map(|(signed, _)| signed.to_string())
        .unwrap_or_default();
    Ok(UnverifiedToken {
        claims,
        signed_part,
        signature,
        text: token.to_string(),
    })
}

fn parse_part<P: DeserializeOwned>(part: &str, which: TokenPart) -> Result<P, ClaimsError> {
    let bytes = BASE64URL_NOPAD
        .decode(part.as_bytes())
        .map_err(|source| ClaimsError::Base64 {
            part: which,
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|source| ClaimsError::Json {
        part: which,
        source,
    })
}

/// Decodes and verifies a token: header, signature, key roles, time bounds and the issuer
/// allow-list. It does not know the module, so it cannot check the hash: for actors embedded in
/// a module use [`crate::verify_module`], which does.
pub fn verify_token<T: Subject>(
    token: &str,
    options: &VerifyOptions,
) -> Result<Verified<Claims<T>>, ClaimsError> {
    let token = decode::<T>(token)?;
    check_signature_and_keys(&token)?;
    let claims = &token.claims;
    if claims.metadata.is_none() {
        return Err(ClaimsError::MissingMetadata);
    }
    options.check_times(claims.expires, claims.not_before)?;
    options.check_issuer(&claims.issuer)?;
    Ok(Verified::new(token.claims, token.text))
}

fn check_signature_and_keys<T: Subject>(token: &UnverifiedToken<T>) -> Result<(), ClaimsError> {
    let claims = &token.claims;
    let issuer = public_key_with_role(&claims.issuer, KeyRole::Account, "issuer")?;
    issuer
        .verify(token.signed_part.as_bytes(), &token.signature)
        .map_err(|_| ClaimsError::BadSignature {
            issuer: claims.issuer.clone(),
        })?;
    public_key_with_role(&claims.subject, T::SUBJECT_ROLE, "subject")?;
    Ok(())
}
