//! Property: no mutation of a signed module or of a token panics extraction or verification,
//! and no mutation that changes a byte still verifies.

use crate::{Signer, named, sample_module, with_token};
use proptest::prelude::*;
use std::sync::OnceLock;
use wascap::{Actor, VerifyOptions};

fn signed() -> &'static (Vec<u8>, String) {
    static SIGNED: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let module = Signer::new().sign(&sample_module(), named("prop"));
        let token = wascap::extract_token(&module).unwrap().unwrap();
        (module, token)
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Truncate { len: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

fn apply(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for m in mutations {
        let n = out.len().max(1);
        match *m {
            Mutation::Flip { at, bits } => {
                if let Some(b) = out.get_mut(at % n) {
                    *b ^= bits;
                }
            }
            Mutation::Truncate { len } => out.truncate(len % n),
            Mutation::Insert { at, byte } => out.insert(at % (out.len() + 1), byte),
            Mutation::Remove { at } => {
                if !out.is_empty() {
                    out.remove(at % out.len());
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_module_never_panics_nor_verifies(ms in prop::collection::vec(mutation(), 1..4)) {
        let (module, _) = signed();
        let mutated = apply(module, &ms);
        let _ = wascap::extract_token(&mutated);
        let _ = wascap::module_hash(&mutated);
        let result = wascap::verify_module(&mutated, &VerifyOptions::new());
        prop_assert!(result.is_err() || mutated == *module, "mutation {ms:?} still verified");
    }

    #[test]
    fn mutated_token_never_panics_nor_verifies(ms in prop::collection::vec(mutation(), 1..4)) {
        let (module, token) = signed();
        let mutated = apply(token.as_bytes(), &ms);
        if let Ok(text) = std::str::from_utf8(&mutated) {
            let _ = wascap::jwt::decode::<Actor>(text);
            let result = wascap::jwt::verify_token::<Actor>(text, &VerifyOptions::new());
            prop_assert!(result.is_err() || text == token, "token mutation {ms:?} still verified");
        }
        let result = wascap::verify_module(&with_token(module, &mutated), &VerifyOptions::new());
        prop_assert!(result.is_err() || mutated == token.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut wasmish = b"\0asm\x01\0\0\0".to_vec();
        wasmish.extend_from_slice(&bytes);
        for input in [&bytes, &wasmish] {
            let _ = wascap::extract_token(input);
            prop_assert!(wascap::verify_module(input, &VerifyOptions::new()).is_err());
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            prop_assert!(wascap::jwt::verify_token::<Actor>(text, &VerifyOptions::new()).is_err());
        }
    }
}
