//! The plugin's arguments: `-plugin libmmio_trace_qemu.so,out_log=FILE,...`.
//!
//! QEMU splits plugin arguments on `,`, so lists inside one argument use `+`
//! (`devices=pl011+v7m_systick`).

use std::path::PathBuf;

use mmio_core::{Filter, FilterError};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("missing out_log=FILE (the trace to write: .parquet, .jsonl, .ndjson or .json)")]
    MissingOutLog,
    #[error("unknown argument {key:?} (expected out_log, mtree, icount, skip_sp_pc, machine, progress, devices, ranges, access, kinds)")]
    UnknownKey { key: String },
    #[error("argument {text:?} is not of the form key=value")]
    NotKeyValue { text: String },
    #[error("{key}={value}: expected on or off")]
    BadSwitch { key: &'static str, value: String },
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// Parsed plugin arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginArgs {
    /// Trace file to write; its extension picks the format.
    pub out_log: PathBuf,
    /// An `info mtree -f` dump of the machine, to name devices QEMU leaves anonymous
    /// and to know every region's base (for `offset`).
    pub mtree: Option<PathBuf>,
    /// Count retired instructions per vCPU (`instr_count`).
    pub icount: bool,
    /// Give no memory callback to instructions that address only the stack or a
    /// literal pool (Arm and AArch64 guests; see `addressing`).
    pub skip_sp_pc: bool,
    /// Board name stored in the trace's metadata (QEMU does not tell plugins).
    pub machine: String,
    /// Log the number of events recorded every few seconds.
    pub progress: bool,
    pub filter: Filter,
}

impl PluginArgs {
    /// Parses the raw `key=value` strings QEMU passes.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<PluginArgs, ArgsError> {
        let mut args = PluginArgs {
            skip_sp_pc: true,
            ..PluginArgs::default()
        };
        let mut out_log = None;
        for text in raw {
            let text = text.as_ref();
            let (key, value) = text.split_once('=').ok_or_else(|| ArgsError::NotKeyValue {
                text: text.to_string(),
            })?;
            match key {
                "out_log" => out_log = Some(PathBuf::from(value)),
                "mtree" => args.mtree = Some(PathBuf::from(value)),
                "icount" => args.icount = switch("icount", value)?,
                "skip_sp_pc" => args.skip_sp_pc = switch("skip_sp_pc", value)?,
                "progress" => args.progress = switch("progress", value)?,
                "machine" => args.machine = value.to_string(),
                _ => {
                    if !args.filter.set(key, value)? {
                        return Err(ArgsError::UnknownKey {
                            key: key.to_string(),
                        });
                    }
                }
            }
        }
        args.out_log = out_log
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or(ArgsError::MissingOutLog)?;
        Ok(args)
    }
}

/// QEMU's boolean spellings.
fn switch(key: &'static str, value: &str) -> Result<bool, ArgsError> {
    match value {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(ArgsError::BadSwitch {
            key,
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_argument() {
        let args = PluginArgs::parse(&[
            "out_log=t.parquet",
            "mtree=m.txt",
            "icount=on",
            "skip_sp_pc=off",
            "machine=lm3s6965evb",
            "devices=pl011+v7m_systick",
            "access=w",
        ])
        .unwrap();
        assert_eq!(args.out_log, PathBuf::from("t.parquet"));
        assert_eq!(args.mtree, Some(PathBuf::from("m.txt")));
        assert!(args.icount);
        assert!(!args.progress);
        assert!(!args.skip_sp_pc);
        assert!(PluginArgs::parse(&["out_log=t.json"]).unwrap().skip_sp_pc);
        assert_eq!(args.machine, "lm3s6965evb");
        assert_eq!(
            args.filter,
            Filter::parse("devices=pl011+v7m_systick,access=w").unwrap()
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            PluginArgs::parse(&["mtree=m.txt"]).unwrap_err(),
            ArgsError::MissingOutLog
        );
        assert_eq!(
            PluginArgs::parse(&["out_log=t.json", "colour=red"]).unwrap_err().to_string(),
            "unknown argument \"colour\" (expected out_log, mtree, icount, skip_sp_pc, machine, progress, devices, ranges, access, kinds)"
        );
        assert_eq!(
            PluginArgs::parse(&["out_log=t.json", "icount=maybe"])
                .unwrap_err()
                .to_string(),
            "icount=maybe: expected on or off"
        );
        assert_eq!(
            PluginArgs::parse(&["out_log=t.json", "ranges=1-0"])
                .unwrap_err()
                .to_string(),
            "ranges=1-0: range ends before it starts"
        );
        assert_eq!(
            PluginArgs::parse(&["out_log"]).unwrap_err().to_string(),
            "argument \"out_log\" is not of the form key=value"
        );
    }
}
