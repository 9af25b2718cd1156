//! `-panda mmio_trace:out_log=FILE,retain=BOOL,devices=…,ranges=…,access=…,kinds=…`

use std::path::PathBuf;

use mmio_core::{Filter, FilterError};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("unknown argument {key:?} (expected out_log, retain, devices, ranges, access, kinds)")]
    UnknownKey { key: String },
    #[error("retain={value}: expected true or false")]
    BadRetain { value: String },
    #[error("nothing to do: no out_log=FILE and retain=false")]
    NoOutput,
    #[error(transparent)]
    Filter(#[from] FilterError),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PandaArgs {
    /// Trace file; its extension picks the format.
    pub out_log: Option<PathBuf>,
    /// Keep every event in memory for `get_mmio_events`. Default: on without
    /// `out_log` (the API is then the only consumer), off with it (memory stays bounded).
    pub retain: bool,
    pub filter: Filter,
}

impl PandaArgs {
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<PandaArgs, ArgsError> {
        let mut out_log = None;
        let mut retain = None;
        let mut filter = Filter::default();
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            match key {
                "out_log" if !value.is_empty() => out_log = Some(PathBuf::from(value)),
                "out_log" => out_log = None,
                "retain" => {
                    retain = Some(match value {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        _ => {
                            return Err(ArgsError::BadRetain {
                                value: value.to_string(),
                            })
                        }
                    })
                }
                _ => {
                    if !filter.set(key, value)? {
                        return Err(ArgsError::UnknownKey {
                            key: key.to_string(),
                        });
                    }
                }
            }
        }
        let retain = retain.unwrap_or(out_log.is_none());
        if out_log.is_none() && !retain {
            return Err(ArgsError::NoOutput);
        }
        Ok(PandaArgs {
            out_log,
            retain,
            filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_defaults_follow_out_log() {
        let with_file = PandaArgs::parse(&[("out_log", "t.parquet")]).unwrap();
        assert_eq!(with_file.out_log, Some(PathBuf::from("t.parquet")));
        assert!(!with_file.retain);
        let api_only = PandaArgs::parse::<&str, &str>(&[]).unwrap();
        assert_eq!(api_only.out_log, None);
        assert!(api_only.retain);
        let both = PandaArgs::parse(&[("out_log", "t.jsonl"), ("retain", "true")]).unwrap();
        assert!(both.retain);
    }

    #[test]
    fn filters_and_errors() {
        let args =
            PandaArgs::parse(&[("out_log", "t.json"), ("devices", "pl011+v7m_systick")]).unwrap();
        assert_eq!(
            args.filter,
            Filter::parse("devices=pl011+v7m_systick").unwrap()
        );
        assert_eq!(
            PandaArgs::parse(&[("colour", "red")]).unwrap_err().to_string(),
            "unknown argument \"colour\" (expected out_log, retain, devices, ranges, access, kinds)"
        );
        assert_eq!(
            PandaArgs::parse(&[("retain", "maybe")])
                .unwrap_err()
                .to_string(),
            "retain=maybe: expected true or false"
        );
        assert_eq!(
            PandaArgs::parse(&[("retain", "false")]).unwrap_err(),
            ArgsError::NoOutput
        );
        assert_eq!(
            PandaArgs::parse(&[("access", "x")])
                .unwrap_err()
                .to_string(),
            "access=x: expected r, w or rw"
        );
    }
}
