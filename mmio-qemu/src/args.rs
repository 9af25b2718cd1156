//! The plugin's own arguments, besides those of every front end (`out_log`, the
//! filters: [`mmio_frontend::args`]):
//! `-plugin libmmio_trace_qemu.so,out_log=FILE,mtree=FILE,icount=on,...`.

use std::path::PathBuf;

use mmio_frontend::args::{switch, ArgsError, FrontEndArgs};

/// The plugin's arguments.
pub type PluginArgs = mmio_frontend::args::PluginArgs<QemuOptions>;

/// Which instructions of a translation block get a memory callback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Instrument {
    /// Only the last one: since QEMU 8.2 a device access can only happen in the last
    /// instruction of a block (an instruction reaching I/O elsewhere is re-executed as
    /// a block of its own), so this sees every MMIO access for a fraction of the
    /// callbacks. See docs/ARCHITECTURE.md, "Only the last instruction of a block
    /// reaches a device".
    #[default]
    Last,
    /// Every load and store (minus `skip_sp_pc`): what the tests compare `Last`
    /// against.
    All,
}

/// The arguments only the QEMU plugin takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuOptions {
    /// An `info mtree -f` dump of the machine, to name devices QEMU leaves anonymous
    /// and to know every region's base (for `offset`).
    pub mtree: Option<PathBuf>,
    /// Which instructions of a block get a memory callback.
    pub instrument: Instrument,
    /// Count retired instructions per vCPU (`instr_count`).
    pub icount: bool,
    /// Give no memory callback to instructions that address only the stack or a
    /// literal pool (Arm and AArch64 guests; see `addressing`).
    pub skip_sp_pc: bool,
    /// Board name stored in the trace's metadata (QEMU does not tell plugins).
    pub machine: String,
    /// Log the number of events recorded every few seconds.
    pub progress: bool,
    /// A QMP socket of this QEMU (`-qmp unix:PATH,server=on,wait=off`) to fetch a
    /// fresh map from when the guest maps or moves a device.
    pub qmp: Option<PathBuf>,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            mtree: None,
            instrument: Instrument::Last,
            icount: false,
            skip_sp_pc: true,
            machine: String::new(),
            progress: false,
            qmp: None,
        }
    }
}

impl FrontEndArgs for QemuOptions {
    const KEYS: &'static [&'static str] = &[
        "mtree",
        "instrument",
        "icount",
        "skip_sp_pc",
        "machine",
        "progress",
        "qmp",
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<bool, ArgsError> {
        match key {
            "mtree" => self.mtree = Some(PathBuf::from(value)),
            "qmp" => self.qmp = Some(PathBuf::from(value)),
            "instrument" => {
                self.instrument = match value {
                    "last" => Instrument::Last,
                    "all" => Instrument::All,
                    _ => {
                        return Err(ArgsError::BadValue {
                            key: key.to_string(),
                            value: value.to_string(),
                            expected: "last or all",
                        })
                    }
                }
            }
            "icount" => self.icount = switch(key, value)?,
            "skip_sp_pc" => self.skip_sp_pc = switch(key, value)?,
            "progress" => self.progress = switch(key, value)?,
            "machine" => self.machine = value.to_string(),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Parses the raw `key=value` strings QEMU passes; `out_log` is required.
pub fn parse(raw: &[impl AsRef<str>]) -> Result<PluginArgs, ArgsError> {
    let args = PluginArgs::parse_raw(raw)?;
    if args.out_log.is_none() {
        return Err(ArgsError::Unusable(
            "missing out_log=FILE (the trace to write: .parquet, .jsonl, .ndjson or .json; DIR/ for a directory of parts)",
        ));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use mmio_core::Filter;

    use super::*;

    #[test]
    fn parses_every_argument() {
        let args = parse(&[
            "out_log=t.parquet",
            "mtree=m.txt",
            "icount=on",
            "skip_sp_pc=off",
            "instrument=all",
            "machine=lm3s6965evb",
            "devices=pl011+v7m_systick",
            "access=w",
        ])
        .unwrap();
        assert_eq!(args.out_log, Some(PathBuf::from("t.parquet")));
        let own = &args.own;
        assert_eq!(own.mtree, Some(PathBuf::from("m.txt")));
        assert!(own.icount);
        assert!(!own.progress);
        assert!(!own.skip_sp_pc);
        assert_eq!(own.instrument, Instrument::All);
        assert_eq!(own.machine, "lm3s6965evb");
        assert_eq!(
            args.filter,
            Filter::parse("devices=pl011+v7m_systick,access=w").unwrap()
        );
        let defaults = parse(&["out_log=t.json"]).unwrap().own;
        assert!(defaults.skip_sp_pc);
        assert_eq!(defaults.instrument, Instrument::Last);
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            parse(&["mtree=m.txt"]).unwrap_err().to_string(),
            "missing out_log=FILE (the trace to write: .parquet, .jsonl, .ndjson or .json; DIR/ for a directory of parts)"
        );
        assert_eq!(
            parse(&["out_log=t.json", "colour=red"]).unwrap_err().to_string(),
            "unknown argument \"colour\" (expected out_log, format, rotate, run, mtree, instrument, icount, skip_sp_pc, machine, progress, qmp, devices, ranges, access, kinds)"
        );
        assert_eq!(
            parse(&["out_log=t.json", "icount=maybe"])
                .unwrap_err()
                .to_string(),
            "icount=maybe: expected on or off"
        );
        assert_eq!(
            parse(&["out_log=t.json", "instrument=first"])
                .unwrap_err()
                .to_string(),
            "instrument=first: expected last or all"
        );
    }
}
