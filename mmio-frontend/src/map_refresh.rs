//! Keeping a map dumped at start current while the guest changes it.
//!
//! Firmware and kernels map devices at run time (PCI BARs, host-bridge windows, the
//! GT-64120 moving Malta's ISA space), so an `info mtree -f` dump taken before the
//! guest ran goes stale. Stock QEMU's plugin API names the region an access reached,
//! so the decision can tell when the map disagrees (QEMU names a region the map does
//! not have there, or dispatches to an address the map holds nothing or memory at);
//! the first such access to a page then fetches a fresh dump ([`MapFetch`], over QMP
//! for the QEMU plugin) and is decided again with it. A page whose disagreement
//! outlives the refresh (QEMU's own unassigned region, which it names `anon…` as it
//! does a page shared by devices) is settled until the map next changes.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use mmio_core::Space;

use crate::address_space::AddressSpace;
use crate::mtree::{cpu_sections, io_sections};
use crate::qmp::Qmp;

/// Where a fresh `info mtree -f` dump comes from.
pub trait MapFetch: Send {
    /// The dump as QEMU shows it now.
    fn fetch(&mut self) -> Result<String, Box<dyn std::error::Error + Send + Sync>>;
}

/// A dump asked over a QMP socket of the running QEMU (`-qmp unix:PATH,server=on,wait=off`).
pub struct QmpMapFetch {
    path: PathBuf,
    connection: Option<Qmp>,
}

/// How long QEMU may take to answer: it answers from its main loop, which may itself
/// be waiting for the vCPU that asks (pausing every vCPU to quit or reset).
const QMP_TIMEOUT: Duration = Duration::from_secs(5);

impl QmpMapFetch {
    /// Asks the monitor at `path`, connecting at the first refresh.
    pub fn new(path: PathBuf) -> QmpMapFetch {
        QmpMapFetch {
            path,
            connection: None,
        }
    }
}

impl MapFetch for QmpMapFetch {
    fn fetch(&mut self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let qmp = match &mut self.connection {
            Some(qmp) => qmp,
            None => self
                .connection
                .insert(Qmp::connect(&self.path, QMP_TIMEOUT)?),
        };
        let text = qmp.human("info mtree -f");
        if text.is_err() {
            self.connection = None;
        }
        Ok(text?)
    }
}

/// Addresses are checked against the map a page at a time: 1 KiB, the smallest
/// target page (a region shorter than a page makes the whole page one `anon…`
/// subpage for QEMU's plugin API).
const PAGE_BITS: u32 = 10;
/// Pages remembered as checked against the current map (a direct-mapped table).
const CHECKED_SLOTS: usize = 4096;
/// Fetches after which the map is left as it is (a guest remapping without end).
const MAX_FETCHES: u64 = 1000;
/// Failed fetches in a row after which no more are tried (the monitor is gone).
const MAX_FAILURES: u32 = 3;

/// The refresh state a [`crate::access::Decider`] keeps.
pub struct MapRefresh {
    state: Mutex<State>,
    /// Tags of pages checked against the map of the current generation.
    checked: Box<[AtomicU64]>,
    /// Bumped each time the map changes.
    generation: AtomicU64,
    fetches: AtomicU64,
}

struct State {
    source: Box<dyn MapFetch>,
    /// The dump the map was last built from.
    last_dump: String,
    /// Pages whose disagreement a fetch did not resolve, until the map next changes.
    settled: HashSet<u64>,
    /// Fetches that failed since the last one that worked.
    failures: u32,
    /// Too many fetches were made or failed: the map stays as it is.
    stopped: bool,
}

impl MapRefresh {
    /// Refreshes from `source`; `initial_dump` is the dump the map was built from.
    pub fn new(source: Box<dyn MapFetch>, initial_dump: String) -> MapRefresh {
        MapRefresh {
            state: Mutex::new(State {
                source,
                last_dump: initial_dump,
                settled: HashSet::new(),
                failures: 0,
                stopped: false,
            }),
            checked: (0..CHECKED_SLOTS)
                .map(|_| AtomicU64::new(u64::MAX))
                .collect(),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        }
    }

    /// A page of `space`: ports and addresses apart (the top bit; no page number of a
    /// 64-bit address reaches it).
    fn page(space: Space, addr: u64) -> u64 {
        (addr >> PAGE_BITS) | ((space == Space::Io) as u64) << 63
    }

    /// The slot of the page of `addr` and the tag saying it was checked in the current
    /// generation: 38 bits of page (addresses below 2^48), the space, and 25 bits of
    /// generation, so that a tag of a generation 2^25 map changes ago never matches.
    fn tag(&self, space: Space, addr: u64) -> (usize, u64) {
        let page = (addr >> PAGE_BITS) & ((1 << 38) - 1);
        let io = u64::from(space == Space::Io);
        let generation = self.generation.load(Ordering::Acquire) & ((1 << 25) - 1);
        (
            (page as usize ^ io as usize) % CHECKED_SLOTS,
            (page << 26) | (io << 25) | generation,
        )
    }

    /// Whether the page of `addr` in `space` was checked against the current map.
    pub fn is_checked(&self, space: Space, addr: u64) -> bool {
        let (slot, tag) = self.tag(space, addr);
        self.checked[slot].load(Ordering::Relaxed) == tag
    }

    /// Remembers that the page of `addr` in `space` agrees with the current map (or
    /// cannot be made to).
    pub fn mark_checked(&self, space: Space, addr: u64) {
        let (slot, tag) = self.tag(space, addr);
        self.checked[slot].store(tag, Ordering::Relaxed);
    }

    /// QEMU and the map disagree at `addr` of `space` (or the map cannot explain a
    /// port): fetches a fresh dump into `memory` and `io` unless the page is settled.
    /// Returns whether the map changed.
    pub fn refresh(
        &self,
        memory: &AddressSpace,
        io: &AddressSpace,
        space: Space,
        addr: u64,
    ) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let page = Self::page(space, addr);
        if state.stopped || state.settled.contains(&page) {
            return false;
        }
        if self.fetches.load(Ordering::Relaxed) >= MAX_FETCHES {
            tracing::warn!(
                "mmio_trace: the memory map was fetched {MAX_FETCHES} times; later changes keep the names of the last one"
            );
            state.stopped = true;
            return false;
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let dump = match state.source.fetch() {
            Ok(dump) => dump,
            Err(error) => {
                // QEMU's main loop may be waiting for this very vCPU (a reset pauses
                // every vCPU): the fetch times out, and a later one can work.
                state.failures += 1;
                state.stopped = state.failures >= MAX_FAILURES;
                tracing::warn!(
                    "mmio_trace: cannot fetch the memory map ({}){}",
                    crate::ErrorChain(error.as_ref()),
                    if state.stopped {
                        "; devices the guest maps from now on are named from the last one"
                    } else {
                        ""
                    }
                );
                return false;
            }
        };
        state.failures = 0;
        if dump == state.last_dump {
            state.settled.insert(page);
            return false;
        }
        let sections = cpu_sections(&dump).and_then(|cpu| Ok((cpu, io_sections(&dump)?)));
        let (cpu, ports) = match sections {
            Ok(sections) => sections,
            Err(error) => {
                tracing::warn!(
                    "mmio_trace: the memory map fetched is unreadable ({}); keeping the last one",
                    crate::ErrorChain(&error)
                );
                state.stopped = true;
                return false;
            }
        };
        memory.replace(&cpu);
        io.replace(&ports);
        tracing::debug!("mmio_trace: the memory map changed (at {space} {addr:#x})");
        state.last_dump = dump;
        state.settled.clear();
        state.settled.insert(page);
        self.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// The guest wrote where a write can change the map (a PCI BAR, a command
    /// register): every page is checked against QEMU again, and pages whose
    /// disagreement a fetch did not resolve may be fetched for again.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Release);
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .settled
            .clear();
    }

    /// How many fresh maps were fetched.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for MapRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapRefresh")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}
