//! Secrets in link values and provider config: which values are secret, and how they are
//! shown where they must never appear (inventories, logs, banners, errors returned to actors
//! or HTTP clients): as [`MASK`].
//!
//! A value is secret by the name of its key: `password`, `secret`, `token`, `seed`,
//! `credentials`, `key`, or any key ending in `_password`, `_secret`, `_token`, `_seed`,
//! `_credentials` or `_key` (`api_key`, `REDIS_PASSWORD`; case does not matter). And a URL's
//! password is secret wherever the URL appears: `redis://:hunter2@db:6379` is shown as
//! `redis://:***@db:6379`, whatever its key, and inside any error text ([`scrub`]).
//!
//! Masking is for showing only: providers receive the real values.

use std::collections::BTreeMap;

/// What a secret is shown as.
pub const MASK: &str = "***";

const SECRET_NAMES: [&str; 6] = ["password", "secret", "token", "seed", "credentials", "key"];

/// Whether a value under `key` is secret by its name.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|name| {
        key == *name
            || key
                .strip_suffix(name)
                .is_some_and(|rest| rest.ends_with('_') || rest.ends_with('-'))
    })
}

/// `value` as it may be shown under `key`: masked whole if the key is secret, else with any
/// URL password in it masked.
pub fn shown(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        MASK.to_string()
    } else {
        scrub(value)
    }
}

/// `values` as they may be shown.
pub fn shown_values(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(key, value)| (key.clone(), shown(key, value)))
        .collect()
}

/// `text` with the password of every URL in it (`scheme://user:password@host`) masked: for
/// error messages that quote a URL.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the path, query or fragment, or where the URL ends in text.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(after.len());
        let (authority, tail) = after.split_at(end);
        match authority.rfind('@') {
            Some(at) => {
                let (userinfo, host) = authority.split_at(at);
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(userinfo.split_at(colon + 1).0);
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_masked_whole_and_url_passwords_wherever_they_appear() {
        for key in [
            "password",
            "REDIS_PASSWORD",
            "api_key",
            "token",
            "nats-seed",
            "secret",
        ] {
            assert!(is_secret_key(key), "{key}");
            assert_eq!(shown(key, "anything"), MASK);
        }
        for key in ["url", "address", "subscriptions", "keyspace", "monkey"] {
            assert!(!is_secret_key(key), "{key}");
        }
        assert_eq!(shown("address", "0.0.0.0:8080"), "0.0.0.0:8080");
        assert_eq!(
            shown("url", "redis://:hunter2@db:6379/0"),
            "redis://:***@db:6379/0"
        );
        assert_eq!(
            shown("url", "rediss://alice:p@ss@db"),
            "rediss://alice:***@db"
        );
        assert_eq!(shown("url", "redis://alice@db"), "redis://alice@db");
        assert_eq!(
            scrub("Redis at redis://u:pw@h:1 failed INCR; also nats://x:y@n"),
            "Redis at redis://u:***@h:1 failed INCR; also nats://x:***@n"
        );
        assert_eq!(scrub("no url here"), "no url here");
    }
}
