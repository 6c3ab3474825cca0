//! Key roles. Keys themselves are `nkeys` key pairs; this module only names their roles and
//! checks that a key plays the role its place in a token requires (an issuer is an account, an
//! actor's subject is a module, a provider's subject is a service).

use crate::ClaimsError;
pub use nkeys::{KeyPair, KeyPairType};

/// The roles a key can have in Weft's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// `A…`: signs (issues) actor and provider tokens.
    Account,
    /// `M…`: the identity of an actor module.
    Module,
    /// `V…`: the identity of a capability provider.
    Service,
    /// `O…`: vouches for accounts.
    Operator,
    /// Server, cluster, user and curve keys: valid nkeys with no place in Weft's claims.
    Other,
}

impl KeyRole {
    /// The role as it reads in a message, with its article.
    pub fn with_article(self) -> &'static str {
        match self {
            KeyRole::Account => "an account",
            KeyRole::Module => "a module",
            KeyRole::Service => "a service",
            KeyRole::Operator => "an operator",
            KeyRole::Other => "another kind of",
        }
    }

    /// The first character of public keys with this role.
    pub fn prefix(self) -> char {
        match self {
            KeyRole::Account => 'A',
            KeyRole::Module => 'M',
            KeyRole::Service => 'V',
            KeyRole::Operator => 'O',
            KeyRole::Other => '?',
        }
    }

    /// A fresh random key pair of this role. `Other` has no single nkeys type and yields `None`.
    pub fn generate(self) -> Option<KeyPair> {
        self.key_pair_type().map(KeyPair::new)
    }

    fn key_pair_type(self) -> Option<KeyPairType> {
        match self {
            KeyRole::Account => Some(KeyPairType::Account),
            KeyRole::Module => Some(KeyPairType::Module),
            KeyRole::Service => Some(KeyPairType::Service),
            KeyRole::Operator => Some(KeyPairType::Operator),
            KeyRole::Other => None,
        }
    }

    /// The role of a key pair (public-only or with seed).
    pub fn of(key: &KeyPair) -> KeyRole {
        match key.key_pair_type() {
            KeyPairType::Account => KeyRole::Account,
            KeyPairType::Module => KeyRole::Module,
            KeyPairType::Service => KeyRole::Service,
            KeyPairType::Operator => KeyRole::Operator,
            _ => KeyRole::Other,
        }
    }
}

/// Parses a public key and checks its role. `what` names the key in the error ("issuer").
pub fn public_key_with_role(
    key: &str,
    role: KeyRole,
    what: &'static str,
) -> Result<KeyPair, ClaimsError> {
    let pair =
        KeyPair::from_public_key(key).map_err(|source| ClaimsError::InvalidKey { what, source })?;
    require_role(&pair, role, what)?;
    Ok(pair)
}

/// Parses a seed (`S…`) and checks the role of its key pair.
pub fn seed_with_role(
    seed: &str,
    role: KeyRole,
    what: &'static str,
) -> Result<KeyPair, ClaimsError> {
    let pair = KeyPair::from_seed(seed.trim())
        .map_err(|source| ClaimsError::InvalidKey { what, source })?;
    require_role(&pair, role, what)?;
    Ok(pair)
}

/// Fails unless `pair` has `role`.
pub fn require_role(pair: &KeyPair, role: KeyRole, what: &'static str) -> Result<(), ClaimsError> {
    let found = KeyRole::of(pair);
    if found == role {
        Ok(())
    } else {
        Err(ClaimsError::WrongKeyRole {
            what,
            expected: role.with_article(),
            prefix: role.prefix(),
            key: pair.public_key(),
            found: found.with_article(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_their_role_prefix() {
        for role in [
            KeyRole::Account,
            KeyRole::Module,
            KeyRole::Service,
            KeyRole::Operator,
        ] {
            let pair = role.generate().unwrap();
            assert!(pair.public_key().starts_with(role.prefix()));
            assert!(
                pair.seed()
                    .unwrap()
                    .starts_with(&format!("S{}", role.prefix()))
            );
            assert_eq!(KeyRole::of(&pair), role);
        }
        assert!(KeyRole::Other.generate().is_none());
    }

    #[test]
    fn module_seed_is_refused_where_an_account_is_required() {
        let module_seed = KeyPair::new_module().seed().unwrap();
        let err = seed_with_role(&module_seed, KeyRole::Account, "issuer seed").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("issuer seed must be an account key (A…)"),
            "{text}"
        );
        assert!(text.contains("is a module"), "{text}");
    }

    #[test]
    fn garbage_key_is_an_invalid_key_error() {
        let err = public_key_with_role("not-a-key", KeyRole::Account, "issuer").unwrap_err();
        assert!(
            matches!(err, ClaimsError::InvalidKey { what: "issuer", .. }),
            "{err}"
        );
    }
}
