//! Claims inside a wasm module: a custom section named `wasmcloud_jwt` (older tools wrote `jwt`;
//! both are read) holding the token text.
//!
//! The module hash is the uppercase hex SHA-256 of the module with every claims section removed,
//! where "removed" means exactly what wascap does: the 8-byte header, then every other section
//! re-written as id + minimal LEB128 size + its bytes unchanged. Any other way of stripping
//! would hash differently and break interoperability both ways.

use crate::jwt;
use crate::keys::KeyPair;
use crate::verify::{Verified, VerifyOptions};
use crate::{Actor, Claims, ClaimsError, WASCAP_REVISION};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use wasm_encoder::Section;
use wasmparser::{Encoding, Parser, Payload};

/// Name of the custom section Weft and wasmCloud write the token into.
pub const CLAIMS_SECTION: &str = "wasmcloud_jwt";
/// Name older wascap versions (before 0.9) used; read, never written.
pub const LEGACY_CLAIMS_SECTION: &str = "jwt";

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// A module taken apart into its claims sections and everything else.
struct SplitModule<'a> {
    /// The module without claims sections, as wascap re-encodes it.
    stripped: Vec<u8>,
    /// The module without claims sections, every other byte as it was: what a tool that
    /// wrote padded (valid, non-minimal) LEB128 section sizes hashed.
    verbatim: Vec<u8>,
    /// The contents of each claims section, in order.
    tokens: Vec<&'a [u8]>,
}

impl SplitModule<'_> {
    /// The module's one token as text; `None` when unsigned. A signed module has exactly one.
    fn token(&self) -> Result<Option<&str>, ClaimsError> {
        match self.tokens.as_slice() {
            [] => Ok(None),
            [token] => std::str::from_utf8(token)
                .map(Some)
                .map_err(|_| ClaimsError::TokenNotText),
            more => Err(ClaimsError::DuplicateToken { count: more.len() }),
        }
    }
}

fn split(module: &[u8]) -> Result<SplitModule<'_>, ClaimsError> {
    if !module.starts_with(WASM_MAGIC) {
        return Err(ClaimsError::NotWasm);
    }
    let mut stripped = Vec::with_capacity(module.len());
    let mut verbatim = Vec::with_capacity(module.len());
    let mut tokens = Vec::new();
    // Where the next section's header starts: sections follow each other with nothing between.
    let mut next = 0;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(ClaimsError::MalformedWasm)?;
        let whole = |end: usize| {
            let len = module.len();
            module
                .get(next..end)
                .ok_or(ClaimsError::Truncated { end, len })
        };
        match &payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(ClaimsError::NotACoreModule);
            }
            Payload::Version { range, .. } => {
                stripped.extend_from_slice(&wasm_encoder::Module::HEADER);
                verbatim.extend_from_slice(whole(range.end)?);
                next = range.end;
            }
            Payload::CustomSection(section)
                if section.name() == CLAIMS_SECTION || section.name() == LEGACY_CLAIMS_SECTION =>
            {
                tokens.push(section.data());
                next = section.range().end;
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    let (end, len) = (range.end, module.len());
                    verbatim.extend_from_slice(whole(end)?);
                    next = end;
                    let data = module
                        .get(range)
                        .ok_or(ClaimsError::Truncated { end, len })?;
                    wasm_encoder::RawSection { id, data }.append_to(&mut stripped);
                }
            }
        }
    }
    Ok(SplitModule {
        stripped,
        verbatim,
        tokens,
    })
}

fn sha256_hex_upper(bytes: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(&Sha256::digest(bytes))
}

/// The module's hash as claims record it: SHA-256 of the module without claims sections.
pub fn module_hash(module: &[u8]) -> Result<String, ClaimsError> {
    Ok(sha256_hex_upper(&split(module)?.stripped))
}

/// The raw token text embedded in a module; `None` if the module is unsigned.
pub fn extract_token(module: &[u8]) -> Result<Option<String>, ClaimsError> {
    Ok(split(module)?.token()?.map(str::to_string))
}

/// Signs a module: validates it, removes any claims it carried, records its hash and the current
/// revision in `claims`, signs them with `issuer` and appends the token as a `wasmcloud_jwt`
/// section. Returns the signed module.
///
/// `claims.issuer` must be `issuer`'s public key and `claims.subject` a module key.
pub fn embed_claims(
    module: &[u8],
    claims: &Claims<Actor>,
    issuer: &KeyPair,
) -> Result<Vec<u8>, ClaimsError> {
    let split = split(module)?;
    wasmparser::Validator::new()
        .validate_all(&split.stripped)
        .map_err(ClaimsError::InvalidWasm)?;

    let mut claims = claims.clone();
    let metadata = claims.metadata.get_or_insert_with(Actor::default);
    metadata.module_hash = sha256_hex_upper(&split.stripped);
    claims.wascap_revision = Some(WASCAP_REVISION);
    let token = jwt::encode(&claims, issuer)?;

    let mut signed = split.stripped;
    wasm_encoder::CustomSection {
        name: Cow::Borrowed(CLAIMS_SECTION),
        data: Cow::Borrowed(token.as_bytes()),
    }
    .append_to(&mut signed);
    Ok(signed)
}

/// Verifies the claims embedded in a module: everything [`jwt::verify_token`] checks, and that
/// the module's hash is the one its claims record (whatever `wascap_revision` says).
pub fn verify_module(
    module: &[u8],
    options: &VerifyOptions,
) -> Result<Verified<Claims<Actor>>, ClaimsError> {
    let split = split(module)?;
    let token = split.token()?.ok_or(ClaimsError::Unsigned)?;
    let verified = jwt::verify_token::<Actor>(token, options)?;
    let claimed = verified
        .metadata
        .as_ref()
        .map(|a| a.module_hash.as_str())
        .unwrap_or_default();
    let actual = sha256_hex_upper(&split.stripped);
    if claimed == actual || claimed == sha256_hex_upper(&split.verbatim) {
        return Ok(verified);
    }
    // wascap's rule: hashes signed before revision 3 were computed another way, and are not
    // checked.
    if verified.wascap_revision.unwrap_or(0) < WASCAP_REVISION && !options.requires_module_hash() {
        return Ok(verified.hash_not_checked());
    }
    Err(ClaimsError::HashMismatch {
        claimed: claimed.to_string(),
        actual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn stripping_removes_both_section_names_and_nothing_else() {
        let plain = module("(module (func (export \"f\")))");
        let mut with_claims = plain.clone();
        for name in [CLAIMS_SECTION, LEGACY_CLAIMS_SECTION] {
            wasm_encoder::CustomSection {
                name: name.into(),
                data: b"x.y.z".as_slice().into(),
            }
            .append_to(&mut with_claims);
        }
        assert_eq!(split(&with_claims).unwrap().stripped, plain);
        assert_eq!(
            module_hash(&with_claims).unwrap(),
            module_hash(&plain).unwrap()
        );
        assert!(matches!(
            extract_token(&with_claims),
            Err(ClaimsError::DuplicateToken { count: 2 })
        ));
    }

    #[test]
    fn hash_is_uppercase_hex_sha256() {
        let plain = module("(module)");
        // The empty module is its header alone.
        assert_eq!(plain, b"\0asm\x01\0\0\0");
        assert_eq!(
            module_hash(&plain).unwrap(),
            "93A44BBB96C751218E4C00D479E4C14358122A389ACCA16205B1E4D0DC5F9476"
        );
    }

    /// `module` with its first section's size written in five bytes: valid LEB128, not the
    /// minimal one wascap writes.
    fn padded(module: &[u8]) -> Vec<u8> {
        let (id, size) = (module[8], module[9]);
        assert!(size < 0x80, "a one-byte size to pad");
        let mut out = module[..8].to_vec();
        out.push(id);
        out.extend_from_slice(&[size | 0x80, 0x80, 0x80, 0x80, 0x00]);
        out.extend_from_slice(&module[10..]);
        out
    }

    /// `module` signed by a tool that recorded `hash` at `revision`.
    fn signed_with(module: &[u8], hash: String, revision: Option<u32>) -> Vec<u8> {
        let (account, subject) = (KeyPair::new_account(), KeyPair::new_module());
        let mut claims = Claims::new(
            account.public_key(),
            subject.public_key(),
            Actor {
                module_hash: hash,
                ..Actor::default()
            },
        );
        claims.wascap_revision = revision;
        let token = jwt::encode(&claims, &account).unwrap();
        let mut signed = module.to_vec();
        wasm_encoder::CustomSection {
            name: CLAIMS_SECTION.into(),
            data: token.as_bytes().into(),
        }
        .append_to(&mut signed);
        signed
    }

    #[test]
    fn a_module_with_padded_section_sizes_verifies_against_the_hash_of_its_own_bytes() {
        let plain = padded(&module("(module (func (export \"f\")))"));
        assert_ne!(
            split(&plain).unwrap().stripped,
            plain,
            "wascap re-encodes the size"
        );
        let verbatim = sha256_hex_upper(&plain);
        for revision in [Some(3), Some(2), None] {
            let signed = signed_with(&plain, verbatim.clone(), revision);
            let verified = verify_module(&signed, &VerifyOptions::new()).unwrap();
            assert!(verified.hash_checked(), "{revision:?}");
        }
        // A byte changed after signing is still caught, by either way of stripping.
        let mut changed = signed_with(&plain, verbatim, Some(3));
        let last_code_byte = plain.len() - 1;
        changed[last_code_byte] ^= 0xff;
        assert!(matches!(
            verify_module(&changed, &VerifyOptions::new()),
            Err(ClaimsError::HashMismatch { .. }) | Err(ClaimsError::MalformedWasm(_))
        ));
    }

    #[test]
    fn hashes_before_revision_3_are_not_checked_unless_required_as_wascap_does() {
        let plain = module("(module (func (export \"f\")))");
        let other_hash = sha256_hex_upper(b"computed some older way");
        let old = signed_with(&plain, other_hash.clone(), Some(2));
        let verified = verify_module(&old, &VerifyOptions::new()).unwrap();
        assert!(!verified.hash_checked());
        assert!(matches!(
            verify_module(&old, &VerifyOptions::new().require_module_hash()),
            Err(ClaimsError::HashMismatch { .. })
        ));
        let current = signed_with(&plain, other_hash, Some(3));
        assert!(matches!(
            verify_module(&current, &VerifyOptions::new()),
            Err(ClaimsError::HashMismatch { .. })
        ));
    }

    #[test]
    fn components_are_refused() {
        let component = wat::parse_str("(component)").unwrap();
        assert!(matches!(
            module_hash(&component),
            Err(ClaimsError::NotACoreModule)
        ));
    }
}
