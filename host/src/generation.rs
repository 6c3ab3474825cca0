//! Which generation of the lineage's actor ABI a module was built for, told from what it
//! imports and exports and which contract ids its claims name (DESIGN.md, Capability
//! contracts):
//!
//! | generation | told by |
//! |---|---|
//! | wasmbus-rpc | exports `__wasmbus_rpc_version` or `__actor_api_version`, or imports from `wasmbus` |
//! | waSCC | its claims name a `wascc:` contract |
//! | wasmCloud 0.15–0.18 | exports `wapc_init` or `_start` (its SDK registers handlers there) |
//!
//! Anything else — a bare waPC guest naming no `wascc:` contract and registering nothing at
//! start-up, or a wasmbus module signed for `wascc:` contracts — cannot be told, and is
//! refused with what to change rather than guessed at.

use wasmparser::Payload;
use weft_contracts::generations::{Generation, is_wascc_contract};

/// Exports only wasmbus-rpc's SDK (and Weft's) writes.
const WASMBUS_EXPORTS: [&str; 2] = ["__wasmbus_rpc_version", "__actor_api_version"];
/// The import module only wasmbus-rpc's SDK uses.
const WASMBUS_IMPORTS: &str = "wasmbus";
/// Start-up exports where wasmCloud 0.15–0.18's SDKs register their handlers.
const REGISTERING_EXPORTS: [&str; 2] = ["wapc_init", "_start"];

/// Why a module's generation could not be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerationError {
    /// Nothing in the module or its claims says which generation it is.
    #[error(
        "cannot tell which ABI generation the actor was built for: it exports neither \
         `__wasmbus_rpc_version` / `__actor_api_version` (wasmbus-rpc) nor `wapc_init` / \
         `_start` (wasmCloud 0.15–0.18), and its claims name no `wascc:` contract (waSCC); \
         build it with one of those SDKs, or export `__wasmbus_rpc_version` from a \
         hand-written guest"
    )]
    Unknown,
    /// It is a wasmbus-rpc module, yet signed for waSCC contracts.
    #[error(
        "the actor is a wasmbus-rpc module (it {marker}) but its claims name waSCC contracts \
         ({contracts}); sign it for the `wasmcloud:` contracts it calls"
    )]
    Mixed {
        /// What marks it as wasmbus-rpc.
        marker: String,
        /// The `wascc:` contracts its claims name.
        contracts: String,
    },
    /// The module did not parse (the engine would refuse it too).
    #[error("the module does not parse: {0}")]
    Malformed(String),
}

/// The generation of `module`, whose claims name `capabilities`.
pub fn of_module(module: &[u8], capabilities: &[String]) -> Result<Generation, GenerationError> {
    let mut wasmbus_marker = None;
    let mut registers = false;
    for payload in wascap::wasm::sections(module) {
        match payload.map_err(|e| GenerationError::Malformed(e.to_string()))? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(|e| GenerationError::Malformed(e.to_string()))?;
                    if import.module == WASMBUS_IMPORTS && wasmbus_marker.is_none() {
                        wasmbus_marker = Some(format!("imports from `{WASMBUS_IMPORTS}`"));
                    }
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export.map_err(|e| GenerationError::Malformed(e.to_string()))?;
                    if WASMBUS_EXPORTS.contains(&export.name) {
                        wasmbus_marker = Some(format!("exports `{}`", export.name));
                    }
                    registers |= REGISTERING_EXPORTS.contains(&export.name);
                }
            }
            _ => {}
        }
    }
    let wascc: Vec<&str> = capabilities
        .iter()
        .map(String::as_str)
        .filter(|c| is_wascc_contract(c))
        .collect();
    match (wasmbus_marker, wascc.is_empty()) {
        (Some(marker), false) => Err(GenerationError::Mixed {
            marker,
            contracts: wascc.join(", "),
        }),
        (Some(_), true) => Ok(Generation::Wasmbus),
        (None, false) => Ok(Generation::Wascc),
        (None, true) if registers => Ok(Generation::WasmCloud018),
        (None, true) => Err(GenerationError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(exports: &str, imports: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(module {imports} (memory (export "memory") 1)
                 (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1) {exports})"#
        ))
        .unwrap()
    }

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn each_generation_is_told_by_its_marks() {
        let version = r#"(func (export "__wasmbus_rpc_version") (result i32) i32.const 1)"#;
        let init = r#"(func (export "wapc_init"))"#;
        let wasmbus_import = r#"(import "wasmbus" "__host_call" (func (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#;
        let kv = caps(&["wasmcloud:keyvalue"]);
        assert_eq!(
            of_module(&module(version, ""), &kv),
            Ok(Generation::Wasmbus)
        );
        assert_eq!(
            of_module(&module("", wasmbus_import), &kv),
            Ok(Generation::Wasmbus)
        );
        assert_eq!(
            of_module(&module(init, ""), &kv),
            Ok(Generation::WasmCloud018)
        );
        assert_eq!(
            of_module(&module("", ""), &caps(&["wascc:http_server"])),
            Ok(Generation::Wascc)
        );
        // A waSCC actor's claims decide even where it has a start-up export.
        assert_eq!(
            of_module(&module(init, ""), &caps(&["wascc:keyvalue"])),
            Ok(Generation::Wascc)
        );
    }

    #[test]
    fn a_module_without_marks_or_with_contradicting_ones_is_refused() {
        let err = of_module(&module("", ""), &caps(&["wasmcloud:keyvalue"])).unwrap_err();
        assert_eq!(err, GenerationError::Unknown);
        assert!(
            err.to_string().contains("export `__wasmbus_rpc_version`"),
            "{err}"
        );
        let version = r#"(func (export "__actor_api_version") (result i32) i32.const 1)"#;
        let err = of_module(&module(version, ""), &caps(&["wascc:keyvalue"])).unwrap_err();
        assert!(
            err.to_string()
                .contains("(it exports `__actor_api_version`) but its claims name waSCC contracts (wascc:keyvalue)"),
            "{err}"
        );
    }
}
