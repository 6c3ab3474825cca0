//! The one error type of this crate. Each way a module or token can be wrong is its own
//! variant, so a caller (and a test) can tell them apart without parsing text, and each message
//! says what is wrong and, where there is one, what to do about it.

use std::time::{Duration, UNIX_EPOCH};

/// Which of the three dot-separated parts of a JWT a decoding error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPart {
    /// The first part: `{"typ":"jwt","alg":"Ed25519"}`.
    Header,
    /// The second part: the claims.
    Claims,
    /// The third part: the ed25519 signature.
    Signature,
}

impl std::fmt::Display for TokenPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenPart::Header => "header",
            TokenPart::Claims => "claims",
            TokenPart::Signature => "signature",
        })
    }
}

/// Everything that can go wrong while signing, extracting or verifying claims.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The bytes do not start with the wasm magic number.
    #[error("not a WebAssembly module: the file does not start with the `\\0asm` magic bytes")]
    NotWasm,

    /// The bytes are a component, not a core module.
    #[error(
        "this is a WebAssembly component, not a core module; Weft actors are core wasm32 modules"
    )]
    NotACoreModule,

    /// The module's binary structure could not be read (truncated, bad section size, ...).
    #[error("malformed WebAssembly module: {0}")]
    MalformedWasm(#[source] wasmparser::BinaryReaderError),

    /// A section claims more bytes than the file has left.
    #[error(
        "malformed WebAssembly module: a section runs to byte {end} but the file has {len}; the file is truncated"
    )]
    Truncated {
        /// Where the section says it ends.
        end: usize,
        /// The file's length.
        len: usize,
    },

    /// The module reads, but does not validate (signing refuses modules no engine would run).
    #[error("invalid WebAssembly module, refusing to sign it: {0}")]
    InvalidWasm(#[source] wasmparser::BinaryReaderError),

    /// The module has no `wasmcloud_jwt` (or legacy `jwt`) custom section.
    #[error(
        "module is not signed: it has no `wasmcloud_jwt` or `jwt` custom section; sign it with `weft claims sign`"
    )]
    Unsigned,

    /// More than one claims section: a signed module has exactly one.
    #[error(
        "module carries {count} claims sections where a signed module has one; re-sign it with `weft claims sign`"
    )]
    DuplicateToken {
        /// How many `wasmcloud_jwt`/`jwt` sections were found.
        count: usize,
    },

    /// The token is not of the form `header.claims.signature`.
    #[error(
        "malformed token: expected three dot-separated parts (header.claims.signature), found {parts}"
    )]
    TokenShape {
        /// How many parts the token had.
        parts: usize,
    },

    /// The embedded token is not UTF-8 text.
    #[error("malformed token: the claims section is not UTF-8 text")]
    TokenNotText,

    /// A token part is not valid unpadded base64url.
    #[error("malformed token: the {part} is not valid base64url: {source}")]
    Base64 {
        /// The part that failed.
        part: TokenPart,
        /// The decoder's complaint.
        #[source]
        source: data_encoding::DecodeError,
    },

    /// A token part is not the JSON it should be.
    #[error("malformed token: the {part} is not valid JSON for a wascap token: {source}")]
    Json {
        /// The part that failed.
        part: TokenPart,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },

    /// The header names another algorithm than `Ed25519`.
    #[error("token header names algorithm {found:?}; wascap tokens are signed with \"Ed25519\"")]
    WrongAlgorithm {
        /// The `alg` value found.
        found: String,
    },

    /// The header names another type than `jwt`.
    #[error("token header names type {found:?}; wascap tokens have type \"jwt\"")]
    WrongTokenType {
        /// The `typ` value found.
        found: String,
    },

    /// The claims have no `wascap` metadata object.
    #[error("token has no `wascap` metadata: it is not a wascap actor or provider token")]
    MissingMetadata,

    /// The signature is not a valid ed25519 signature of the issuer over header and claims.
    #[error(
        "signature does not verify against issuer {issuer}: the token was altered or re-signed by another key"
    )]
    BadSignature {
        /// The issuer named in the claims.
        issuer: String,
    },

    /// The module was changed after it was signed.
    #[error(
        "module hash {actual} does not match the hash in its claims ({claimed}): the module was changed after signing; re-sign it"
    )]
    HashMismatch {
        /// Hash recorded in the claims.
        claimed: String,
        /// Hash of the module as it is.
        actual: String,
    },

    /// `exp` is in the past.
    #[error("token expired at {} (now {}); sign the module again", human(*expired_at), human(*now))]
    Expired {
        /// The token's `exp`, seconds since the Unix epoch.
        expired_at: u64,
        /// The verifier's clock.
        now: u64,
    },

    /// `nbf` is in the future.
    #[error("token is not valid until {} (now {})", human(*not_before), human(*now))]
    NotYetValid {
        /// The token's `nbf`, seconds since the Unix epoch.
        not_before: u64,
        /// The verifier's clock.
        now: u64,
    },

    /// A key in the claims has the wrong role for its place, or a seed has the wrong role for
    /// what it is asked to do.
    #[error("{what} must be {expected} key ({prefix}…), but {key} is {found}")]
    WrongKeyRole {
        /// Which key: "issuer", "subject", "issuer seed", ...
        what: &'static str,
        /// The role required, with article: "an account".
        expected: &'static str,
        /// The first letter public keys of the required role carry.
        prefix: char,
        /// The key (public form) that was given.
        key: String,
        /// The role it has, with article.
        found: &'static str,
    },

    /// A string that should be an nkey public key or seed is not one.
    #[error("{what} is not a valid nkey: {source}")]
    InvalidKey {
        /// Which key: "issuer", "subject", "issuer seed", ...
        what: &'static str,
        /// What nkeys said.
        #[source]
        source: nkeys::error::Error,
    },

    /// A key pair with no seed was handed to something that must sign.
    #[error("{what} has no seed, so it cannot sign")]
    NoSeed {
        /// Which key.
        what: &'static str,
    },

    /// The issuer verified but is not on the caller's allow-list.
    #[error(
        "issuer {issuer} is not on this host's list of allowed issuers; add it to the allow-list or sign with an allowed account"
    )]
    IssuerNotAllowed {
        /// The token's issuer.
        issuer: String,
    },

    /// The claims name another issuer than the key asked to sign them.
    #[error(
        "claims name issuer {claimed}, but the signing key is {signer}; sign with the issuer's seed"
    )]
    IssuerMismatch {
        /// `iss` in the claims.
        claimed: String,
        /// Public key of the signing seed.
        signer: String,
    },

    /// Serialising claims failed (only with metadata types that cannot be JSON).
    #[error("could not encode claims as JSON: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z); later JWT times are shown raw.
const LAST_RFC3339_SECOND: u64 = 253_402_300_799;

/// RFC 3339 rendering of a JWT time, for messages. Token times are input: a huge `exp` must
/// print, not overflow `SystemTime`.
pub fn human(secs: u64) -> String {
    match UNIX_EPOCH.checked_add(Duration::from_secs(secs)) {
        Some(t) if secs <= LAST_RFC3339_SECOND => humantime::format_rfc3339_seconds(t).to_string(),
        _ => format!("{secs} s after the Unix epoch"),
    }
}
