//! What a verifier checks beyond the signature, and the proof that it did.
//!
//! [`Verified<T>`] can only be made inside this crate, after every check passed; a caller that
//! holds one cannot have forgotten a check. (wascap's `validate_token` returned
//! `signature_valid: false` inside `Ok`, and hosts loaded forged actors because nobody looked.)

use crate::ClaimsError;
use crate::claims::unix_now;
use std::collections::BTreeSet;
use std::ops::Deref;

/// Default allowance, in seconds, for clocks that disagree between signer and verifier.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 30;

/// Something that passed verification. Only this crate's verify functions construct it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    value: T,
    token: String,
    hash_checked: bool,
}

impl<T> Verified<T> {
    pub(crate) fn new(value: T, token: String) -> Self {
        Verified {
            value,
            token,
            hash_checked: true,
        }
    }

    /// For a module: whether its hash was checked against its claims. `false` only for a
    /// token of `wascap_revision` below 3 whose hash matches neither way of stripping the
    /// claims (wascap does not check those; see [`VerifyOptions::require_module_hash`]).
    pub fn hash_checked(&self) -> bool {
        self.hash_checked
    }

    pub(crate) fn hash_not_checked(mut self) -> Self {
        self.hash_checked = false;
        self
    }

    /// The raw token (JWT text) the value was verified from.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Gives up the proof and keeps the value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The verifier's policy: its clock, the skew it tolerates, and which issuers it trusts.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    now: Option<u64>,
    clock_skew_secs: u64,
    allowed_issuers: Option<BTreeSet<String>>,
    require_module_hash: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            now: None,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            allowed_issuers: None,
            require_module_hash: false,
        }
    }
}

impl VerifyOptions {
    /// Any issuer, the system clock, [`DEFAULT_CLOCK_SKEW_SECS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies as if the time were `unix_secs` (for tests and for replaying decisions).
    pub fn at(mut self, unix_secs: u64) -> Self {
        self.now = Some(unix_secs);
        self
    }

    /// Sets the tolerated clock skew, applied to both `exp` and `nbf`.
    pub fn clock_skew_secs(mut self, secs: u64) -> Self {
        self.clock_skew_secs = secs;
        self
    }

    /// Trusts only these issuers (account public keys). An empty list is not "any": it trusts
    /// no one; leave the list unset to accept any issuer whose signature verifies.
    pub fn allow_issuers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_issuers = Some(issuers.into_iter().map(Into::into).collect());
        self
    }

    /// Refuses a module whose hash does not match its claims whatever their
    /// `wascap_revision`. By default a token older than revision 3 is taken without its hash
    /// matching, as wascap does (its hashes from before then are computed differently).
    pub fn require_module_hash(mut self) -> Self {
        self.require_module_hash = true;
        self
    }

    pub(crate) fn requires_module_hash(&self) -> bool {
        self.require_module_hash
    }

    fn now(&self) -> u64 {
        self.now.unwrap_or_else(unix_now)
    }

    pub(crate) fn check_times(
        &self,
        expires: Option<u64>,
        not_before: Option<u64>,
    ) -> Result<(), ClaimsError> {
        let now = self.now();
        if let Some(expired_at) = expires
            && now > expired_at.saturating_add(self.clock_skew_secs)
        {
            return Err(ClaimsError::Expired { expired_at, now });
        }
        if let Some(not_before) = not_before
            && now.saturating_add(self.clock_skew_secs) < not_before
        {
            return Err(ClaimsError::NotYetValid { not_before, now });
        }
        Ok(())
    }

    pub(crate) fn check_issuer(&self, issuer: &str) -> Result<(), ClaimsError> {
        match &self.allowed_issuers {
            Some(allowed) if !allowed.contains(issuer) => Err(ClaimsError::IssuerNotAllowed {
                issuer: issuer.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_allowed_on_both_bounds_and_no_more() {
        let opts = VerifyOptions::new().at(1_000).clock_skew_secs(30);
        assert!(opts.check_times(Some(970), None).is_ok());
        assert!(matches!(
            opts.check_times(Some(969), None),
            Err(ClaimsError::Expired { .. })
        ));
        assert!(opts.check_times(None, Some(1_030)).is_ok());
        assert!(matches!(
            opts.check_times(None, Some(1_031)),
            Err(ClaimsError::NotYetValid { .. })
        ));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let opts = VerifyOptions::new().at(u64::MAX).clock_skew_secs(u64::MAX);
        assert!(opts.check_times(Some(u64::MAX), Some(u64::MAX)).is_ok());
        let err = VerifyOptions::new()
            .at(5)
            .check_times(None, Some(u64::MAX))
            .unwrap_err();
        assert!(err.to_string().contains("not valid until"), "{err}");
    }

    #[test]
    fn empty_allow_list_trusts_no_one() {
        let opts = VerifyOptions::new().allow_issuers(Vec::<String>::new());
        assert!(matches!(
            opts.check_issuer("AX"),
            Err(ClaimsError::IssuerNotAllowed { .. })
        ));
        assert!(VerifyOptions::new().check_issuer("AX").is_ok());
    }
}
