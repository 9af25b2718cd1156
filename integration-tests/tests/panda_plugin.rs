//! The PANDA plugin builds for each supported guest architecture and exports its
//! entry points and C API unmangled (checked with `nm -D` on the built library).
//! PANDA itself is not installable here, so its runtime is not exercised.

use std::process::Command;

use integration_tests::{run_ok, workspace_root};

const EXPORTS: [&str; 8] = [
    "init_plugin",
    "uninit_plugin",
    "get_mmio_events",
    "free_mmio_events",
    "ppp_add_cb_on_mmio_event",
    "ppp_add_cb_on_mmio_event_with_context",
    "ppp_remove_cb_on_mmio_event",
    "ppp_remove_cb_on_mmio_event_with_context",
];

#[test]
fn builds_for_arm_aarch64_and_x86_64_with_its_exports() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The workspace's own target directory: the dependencies the tests were built with
    // are reused, and only panda-re and the plugin are built per architecture (the
    // architectures are exclusive features). A directory of its own rebuilt the whole
    // dependency tree and took most of CI's time.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
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
                .args((!cfg!(debug_assertions)).then_some("--release")),
            "cargo build -p mmio-panda",
        );
        let library = target.join(profile).join("libpanda_mmio_trace.so");
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
