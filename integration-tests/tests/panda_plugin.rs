//! The PANDA plugin builds for each supported guest architecture and exports its
//! entry points and C API unmangled (checked with `nm -D` on the built library).
//! PANDA itself is not installable here, so its runtime is not exercised.

use std::process::Command;

use integration_tests::{run_ok, workspace_root};

const EXPORTS: [&str; 6] = [
    "init_plugin",
    "uninit_plugin",
    "get_mmio_events",
    "free_mmio_events",
    "ppp_add_cb_on_mmio_event",
    "ppp_remove_cb_on_mmio_event",
];

#[test]
fn builds_for_arm_aarch64_and_x86_64_with_its_exports() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // A target directory of its own, shared by the three builds: the architectures are
    // exclusive features, and only panda-re and the plugin differ between them.
    let target = workspace_root().join("target/panda-plugin");
    for arch in ["arm", "aarch64", "x86_64"] {
        run_ok(
            Command::new(&cargo)
                .current_dir(workspace_root())
                .args([
                    "build",
                    "-q",
                    "-p",
                    "mmio-panda",
                    "--no-default-features",
                    "--features",
                    arch,
                ])
                .arg("--target-dir")
                .arg(&target),
            "cargo build -p mmio-panda",
        );
        let library = target.join("debug/libpanda_mmio_trace.so");
        let nm = run_ok(
            Command::new("nm")
                .args(["-D", "--defined-only"])
                .arg(&library),
            "nm -D",
        );
        let symbols = String::from_utf8_lossy(&nm.stdout);
        for export in EXPORTS {
            assert!(
                symbols
                    .lines()
                    .any(|l| l.ends_with(&format!(" T {export}"))),
                "{arch}: {export} is not exported"
            );
        }
    }
}
