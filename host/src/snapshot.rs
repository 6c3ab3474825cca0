//! Pre-initialised actor modules, the technique Wizer applies to WASI programs.
//!
//! Every waPC instance must run the guest's start-up (`_start`, then `wapc_init`) before its
//! first call. For a Rust actor that is most of an instance start: the allocator's first
//! `memory.grow` (a system call in the pooling allocator) and fresh pages dirtied for its
//! tables. So the host runs start-up once, in a probe instance, captures the memory and the
//! globals it left, and compiles a module whose data segments and global initialisers *are*
//! that state, with start-up already done: its instances start ready for calls.
//!
//! A snapshot is taken only where it is exactly equivalent to running start-up again, which is
//! checked here ([`plan`]) and by the probe:
//! - the module defines one 32-bit, unshared memory and imports none;
//! - it has no passive data segments, and no instruction that changes a table or drops or
//!   copies a segment at run time (that state is not captured);
//! - every global it defines is numeric (`i32`, `i64`, `f32`, `f64`), so its value can be
//!   written back as a constant;
//! - start-up called no host function and logged nothing (the probe watches): such an effect
//!   would be skipped by a snapshot.
//!
//! Anything else is used as it is, and each instance runs start-up itself: slower, never wrong.

use std::ops::Range;
use wasm_encoder::{
    ConstExpr, DataCountSection, DataSection, ExportKind, ExportSection, GlobalSection, GlobalType,
    MemorySection, MemoryType, Module, RawSection, ValType,
};
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef};

/// The prefix of the exports added so the probe can read every defined global.
const GLOBAL_EXPORT_PREFIX: &str = "__weft_snapshot_global_";

/// Section ids (the binary format's), for the sections rewritten here.
const EXPORT_SECTION: u8 = 7;
const START_SECTION: u8 = 8;
const MEMORY_SECTION: u8 = 5;
const GLOBAL_SECTION: u8 = 6;
const DATA_SECTION: u8 = 11;
const DATA_COUNT_SECTION: u8 = 12;

/// A wasm page (the memory's size is a whole number of them).
const WASM_PAGE_BYTES: usize = 64 << 10;

/// Runs of zero bytes at least this long split the captured memory into separate segments.
const SEGMENT_GAP_BYTES: usize = 1024;

/// A module that can be snapshotted, made ready for its probe.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The module with every defined global exported, for the probe to read.
    pub instrumented: Vec<u8>,
    /// The names those globals are exported under, in global order.
    pub global_exports: Vec<String>,
    /// What [`build`] needs to know of the module (parsed and checked once, here).
    shape: Shape,
}

/// What start-up left behind in the probe instance.
pub(crate) struct Captured {
    /// The whole linear memory.
    pub memory: Vec<u8>,
    /// The value of each defined global, in order.
    pub globals: Vec<wasmtime::Val>,
}

/// A numeric global's type, as the module declares it.
#[derive(Debug, Clone, Copy)]
struct Global {
    val_type: ValType,
    mutable: bool,
}

/// What the rewrite needs to know about a module.
#[derive(Debug)]
struct Shape {
    imported_globals: u32,
    globals: Vec<Global>,
    memory: wasmparser::MemoryType,
}

/// Why a module is used as it is; logged at debug level.
type NotSnapshottable = String;

fn shape(bytes: &[u8]) -> Result<Shape, NotSnapshottable> {
    let mut imported_globals = 0;
    let mut globals = Vec::new();
    let mut memories = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import.map_err(|e| e.to_string())?.ty {
                        TypeRef::Global(_) => imported_globals += 1,
                        TypeRef::Memory(_) => return Err("it imports its memory".into()),
                        _ => {}
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let ty = global.map_err(|e| e.to_string())?.ty;
                    let val_type = match ty.content_type {
                        wasmparser::ValType::I32 => ValType::I32,
                        wasmparser::ValType::I64 => ValType::I64,
                        wasmparser::ValType::F32 => ValType::F32,
                        wasmparser::ValType::F64 => ValType::F64,
                        other => return Err(format!("it has a global of type {other:?}")),
                    };
                    if ty.shared {
                        return Err("it has a shared global".into());
                    }
                    globals.push(Global {
                        val_type,
                        mutable: ty.mutable,
                    });
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    memories.push(memory.map_err(|e| e.to_string())?);
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    if let wasmparser::DataKind::Passive = data.map_err(|e| e.to_string())?.kind {
                        return Err("it has passive data segments".into());
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut operators = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !operators.eof() {
                    let operator = operators.read().map_err(|e| e.to_string())?;
                    if changes_uncaptured_state(&operator) {
                        return Err(format!("its code uses {operator:?}"));
                    }
                }
            }
            _ => {}
        }
    }
    let memory = match memories.as_slice() {
        [memory] if !memory.memory64 && !memory.shared && memory.page_size_log2.is_none() => {
            *memory
        }
        [_] => return Err("its memory is 64-bit, shared or has custom pages".into()),
        _ => return Err(format!("it defines {} memories, not one", memories.len())),
    };
    Ok(Shape {
        imported_globals,
        globals,
        memory,
    })
}

/// Table contents and segment state are not captured, so code that changes them at run time
/// rules a snapshot out.
fn changes_uncaptured_state(operator: &Operator<'_>) -> bool {
    matches!(
        operator,
        Operator::TableSet { .. }
            | Operator::TableGrow { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
            | Operator::ElemDrop { .. }
            | Operator::DataDrop { .. }
            | Operator::MemoryInit { .. }
    )
}

/// Each section of `bytes` as (id, byte range of its contents), in order.
fn sections(bytes: &[u8]) -> Result<Vec<(u8, Range<usize>)>, NotSnapshottable> {
    let mut all = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        if let Some(section) = payload.map_err(|e| e.to_string())?.as_section() {
            all.push(section);
        }
    }
    Ok(all)
}

fn export_kind(kind: ExternalKind) -> Result<ExportKind, NotSnapshottable> {
    Ok(match kind {
        ExternalKind::Func => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
        other => return Err(format!("it exports a {other:?}")),
    })
}

fn raw(bytes: &[u8], id: u8, range: Range<usize>) -> Result<RawSection<'_>, NotSnapshottable> {
    let data = bytes
        .get(range)
        .ok_or_else(|| "a section lies outside the module".to_string())?;
    Ok(RawSection { id, data })
}

/// Checks that `bytes` can be snapshotted and exports its globals for the probe.
pub(crate) fn plan(bytes: &[u8]) -> Result<Plan, NotSnapshottable> {
    let shape = shape(bytes)?;
    let global_exports: Vec<String> = (0..shape.globals.len())
        .map(|i| format!("{GLOBAL_EXPORT_PREFIX}{i}"))
        .collect();
    let mut module = Module::new();
    let mut exported = false;
    for (id, range) in sections(bytes)? {
        if id != EXPORT_SECTION {
            module.section(&raw(bytes, id, range)?);
            continue;
        }
        let reader = wasmparser::ExportSectionReader::new(wasmparser::BinaryReader::new(
            bytes.get(range.clone()).unwrap_or_default(),
            range.start,
        ))
        .map_err(|e| e.to_string())?;
        let mut exports = ExportSection::new();
        for export in reader {
            let export = export.map_err(|e| e.to_string())?;
            exports.export(export.name, export_kind(export.kind)?, export.index);
        }
        for (i, name) in (0u32..).zip(&global_exports) {
            exports.export(name, ExportKind::Global, shape.imported_globals + i);
        }
        module.section(&exports);
        exported = true;
    }
    if !exported {
        return Err("it has no exports".into());
    }
    Ok(Plan {
        instrumented: module.finish(),
        global_exports,
        shape,
    })
}

/// The module `bytes` (which `plan` accepted) with start-up done: memory and globals as
/// `captured`, no start function.
pub(crate) fn build(
    bytes: &[u8],
    plan: &Plan,
    captured: &Captured,
) -> Result<Vec<u8>, NotSnapshottable> {
    let shape = &plan.shape;
    if captured.globals.len() != shape.globals.len() {
        return Err("the probe read a different number of globals".into());
    }
    let pages =
        u64::try_from(captured.memory.len() / WASM_PAGE_BYTES).map_err(|e| e.to_string())?;
    let segments = nonzero_runs(&captured.memory);
    let segment_count = u32::try_from(segments.len()).map_err(|e| e.to_string())?;

    let mut module = Module::new();
    let mut data_written = false;
    let write_data = |module: &mut Module| -> Result<(), NotSnapshottable> {
        let mut data = DataSection::new();
        for run in &segments {
            let offset = i32::try_from(run.start).map_err(|e| e.to_string())?;
            let bytes = captured.memory.get(run.clone()).unwrap_or_default();
            data.active(0, &ConstExpr::i32_const(offset), bytes.iter().copied());
        }
        module.section(&data);
        Ok(())
    };
    for (id, range) in sections(bytes)? {
        match id {
            MEMORY_SECTION => {
                let memory = shape.memory;
                let mut memories = MemorySection::new();
                memories.memory(MemoryType {
                    minimum: pages.max(memory.initial),
                    maximum: memory.maximum,
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                });
                module.section(&memories);
            }
            GLOBAL_SECTION => {
                let reader = wasmparser::GlobalSectionReader::new(wasmparser::BinaryReader::new(
                    bytes.get(range.clone()).unwrap_or_default(),
                    range.start,
                ))
                .map_err(|e| e.to_string())?;
                let mut globals = GlobalSection::new();
                for ((global, shape), value) in reader
                    .into_iter()
                    .zip(&shape.globals)
                    .zip(&captured.globals)
                {
                    let global = global.map_err(|e| e.to_string())?;
                    let init = if shape.mutable {
                        constant(value)?
                    } else {
                        original_init(&global.init_expr)?
                    };
                    globals.global(
                        GlobalType {
                            val_type: shape.val_type,
                            mutable: shape.mutable,
                            shared: false,
                        },
                        &init,
                    );
                }
                module.section(&globals);
            }
            START_SECTION => {}
            DATA_COUNT_SECTION => {
                module.section(&DataCountSection {
                    count: segment_count,
                });
            }
            DATA_SECTION => {
                write_data(&mut module)?;
                data_written = true;
            }
            _ => {
                module.section(&raw(bytes, id, range)?);
            }
        }
    }
    // Without a data section of its own, the data goes last (only custom sections, which
    // may sit anywhere, can follow it).
    if !data_written {
        write_data(&mut module)?;
    }
    Ok(module.finish())
}

fn constant(value: &wasmtime::Val) -> Result<ConstExpr, NotSnapshottable> {
    Ok(match value {
        wasmtime::Val::I32(v) => ConstExpr::i32_const(*v),
        wasmtime::Val::I64(v) => ConstExpr::i64_const(*v),
        wasmtime::Val::F32(bits) => ConstExpr::f32_const(wasm_encoder::Ieee32::new(*bits)),
        wasmtime::Val::F64(bits) => ConstExpr::f64_const(wasm_encoder::Ieee64::new(*bits)),
        _ => return Err("a global holds a reference".into()),
    })
}

/// An initialiser copied as it was (its encoding ends with the `end` opcode, which
/// wasm-encoder adds back).
fn original_init(init: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, NotSnapshottable> {
    let mut reader = init.get_binary_reader();
    let encoded = reader
        .read_bytes(reader.bytes_remaining())
        .map_err(|e| e.to_string())?;
    match encoded.split_last() {
        Some((0x0B, instructions)) => Ok(ConstExpr::raw(instructions.iter().copied())),
        _ => Err("a global initialiser does not end with `end`".into()),
    }
}

/// The byte ranges of `memory` holding anything but zeros, runs closer than
/// [`SEGMENT_GAP_BYTES`] merged (fewer, larger segments make a cheaper memory image).
fn nonzero_runs(memory: &[u8]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut at = 0;
    while let Some(start) = memory
        .get(at..)
        .and_then(|rest| rest.iter().position(|b| *b != 0))
    {
        let start = at + start;
        let end = memory
            .get(start..)
            .and_then(|rest| rest.iter().position(|b| *b == 0))
            .map_or(memory.len(), |len| start + len);
        match runs.last_mut() {
            Some(last) if start - last.end < SEGMENT_GAP_BYTES => last.end = end,
            _ => runs.push(start..end),
        }
        at = end;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_runs_merge_small_gaps_and_split_large_ones() {
        let mut memory = vec![0u8; 8192];
        memory[10] = 1;
        memory[20] = 2;
        memory[5000] = 3;
        assert_eq!(nonzero_runs(&memory), vec![10..21, 5000..5001]);
        assert!(nonzero_runs(&[0; 100]).is_empty());
        assert_eq!(nonzero_runs(&[1, 1]), vec![0..2]);
    }

    #[test]
    fn modules_with_uncapturable_state_are_not_planned() {
        let passive = wat::parse_str(
            r#"(module (memory (export "memory") 1) (data "x") (func (export "f")))"#,
        )
        .unwrap();
        assert!(plan(&passive).unwrap_err().contains("passive"));
        let table = wat::parse_str(
            r#"(module (memory (export "memory") 1) (table 1 funcref)
                 (func (export "f") (table.set (i32.const 0) (ref.null func))))"#,
        )
        .unwrap();
        assert!(plan(&table).unwrap_err().contains("TableSet"));
        let imported =
            wat::parse_str(r#"(module (import "a" "m" (memory 1)) (func (export "f")))"#).unwrap();
        assert!(plan(&imported).unwrap_err().contains("imports its memory"));
    }
}
