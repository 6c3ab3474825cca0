//! Shared pieces of Weft's benchmarks: where the built actors are, and how to read a
//! criterion estimate back to print a ratio against its baseline.

use std::path::{Path, PathBuf};

/// The repository's target directory (benchmarks share it).
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// An actor's unsigned wasm as cargo built it; the benchmarks sign it themselves.
pub fn unsigned_actor(name: &str) -> Result<Vec<u8>, String> {
    let path = target_dir()
        .join("wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e}; build the actors first (scripts/test.sh, or weft build)",
            path.display()
        )
    })
}

/// The mean time of a finished criterion benchmark, nanoseconds.
pub fn mean_ns(criterion_dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let file = criterion_dir
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    json.get("mean")?.get("point_estimate")?.as_f64()
}
