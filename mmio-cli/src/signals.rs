//! Termination signals while `mmio-trace qemu` runs: forwarded to QEMU, which stops the
//! guest and lets the plugin finish the trace, while this program waits for it, prints
//! the summary and exits with QEMU's status. `timeout`, `kill`, CI runners and systemd
//! send SIGTERM to the wrapper alone; a closed terminal sends SIGHUP.

use std::process::Child;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Catches SIGTERM, SIGINT and SIGHUP from its creation until it is dropped.
pub struct Forwarder {
    state: Arc<State>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    /// QEMU's pid once it runs, else 0.
    child: AtomicI32,
    /// The last signal received, else 0.
    received: AtomicI32,
}

impl State {
    fn forward(&self, signal: i32) {
        let pid = self.child.load(Ordering::SeqCst);
        if pid == 0 {
            return;
        }
        if let Ok(signal) = Signal::try_from(signal) {
            // QEMU may have exited already; then there is nothing left to stop.
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

impl Forwarder {
    pub fn install() -> Result<Forwarder> {
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
            .context("cannot install the signal handlers")?;
        let handle = signals.handle();
        let state = Arc::new(State::default());
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("mmio-trace-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    thread_state.received.store(signal, Ordering::SeqCst);
                    thread_state.forward(signal);
                }
            })
            .context("cannot start the signal thread")?;
        Ok(Forwarder {
            state,
            handle,
            thread: Some(thread),
        })
    }

    /// The signal received so far, if any.
    pub fn received(&self) -> Option<i32> {
        match self.state.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// Forwards every later signal to `child`, and one that came while it started.
    pub fn forward_to(&self, child: &Child) {
        let pid = i32::try_from(child.id()).unwrap_or(0);
        self.state.child.store(pid, Ordering::SeqCst);
        if let Some(signal) = self.received() {
            self.state.forward(signal);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
