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
use wasm_encoder::{Encode, Section};
use wasmparser::{Chunk, Encoding, Parser, Payload};

/// Name of the custom section Weft and wasmCloud write the token into.
pub const CLAIMS_SECTION: &str = "wasmcloud_jwt";
/// Name older wascap versions (before 0.9) used; read, never written.
pub const LEGACY_CLAIMS_SECTION: &str = "jwt";

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// A module taken apart into its claims sections and everything else, without copying it:
/// hashing, comparing or writing out the module without claims works on its pieces.
struct SplitModule<'a> {
    /// Every section that is not claims, in order, with the header wascap writes for it: the
    /// module without claims, as wascap re-encodes it, is the 8-byte header then these.
    kept: Vec<Kept<'a>>,
    /// The module without claims sections, every other byte as it was (runs of the module):
    /// what a tool that wrote padded (valid, non-minimal) LEB128 section sizes hashed.
    verbatim: Vec<&'a [u8]>,
    /// The contents of each claims section, in order.
    tokens: Vec<&'a [u8]>,
}

/// A section kept by stripping: its id and size (minimal LEB128), then its bytes unchanged.
struct Kept<'a> {
    head: Vec<u8>,
    data: &'a [u8],
}

impl<'a> SplitModule<'a> {
    /// The module's one token as text; `None` when unsigned. A signed module has exactly one.
    fn token(&self) -> Result<Option<&'a str>, ClaimsError> {
        match self.tokens.as_slice() {
            [] => Ok(None),
            [token] => std::str::from_utf8(token)
                .map(Some)
                .map_err(|_| ClaimsError::TokenNotText),
            more => Err(ClaimsError::DuplicateToken { count: more.len() }),
        }
    }

    /// The module without claims, as wascap re-encodes it, piece by piece.
    fn stripped_pieces(&self) -> impl Iterator<Item = &[u8]> {
        let header: &[u8] = &wasm_encoder::Module::HEADER;
        std::iter::once(header).chain(
            self.kept
                .iter()
                .flat_map(|kept| [kept.head.as_slice(), kept.data]),
        )
    }

    fn stripped(&self) -> Vec<u8> {
        self.stripped_pieces().collect::<Vec<_>>().concat()
    }

    fn stripped_hash(&self) -> String {
        sha256_hex_upper(self.stripped_pieces())
    }

    fn verbatim_hash(&self) -> String {
        sha256_hex_upper(self.verbatim.iter().copied())
    }

    /// Whether the module without claims is exactly `code`.
    fn stripped_is(&self, code: &[u8]) -> bool {
        let mut rest = code;
        for piece in self.stripped_pieces() {
            match rest.split_at_checked(piece.len()) {
                Some((head, tail)) if head == piece => rest = tail,
                _ => return false,
            }
        }
        rest.is_empty()
    }
}

/// The payloads of a module, its code section as one: `CodeSectionStart`, whose range covers
/// it, and no function bodies (reading each body's header would cost as much as the rest of
/// the module together). Ends after the `End` payload, after an error, or after the header
/// of a component (which holds modules of its own).
pub fn sections(module: &[u8]) -> impl Iterator<Item = Result<Payload<'_>, ClaimsError>> {
    let mut parser = Parser::new(0);
    let mut rest = module;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let payload = match parser.parse(rest, true) {
            Ok(Chunk::Parsed { consumed, payload }) => {
                rest = rest.get(consumed..).unwrap_or_default();
                payload
            }
            // Not with `eof`: the parser reports a truncated module as an error.
            Ok(Chunk::NeedMoreData(more)) => {
                done = true;
                let (len, more) = (module.len(), usize::try_from(more).unwrap_or(usize::MAX));
                let end = len.saturating_add(more);
                return Some(Err(ClaimsError::Truncated { end, len }));
            }
            Err(error) => {
                done = true;
                return Some(Err(ClaimsError::MalformedWasm(error)));
            }
        };
        match &payload {
            Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                let size = usize::try_from(*size).unwrap_or(usize::MAX);
                let Some(after) = rest.get(size..) else {
                    done = true;
                    let len = module.len();
                    let end = (len - rest.len()).saturating_add(size);
                    return Some(Err(ClaimsError::Truncated { end, len }));
                };
                rest = after;
            }
            Payload::Version {
                encoding: Encoding::Component,
                ..
            }
            | Payload::End(_) => done = true,
            _ => {}
        }
        Some(Ok(payload))
    })
}

fn split(module: &[u8]) -> Result<SplitModule<'_>, ClaimsError> {
    if !module.starts_with(WASM_MAGIC) {
        return Err(ClaimsError::NotWasm);
    }
    let mut kept = Vec::new();
    let mut verbatim: Vec<&[u8]> = Vec::new();
    let mut tokens = Vec::new();
    // Where the next section's header starts: sections follow each other with nothing between.
    let mut next = 0;
    // Where the run of verbatim bytes being gathered starts.
    let mut run = 0;
    for payload in sections(module) {
        let payload = payload?;
        let len = module.len();
        match &payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(ClaimsError::NotACoreModule);
            }
            Payload::Version { range, .. } => next = range.end,
            Payload::CustomSection(section)
                if section.name() == CLAIMS_SECTION || section.name() == LEGACY_CLAIMS_SECTION =>
            {
                verbatim.push(
                    module
                        .get(run..next)
                        .ok_or(ClaimsError::Truncated { end: next, len })?,
                );
                tokens.push(section.data());
                next = section.range().end;
                run = next;
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    let end = range.end;
                    let data = module
                        .get(range)
                        .ok_or(ClaimsError::Truncated { end, len })?;
                    let mut head = vec![id];
                    data.len().encode(&mut head);
                    kept.push(Kept { head, data });
                    next = end;
                }
            }
        }
    }
    let len = module.len();
    verbatim.push(
        module
            .get(run..next)
            .ok_or(ClaimsError::Truncated { end: next, len })?,
    );
    Ok(SplitModule {
        kept,
        verbatim,
        tokens,
    })
}

fn sha256_hex_upper<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hash = Sha256::new();
    for piece in pieces {
        hash.update(piece);
    }
    data_encoding::HEXUPPER.encode(&hash.finalize())
}

/// The module's hash as claims record it: SHA-256 of the module without claims sections.
pub fn module_hash(module: &[u8]) -> Result<String, ClaimsError> {
    Ok(split(module)?.stripped_hash())
}

/// The module without its claims sections, as wascap strips them: the bytes
/// [`module_hash`] hashes.
pub fn strip_claims(module: &[u8]) -> Result<Vec<u8>, ClaimsError> {
    Ok(split(module)?.stripped())
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
    let mut signed = strip_claims(module)?;
    wasmparser::Validator::new()
        .validate_all(&signed)
        .map_err(ClaimsError::InvalidWasm)?;

    let mut claims = claims.clone();
    let metadata = claims.metadata.get_or_insert_with(Actor::default);
    metadata.module_hash = sha256_hex_upper([signed.as_slice()]);
    claims.wascap_revision = Some(WASCAP_REVISION);
    let token = jwt::encode(&claims, issuer)?;

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
    verify_module_code(module, options, &|_| None).map(|module| module.claims)
}

/// A signed module whose claims verified, and the hash of its code.
#[derive(Debug, Clone)]
pub struct VerifiedModule {
    /// Its claims, verified.
    pub claims: Verified<Claims<Actor>>,
    /// SHA-256 (uppercase hex) of its code without claims, as [`module_hash`] computes it.
    /// Always the hash of these bytes, also where the claims record another that verified
    /// (padded section sizes) or that wascap does not check (an old revision), so that it can
    /// key a cache of code.
    pub code_hash: String,
}

/// Code whose hash was computed before, by hash: `known(hash)` returns the bytes of a module
/// without claims whose SHA-256 (uppercase hex) is `hash`, if the caller holds them.
pub type KnownCode<'a> = &'a dyn Fn(&str) -> Option<std::sync::Arc<[u8]>>;

/// [`verify_module`], proving the hash of code seen before by comparing bytes: where `known`
/// holds code for the hash the claims record, the module's code (without claims) is compared
/// with it byte for byte, a tenth of the time of hashing it; equal bytes have that hash. Code
/// that differs in any byte is hashed as usual, and refused when its hash is not the one
/// recorded. A host starting thousands of actors of the same code checks each in microseconds.
pub fn verify_module_code(
    module: &[u8],
    options: &VerifyOptions,
    known: KnownCode<'_>,
) -> Result<VerifiedModule, ClaimsError> {
    let split = split(module)?;
    let token = split.token()?.ok_or(ClaimsError::Unsigned)?;
    let claims = jwt::verify_token::<Actor>(token, options)?;
    let claimed = claims
        .metadata
        .as_ref()
        .map(|a| a.module_hash.as_str())
        .unwrap_or_default();
    if known(claimed).is_some_and(|code| split.stripped_is(&code)) {
        let code_hash = claimed.to_string();
        return Ok(VerifiedModule { claims, code_hash });
    }
    let code_hash = split.stripped_hash();
    if claimed == code_hash || claimed == split.verbatim_hash() {
        return Ok(VerifiedModule { claims, code_hash });
    }
    // wascap's rule: hashes signed before revision 3 were computed another way, and are not
    // checked.
    if claims.wascap_revision.unwrap_or(0) < WASCAP_REVISION && !options.requires_module_hash() {
        let claims = claims.hash_not_checked();
        return Ok(VerifiedModule { claims, code_hash });
    }
    Err(ClaimsError::HashMismatch {
        claimed: claimed.to_string(),
        actual: code_hash,
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
        assert_eq!(strip_claims(&with_claims).unwrap(), plain);
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
            strip_claims(&plain).unwrap(),
            plain,
            "wascap re-encodes the size"
        );
        let verbatim = sha256_hex_upper([plain.as_slice()]);
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
        let other_hash = sha256_hex_upper([b"computed some older way".as_slice()]);
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
