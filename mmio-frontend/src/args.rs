//! The plugin arguments both front ends take (`out_log=`, the filters), the spellings
//! of their switches, and the errors that name a bad argument: one parser, so that the
//! same options give the same files under QEMU and PANDA.
//!
//! QEMU splits plugin arguments on `,`, so lists inside one argument use `+`
//! (`devices=pl011+v7m_systick`).

use std::path::PathBuf;

use mmio_core::{EventSink, Filter, FilterError};
use mmio_export::{parse_count, Format, OutputOptions, TraceInfo};
use thiserror::Error;

use crate::tracer::{MapSource, TracerSetup};

/// A bad plugin argument.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsError {
    /// A key neither front end nor filter knows.
    #[error("unknown argument {key:?} (expected {expected})")]
    UnknownKey {
        /// The key.
        key: String,
        /// The keys this front end takes, comma-separated.
        expected: String,
    },
    /// An argument without `=`.
    #[error("argument {text:?} is not of the form key=value")]
    NotKeyValue {
        /// The argument.
        text: String,
    },
    /// A value that is not one of the listed ones.
    #[error("{key}={value}: expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// The arguments together ask for nothing sensible.
    #[error("{0}")]
    Unusable(&'static str),
    /// A bad filter argument.
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// The arguments of one front end, besides the shared ones.
pub trait FrontEndArgs: Default {
    /// The front end's own keys, for the unknown-argument message.
    const KEYS: &'static [&'static str];
    /// Applies `key=value`; `Ok(false)` when `key` is not the front end's.
    fn set(&mut self, key: &str, value: &str) -> Result<bool, ArgsError>;
}

/// Parsed plugin arguments: the shared ones and the front end's `own`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginArgs<Own> {
    /// Trace to write (`out_log=`, empty for none): a file, whose extension picks the
    /// format, or a directory of parts (a path ending with `/`).
    pub out_log: Option<PathBuf>,
    /// `format=` (parquet, jsonl: the parts' format of a directory output) and
    /// `rotate=` (events a part holds, `k`/`M` suffixes allowed).
    pub output: OutputOptions,
    /// `run=`: the run's name in the `run` column (default a random UUID).
    pub run: Option<String>,
    /// Which events to keep (`devices=`, `ranges=`, `access=`, `kinds=`).
    pub filter: Filter,
    /// The front end's own arguments.
    pub own: Own,
}

/// Keys every front end takes, in the order the messages list them.
const SHARED_KEYS: [&str; 8] = [
    "out_log", "format", "rotate", "run", "devices", "ranges", "access", "kinds",
];
/// How many of [`SHARED_KEYS`] come before the front end's own in messages.
const OUTPUT_KEYS: usize = 4;

impl<Own: FrontEndArgs> PluginArgs<Own> {
    /// Parses `key=value` pairs.
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ArgsError> {
        let mut args = PluginArgs::<Own>::default();
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            if key == "out_log" {
                args.out_log = (!value.is_empty()).then(|| PathBuf::from(value));
            } else if key == "format" {
                args.output.format =
                    Some(value.parse::<Format>().map_err(|_| ArgsError::BadValue {
                        key: key.into(),
                        value: value.into(),
                        expected: "parquet, jsonl or json",
                    })?);
            } else if key == "rotate" {
                args.output.rotate =
                    Some(parse_count(value).filter(|&n| n > 0).ok_or_else(|| {
                        ArgsError::BadValue {
                            key: key.into(),
                            value: value.into(),
                            expected: "a number of events, at least 1 (k and M suffixes allowed)",
                        }
                    })?);
            } else if key == "run" {
                if value.is_empty() {
                    return Err(ArgsError::BadValue {
                        key: key.into(),
                        value: value.into(),
                        expected: "a name for the run",
                    });
                }
                args.run = Some(value.to_string());
            } else if !args.own.set(key, value)? && !args.filter.set(key, value)? {
                let mut expected = SHARED_KEYS[..OUTPUT_KEYS].to_vec();
                expected.extend(Own::KEYS);
                expected.extend(&SHARED_KEYS[OUTPUT_KEYS..]);
                return Err(ArgsError::UnknownKey {
                    key: key.to_string(),
                    expected: expected.join(", "),
                });
            }
        }
        Ok(args)
    }

    /// What the shared tracer starts with: these arguments' output, run name and
    /// filter, the front end's `info`, `map` and `extra_sinks`.
    pub fn tracer_setup<'a>(
        &'a self,
        info: TraceInfo,
        map: MapSource<'a>,
        extra_sinks: Vec<Box<dyn EventSink>>,
    ) -> TracerSetup<'a> {
        TracerSetup {
            out_log: self.out_log.as_deref(),
            output: self.output.clone(),
            filter: self.filter.clone(),
            info: match &self.run {
                Some(run) => info.with_run(run.clone()),
                None => info,
            },
            map,
            extra_sinks,
            map_fetch: None,
        }
    }

    /// Parses QEMU's raw `key=value` strings.
    pub fn parse_raw<S: AsRef<str>>(raw: &[S]) -> Result<Self, ArgsError> {
        let pairs = raw
            .iter()
            .map(|text| {
                text.as_ref()
                    .split_once('=')
                    .ok_or_else(|| ArgsError::NotKeyValue {
                        text: text.as_ref().to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::parse(pairs)
    }
}

/// A switch, spelt as QEMU and PANDA users write them: `on`/`off`, `true`/`false`,
/// `yes`/`no`, `1`/`0`.
pub fn switch(key: &str, value: &str) -> Result<bool, ArgsError> {
    match value {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(ArgsError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            expected: "on or off",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug, PartialEq, Eq)]
    struct Own {
        verbose: bool,
    }

    impl FrontEndArgs for Own {
        const KEYS: &'static [&'static str] = &["verbose"];
        fn set(&mut self, key: &str, value: &str) -> Result<bool, ArgsError> {
            match key {
                "verbose" => self.verbose = switch(key, value)?,
                _ => return Ok(false),
            }
            Ok(true)
        }
    }

    #[test]
    fn shared_and_own_keys() {
        let args = PluginArgs::<Own>::parse_raw(&["out_log=t.parquet", "verbose=yes", "access=w"])
            .unwrap();
        assert_eq!(args.out_log, Some(PathBuf::from("t.parquet")));
        assert!(args.own.verbose);
        assert_eq!(args.filter, Filter::parse("access=w").unwrap());
        assert_eq!(
            PluginArgs::<Own>::parse_raw(&["out_log="]).unwrap().out_log,
            None
        );
    }

    #[test]
    fn output_keys_give_the_tracer_its_output_and_run() {
        let args = PluginArgs::<Own>::parse_raw(&[
            "out_log=traces/",
            "format=jsonl",
            "rotate=500k",
            "run=boot-7",
        ])
        .unwrap();
        assert_eq!(args.output.format, Some(Format::JsonLines));
        assert_eq!(args.output.rotate, Some(500_000));
        let setup = args.tracer_setup(TraceInfo::default(), MapSource::Empty, Vec::new());
        assert_eq!(setup.out_log, Some(std::path::Path::new("traces/")));
        assert_eq!(setup.output, args.output);
        assert_eq!(setup.info.run, "boot-7");
        // Without run=, the run keeps the name it was started with: a new UUID each.
        let args = PluginArgs::<Own>::parse_raw(&["out_log=t.parquet"]).unwrap();
        let started = TraceInfo::now("qemu", "arm", "virt", 4);
        let setup = args.tracer_setup(started.clone(), MapSource::Empty, Vec::new());
        assert_eq!(setup.info.run, started.run);
        let other = TraceInfo::now("qemu", "arm", "virt", 4);
        assert_eq!(started.run.len(), 36, "a UUID: {}", started.run);
        assert_ne!(started.run, other.run);
    }

    #[test]
    fn every_switch_spelling_means_the_same_in_both_front_ends() {
        for on in ["on", "true", "yes", "1"] {
            assert_eq!(switch("k", on), Ok(true));
        }
        for off in ["off", "false", "no", "0"] {
            assert_eq!(switch("k", off), Ok(false));
        }
        assert_eq!(
            switch("icount", "maybe").unwrap_err().to_string(),
            "icount=maybe: expected on or off"
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            PluginArgs::<Own>::parse_raw(&["colour=red"]).unwrap_err().to_string(),
            "unknown argument \"colour\" (expected out_log, format, rotate, run, verbose, devices, ranges, access, kinds)"
        );
        let error = |arg: &str| {
            PluginArgs::<Own>::parse_raw(&[arg])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error("format=csv"),
            "format=csv: expected parquet, jsonl or json"
        );
        assert_eq!(
            error("rotate=0"),
            "rotate=0: expected a number of events, at least 1 (k and M suffixes allowed)"
        );
        assert_eq!(
            error("rotate=lots"),
            "rotate=lots: expected a number of events, at least 1 (k and M suffixes allowed)"
        );
        assert_eq!(error("run="), "run=: expected a name for the run");
        assert_eq!(
            PluginArgs::<Own>::parse_raw(&["out_log"])
                .unwrap_err()
                .to_string(),
            "argument \"out_log\" is not of the form key=value"
        );
        assert_eq!(
            PluginArgs::<Own>::parse_raw(&["ranges=1-0"])
                .unwrap_err()
                .to_string(),
            "ranges=1-0: range ends before it starts"
        );
    }
}
