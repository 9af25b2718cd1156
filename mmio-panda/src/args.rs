//! `-panda mmio_trace:out_log=FILE,retain=BOOL,devices=…,ranges=…,access=…,kinds=…`:
//! the arguments of every front end ([`mmio_frontend::args`]) and `retain`.

use mmio_frontend::args::{switch, ArgsError, FrontEndArgs};

/// The plugin's arguments.
pub type PandaArgs = mmio_frontend::args::PluginArgs<PandaOptions>;

/// The arguments only the PANDA plugin takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PandaOptions {
    /// Keep every event in memory for `get_mmio_events`: `retain=` as given.
    retain: Option<bool>,
}

impl FrontEndArgs for PandaOptions {
    const KEYS: &'static [&'static str] = &["retain"];

    fn set(&mut self, key: &str, value: &str) -> Result<bool, ArgsError> {
        if key != "retain" {
            return Ok(false);
        }
        self.retain = Some(switch(key, value)?);
        Ok(true)
    }
}

/// Parses the arguments PANDA passes.
pub fn parse<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<PandaArgs, ArgsError> {
    let args = PandaArgs::parse(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
    if !retains(&args) && args.out_log.is_none() {
        return Err(ArgsError::Unusable(
            "nothing to do: no out_log=FILE and retain=false",
        ));
    }
    Ok(args)
}

/// Whether events are kept for `get_mmio_events`: as `retain=` says; by default on
/// without `out_log` (the API is then the only consumer) and off with it (memory stays
/// bounded).
pub fn retains(args: &PandaArgs) -> bool {
    args.own.retain.unwrap_or(args.out_log.is_none())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mmio_core::Filter;

    use super::*;

    #[test]
    fn retention_defaults_follow_out_log() {
        let with_file = parse(&[("out_log", "t.parquet")]).unwrap();
        assert_eq!(with_file.out_log, Some(PathBuf::from("t.parquet")));
        assert!(!retains(&with_file));
        let api_only = parse::<&str, &str>(&[]).unwrap();
        assert_eq!(api_only.out_log, None);
        assert!(retains(&api_only));
        let both = parse(&[("out_log", "t.jsonl"), ("retain", "true")]).unwrap();
        assert!(retains(&both));
        // The same spellings as the QEMU plugin's switches.
        assert!(retains(
            &parse(&[("out_log", "t.jsonl"), ("retain", "on")]).unwrap()
        ));
    }

    #[test]
    fn filters_and_errors() {
        let args = parse(&[("out_log", "t.json"), ("devices", "pl011+v7m_systick")]).unwrap();
        assert_eq!(
            args.filter,
            Filter::parse("devices=pl011+v7m_systick").unwrap()
        );
        assert_eq!(
            parse(&[("colour", "red")]).unwrap_err().to_string(),
            "unknown argument \"colour\" (expected out_log, format, rotate, run, retain, devices, ranges, access, kinds)"
        );
        assert_eq!(
            parse(&[("retain", "maybe")]).unwrap_err().to_string(),
            "retain=maybe: expected on or off"
        );
        assert_eq!(
            parse(&[("retain", "false")]).unwrap_err().to_string(),
            "nothing to do: no out_log=FILE and retain=false"
        );
        assert_eq!(
            parse(&[("access", "z")]).unwrap_err().to_string(),
            "access=z: expected r, w, x or a combination (rw)"
        );
    }
}
