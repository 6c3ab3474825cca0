//! Fuzzing (weft_testing::fuzz) of what reads an untrusted module: extracting its token and
//! verifying its claims, from mutations of signed modules and of tokens.

use crate::{Signer, named, sample_module};
use wascap::{Actor, VerifyOptions};

fn seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let signer = Signer::new();
    let modules: Vec<Vec<u8>> = ["a", "fuzzing", "a longer name for a longer token"]
        .iter()
        .map(|name| signer.sign(&sample_module(), named(name)))
        .chain([sample_module()])
        .collect();
    let tokens = modules
        .iter()
        .filter_map(|m| wascap::extract_token(m).unwrap())
        .map(String::into_bytes)
        .collect();
    (modules, tokens)
}

#[test]
fn fuzz_module_extract_and_verify() {
    let (modules, _) = seeds();
    let options = VerifyOptions::new();
    weft_testing::fuzz::run("wascap-module", &modules, |module| {
        wascap::extract_token(module)?;
        wascap::module_hash(module)?;
        wascap::verify_module(module, &options).map(drop)
    });
}

#[test]
fn fuzz_token_decode_and_verify() {
    let (_, tokens) = seeds();
    let options = VerifyOptions::new();
    weft_testing::fuzz::run("wascap-token", &tokens, |token| {
        let text = std::str::from_utf8(token).map_err(|e| e.to_string())?;
        wascap::jwt::decode::<Actor>(text).map_err(|e| e.to_string())?;
        wascap::jwt::verify_token::<Actor>(text, &options)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}
