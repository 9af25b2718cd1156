//! The plugin arguments both front ends take (`out_log=`, the filters), the spellings
//! of their switches, and the errors that name a bad argument: one parser, so that the
//! same options give the same files under QEMU and PANDA.
//!
//! QEMU splits plugin arguments on `,`, so lists inside one argument use `+`
//! (`devices=pl011+v7m_systick`).

use std::path::PathBuf;

use mmio_core::{Filter, FilterError};
use thiserror::Error;

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
    /// Trace file to write (`out_log=`, empty for none); its extension picks the
    /// format.
    pub out_log: Option<PathBuf>,
    /// Which events to keep (`devices=`, `ranges=`, `access=`, `kinds=`).
    pub filter: Filter,
    /// The front end's own arguments.
    pub own: Own,
}

/// Keys every front end takes, in the order the messages list them.
const SHARED_KEYS: [&str; 5] = ["out_log", "devices", "ranges", "access", "kinds"];

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
            } else if !args.own.set(key, value)? && !args.filter.set(key, value)? {
                let mut expected = vec![SHARED_KEYS[0]];
                expected.extend(Own::KEYS);
                expected.extend(&SHARED_KEYS[1..]);
                return Err(ArgsError::UnknownKey {
                    key: key.to_string(),
                    expected: expected.join(", "),
                });
            }
        }
        Ok(args)
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
            "unknown argument \"colour\" (expected out_log, verbose, devices, ranges, access, kinds)"
        );
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
