//! `weft claims` driven as a user drives it, on the real echo actor built by the test command.

use crate::{Weft, signed_actor, unsigned_actor};
use std::borrow::Cow;
use wascap::{Actor, Claims, KeyRole};
use wasm_encoder::Section;

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn built_echo_actor_is_signed_and_verifies() {
    let weft = Weft::new();
    let table = weft
        .run(&["claims", "inspect", p(&signed_actor("echo"))])
        .ok();
    assert!(table.contains("echo - Module (verified)"), "{table}");
    assert!(table.contains("Capabilities  none"), "{table}");
    assert!(table.contains("Revision      1"), "{table}");
}

#[test]
fn sign_then_inspect_shows_every_claim() {
    let weft = Weft::new();
    let out = weft.path("echo_s.wasm");
    let signed = weft
        .run(&[
            "claims",
            "sign",
            p(&unsigned_actor("echo")),
            "-o",
            p(&out),
            "--name",
            "echo",
            "-k",
            "-s",
            "--cap",
            "acme:custom",
            "-l",
            "--tag",
            "demo",
            "--rev",
            "4",
            "--ver",
            "0.4.0",
            "--expires-in",
            "30d",
            "--call-alias",
            "echo/main",
        ])
        .ok();
    assert!(
        signed.contains("Capabilities  acme:custom, K/V Store, HTTP Server, Logging"),
        "{signed}"
    );

    let table = weft.run(&["claims", "inspect", p(&out)]).ok();
    for expected in [
        "Version       0.4.0",
        "Revision      4",
        "Call Alias    echo/main",
        "Tags          demo",
        "Can Be Used   immediately",
    ] {
        assert!(table.contains(expected), "missing {expected:?} in\n{table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&weft.run(&["claims", "inspect", "--json", p(&out)]).ok()).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(
        json["capabilities"],
        serde_json::json!([
            "acme:custom",
            "wasmcloud:keyvalue",
            "wasmcloud:httpserver",
            "wasmcloud:builtin:logging"
        ])
    );
    let in_30_days = wascap::unix_now() + 30 * 86_400;
    let expires = json["expires"].as_u64().unwrap();
    assert!(
        expires.abs_diff(in_30_days) < 60,
        "expires {expires}, wanted ~{in_30_days}"
    );
    assert_eq!(
        json["hash"],
        wascap::module_hash(&std::fs::read(&out).unwrap()).unwrap()
    );
}

#[test]
fn keys_are_kept_and_reused_for_the_same_name() {
    let weft = Weft::new();
    let (a, b) = (weft.path("a.wasm"), weft.path("b.wasm"));
    let first = weft
        .run(&[
            "claims",
            "sign",
            p(&unsigned_actor("echo")),
            "-o",
            p(&a),
            "--name",
            "Echo",
        ])
        .ok();
    assert!(first.contains("Generated account key"), "{first}");
    let second = weft
        .run(&[
            "claims",
            "sign",
            p(&unsigned_actor("echo")),
            "-o",
            p(&b),
            "--name",
            "Echo",
        ])
        .ok();
    assert!(!second.contains("Generated"), "{second}");
    let subject = |f: &std::path::Path| {
        let json = weft.run(&["claims", "inspect", "--json", p(f)]).ok();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        (
            v["account"].as_str().unwrap().to_string(),
            v["module"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(subject(&a), subject(&b));
    assert!(weft.path("keys/echo_account.nk").is_file());
    assert!(weft.path("keys/echo_module.nk").is_file());
}

#[test]
fn explicit_issuer_and_subject_from_seed_and_file() {
    let weft = Weft::new();
    let account = KeyRole::Account.generate().unwrap();
    let module = KeyRole::Module.generate().unwrap();
    let module_file = weft.path("module.nk");
    std::fs::write(&module_file, format!("{}\n", module.seed().unwrap())).unwrap();
    let out = weft.path("o.wasm");
    weft.run(&[
        "claims",
        "sign",
        p(&unsigned_actor("echo")),
        "-o",
        p(&out),
        "--name",
        "e",
        "--issuer",
        &account.seed().unwrap(),
        "--subject",
        p(&module_file),
    ])
    .ok();
    let json = weft.run(&["claims", "inspect", "--json", p(&out)]).ok();
    assert!(
        json.contains(&account.public_key()) && json.contains(&module.public_key()),
        "{json}"
    );
    assert!(
        !weft.path("keys").exists(),
        "explicit keys must not touch the key store"
    );

    // The allow-list: this issuer passes, any other is refused.
    weft.run(&[
        "claims",
        "inspect",
        "--issuer-allow",
        &account.public_key(),
        p(&out),
    ])
    .ok();
    let other = KeyRole::Account.generate().unwrap().public_key();
    let err = weft
        .run(&["claims", "inspect", "--issuer-allow", &other, p(&out)])
        .fails();
    assert!(
        err.contains("not on this host's list of allowed issuers"),
        "{err}"
    );
}

#[test]
fn keygen_prints_keys_and_keeps_seeds_private_with_out() {
    let weft = Weft::new();
    for (kind, prefix) in [
        ("account", "A"),
        ("module", "M"),
        ("service", "V"),
        ("operator", "O"),
        ("cluster", "C"),
    ] {
        let out = weft.run(&["claims", "keygen", "--kind", kind]).ok();
        assert!(out.contains(&format!("Public Key: {prefix}")), "{out}");
        assert!(out.contains(&format!("Seed: S{prefix}")), "{out}");
    }
    let dir = weft.path("out");
    let out = weft
        .run(&["claims", "keygen", "--kind", "account", "--out", p(&dir)])
        .ok();
    assert!(
        !out.contains("Seed: SA"),
        "seed printed despite --out: {out}"
    );
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let seed = std::fs::read_to_string(&file).unwrap();
    let key = wascap::keys::seed_with_role(&seed, KeyRole::Account, "seed").unwrap();
    assert!(out.contains(&key.public_key()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn token_prints_the_embedded_jwt() {
    let weft = Weft::new();
    let path = signed_actor("echo");
    let printed = weft.run(&["claims", "token", p(&path)]).ok();
    let embedded = wascap::extract_token(&std::fs::read(&path).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(printed.trim_end(), embedded);
    assert_eq!(embedded.split('.').count(), 3);
    let err = weft
        .run(&["claims", "token", p(&unsigned_actor("echo"))])
        .fails();
    assert!(err.contains("is not signed"), "{err}");
}

// ---- bad input: one line, non-zero exit, the reason named ----

fn signed_echo_bytes() -> Vec<u8> {
    std::fs::read(signed_actor("echo")).unwrap()
}

fn replace_token(module: &[u8], token: &str) -> Vec<u8> {
    let signed_len = module.len();
    let token_now = wascap::extract_token(module).unwrap().unwrap();
    // The token is the last section's payload: cut that section and append a new one.
    let mut out = module.to_vec();
    let section_len = token_now.len() + "wasmcloud_jwt".len() + 1;
    let header = 1 + leb_len(section_len);
    out.truncate(signed_len - section_len - header);
    wasm_encoder::CustomSection {
        name: Cow::Borrowed("wasmcloud_jwt"),
        data: Cow::Borrowed(token.as_bytes()),
    }
    .append_to(&mut out);
    out
}

fn leb_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn inspect_bytes(weft: &Weft, name: &str, bytes: &[u8]) -> String {
    let path = weft.path(name);
    std::fs::write(&path, bytes).unwrap();
    weft.run(&["claims", "inspect", p(&path)]).fails()
}

#[test]
fn inspect_refuses_a_non_wasm_file() {
    let weft = Weft::new();
    let err = inspect_bytes(&weft, "notes.txt", b"hello");
    assert!(
        err.contains("notes.txt does not verify: not a WebAssembly module"),
        "{err}"
    );
}

#[test]
fn inspect_refuses_a_truncated_module() {
    let weft = Weft::new();
    let bytes = signed_echo_bytes();
    let err = inspect_bytes(&weft, "cut.wasm", &bytes[..bytes.len() * 2 / 3]);
    assert!(err.contains("malformed WebAssembly module"), "{err}");
}

#[test]
fn inspect_refuses_a_module_changed_after_signing() {
    let weft = Weft::new();
    let mut bytes = signed_echo_bytes();
    // A byte in the middle of the code: the module still parses, but is not what was signed.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let err = inspect_bytes(&weft, "tampered.wasm", &bytes);
    assert!(err.contains("changed after signing"), "{err}");
}

#[test]
fn inspect_refuses_a_token_resigned_by_another_key() {
    let weft = Weft::new();
    let bytes = signed_echo_bytes();
    let token = wascap::extract_token(&bytes).unwrap().unwrap();
    let (signed_part, _) = token.rsplit_once('.').unwrap();
    let intruder = KeyRole::Account.generate().unwrap();
    let sig = data_encoding_b64(&intruder.sign(signed_part.as_bytes()).unwrap());
    let err = inspect_bytes(
        &weft,
        "resigned.wasm",
        &replace_token(&bytes, &format!("{signed_part}.{sig}")),
    );
    assert!(err.contains("signature does not verify"), "{err}");
}

fn data_encoding_b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn resign(bytes: &[u8], edit: impl FnOnce(&mut Claims<Actor>)) -> Vec<u8> {
    let account = KeyRole::Account.generate().unwrap();
    let module = KeyRole::Module.generate().unwrap();
    let mut claims = Claims::new(account.public_key(), module.public_key(), Actor::default());
    edit(&mut claims);
    wascap::embed_claims(bytes, &claims, &account).unwrap()
}

#[test]
fn inspect_refuses_an_expired_module() {
    let weft = Weft::new();
    let expired = resign(&signed_echo_bytes(), |c| {
        c.expires = Some(wascap::unix_now() - 86_400)
    });
    let err = inspect_bytes(&weft, "expired.wasm", &expired);
    assert!(err.contains("token expired at"), "{err}");
}

#[test]
fn inspect_refuses_a_module_not_yet_valid() {
    let weft = Weft::new();
    let out = weft.path("later.wasm");
    weft.run(&[
        "claims",
        "sign",
        p(&unsigned_actor("echo")),
        "-o",
        p(&out),
        "--name",
        "later",
        "--not-before",
        "1h",
    ])
    .ok();
    let err = weft.run(&["claims", "inspect", p(&out)]).fails();
    assert!(err.contains("token is not valid until"), "{err}");
}

#[test]
fn inspect_refuses_malformed_tokens() {
    let weft = Weft::new();
    let bytes = signed_echo_bytes();
    let good = wascap::extract_token(&bytes).unwrap().unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let alg_hs256 = data_encoding_b64(br#"{"typ":"jwt","alg":"HS256"}"#);
    for (token, expected) in [
        (
            format!("{}.{}", parts[0], parts[1]),
            "expected three dot-separated parts",
        ),
        (
            format!("{}.@@@.{}", parts[0], parts[2]),
            "the claims is not valid base64url",
        ),
        (
            format!("{}.{}.{}", parts[0], data_encoding_b64(b"[1,2]"), parts[2]),
            "the claims is not valid JSON",
        ),
        (
            format!("{alg_hs256}.{}.{}", parts[1], parts[2]),
            "names algorithm \"HS256\"",
        ),
    ] {
        let err = inspect_bytes(&weft, "bad-token.wasm", &replace_token(&bytes, &token));
        assert!(err.contains(expected), "wanted {expected:?}, got {err}");
    }
}

#[test]
fn sign_refuses_a_module_seed_as_issuer() {
    let weft = Weft::new();
    let module_seed = KeyRole::Module.generate().unwrap().seed().unwrap();
    let err = weft
        .run(&[
            "claims",
            "sign",
            p(&unsigned_actor("echo")),
            "-o",
            p(&weft.path("x.wasm")),
            "--name",
            "x",
            "--issuer",
            &module_seed,
        ])
        .fails();
    assert!(
        err.contains("issuer seed must be an account key (A…)"),
        "{err}"
    );
    assert!(
        !weft.path("x.wasm").exists(),
        "refused signing still wrote a file"
    );
}

#[test]
fn sign_names_a_missing_input_and_a_bad_key_argument() {
    let weft = Weft::new();
    let err = weft
        .run(&["claims", "sign", "/nonexistent/a.wasm", "--name", "a"])
        .fails();
    assert!(err.contains("failed to read /nonexistent/a.wasm"), "{err}");
    let err = weft
        .run(&[
            "claims",
            "sign",
            p(&unsigned_actor("echo")),
            "--name",
            "a",
            "--issuer",
            "nope",
        ])
        .fails();
    assert!(
        err.contains("\"nope\" is neither a seed (S…) nor a readable seed file"),
        "{err}"
    );
}

#[test]
fn sign_refuses_non_wasm_input() {
    let weft = Weft::new();
    let text = weft.path("t.wasm");
    std::fs::write(&text, "not wasm").unwrap();
    let err = weft
        .run(&["claims", "sign", p(&text), "--name", "t"])
        .fails();
    assert!(
        err.contains("failed to sign") && err.contains("not a WebAssembly module"),
        "{err}"
    );
}

#[test]
fn a_module_with_an_extra_jwt_section_is_refused() {
    let weft = Weft::new();
    let mut bytes = signed_echo_bytes();
    let token = wascap::extract_token(&bytes).unwrap().unwrap();
    wasm_encoder::CustomSection {
        name: Cow::Borrowed("jwt"),
        data: Cow::Borrowed(token.as_bytes()),
    }
    .append_to(&mut bytes);
    let err = inspect_bytes(&weft, "two.wasm", &bytes);
    assert!(err.contains("2 claims sections"), "{err}");
}
