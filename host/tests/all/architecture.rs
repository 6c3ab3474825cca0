//! STYLE.md §1: the runtime never names a concrete provider. Only the CLI and the manifest
//! wire them in; the host knows the Provider trait and contract ids.

use std::process::Command;

#[test]
fn weft_host_depends_on_no_concrete_provider() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "weft-host",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(
        tree.contains("weft-provider-sdk"),
        "the host should build on the provider SDK:\n{tree}"
    );
    for concrete in [
        "weft-http-server",
        "weft-keyvalue-memory",
        "weft-keyvalue-redis",
        "weft-messaging-nats",
        "hyper ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(concrete)),
            "weft-host depends on {concrete}:\n{tree}"
        );
    }
}
