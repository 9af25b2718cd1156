//! Guest PCs named `function+0xoff`: from ELF symbol tables (firmware, `vmlinux`, with
//! file:line from DWARF on request) and from `System.map` / `/proc/kallsyms` text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSymbol, SymbolKind};

/// How far past a sizeless symbol (System.map, kallsyms) a PC is still named after it:
/// the next symbol may be far away (after a module's last function comes the kernel's
/// first, 16 MB on), and a function is rarely longer.
const SIZELESS_SYMBOL_SPAN: u64 = 64 * 1024;

/// One function (or text symbol) of a symbol file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Function {
    address: u64,
    /// Bytes, where the file says (ELF); 0: up to the next symbol.
    size: u64,
    /// The name, with its kernel module's after a space for kallsyms' module lines
    /// (`foo_probe [foo]`).
    name: String,
    /// Where the ` [module]` part of `name` starts, if it has one.
    module_at: Option<usize>,
}

/// The functions of every `--symbols` file, looked up by address.
#[derive(Default)]
pub struct Symbols {
    functions: Functions,
    /// DWARF line tables of the ELF files given, for `--lines`.
    lines: Vec<addr2line::Loader>,
}

/// Functions sorted by address: what names a PC, shareable between threads (the
/// DWARF line tables are not).
#[derive(Default)]
pub struct Functions(Vec<Function>);

impl Symbols {
    /// Loads every file of `paths` (ELF, or `System.map` / `kallsyms` text), with the
    /// ELF files' line tables when `lines`. A missing or malformed file is an error
    /// naming it (and the line, for text).
    pub fn load(paths: &[PathBuf], lines: bool) -> Result<Symbols> {
        let mut functions = Vec::new();
        let mut symbols = Symbols::default();
        for path in paths {
            let data =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            if data.starts_with(b"\x7fELF") {
                functions.extend(elf_functions(path, &data)?);
                if lines {
                    let loader = addr2line::Loader::new(path).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: cannot read its DWARF line tables: {e}",
                            path.display()
                        )
                    })?;
                    symbols.lines.push(loader);
                }
            } else {
                functions.extend(text_functions(path, &data)?);
            }
        }
        functions.sort_by_key(|f| f.address);
        functions.dedup_by(|b, a| a.address == b.address && a.name == b.name);
        symbols.functions = Functions(functions);
        Ok(symbols)
    }

    /// The functions alone, without the line tables.
    pub fn into_functions(self) -> Functions {
        self.functions
    }

    /// Whether there are no functions (no file was given).
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// `function+0xoff` (`function+0xoff [module]` in a kernel module), or `pc` in hex
    /// where no function holds it.
    pub fn describe(&self, pc: u64) -> String {
        self.functions.describe(pc)
    }

    /// The function's name without the offset (module included: `foo_probe [foo]`),
    /// or `None` where no function holds `pc`.
    pub fn function_name(&self, pc: u64) -> Option<&str> {
        self.functions.function_name(pc)
    }

    /// `file:line` of `pc` from the first ELF file whose DWARF knows it.
    pub fn line(&self, pc: u64) -> Option<String> {
        self.lines.iter().find_map(|loader| {
            let location = loader.find_location(pc).ok()??;
            let mut text = location.file?.to_string();
            if let Some(line) = location.line {
                let _ = write!(text, ":{line}");
            }
            Some(text)
        })
    }
}

impl Functions {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The function holding `pc`.
    fn holding(&self, pc: u64) -> Option<&Function> {
        let functions = &self.0;
        let index = functions
            .partition_point(|f| f.address <= pc)
            .checked_sub(1)?;
        let function = &functions[index];
        let offset = pc - function.address;
        let inside = if function.size > 0 {
            offset < function.size
        } else {
            // Up to the next symbol (text files give no sizes), and at most
            // SIZELESS_SYMBOL_SPAN, so that far addresses stay raw.
            offset < SIZELESS_SYMBOL_SPAN
                && functions
                    .get(index + 1)
                    .is_none_or(|next| pc < next.address)
        };
        inside.then_some(function)
    }

    /// `function+0xoff` (`function+0xoff [module]` in a kernel module), or `pc` in hex
    /// where no function holds it.
    pub fn describe(&self, pc: u64) -> String {
        let Some(function) = self.holding(pc) else {
            return format!("{pc:#x}");
        };
        let offset = pc - function.address;
        if offset == 0 {
            return function.name.clone();
        }
        let (name, module) = function
            .name
            .split_at(function.module_at.unwrap_or(function.name.len()));
        format!("{name}+{offset:#x}{module}")
    }

    /// The function's name without the offset (module included: `foo_probe [foo]`),
    /// or `None` where no function holds `pc`.
    pub fn function_name(&self, pc: u64) -> Option<&str> {
        self.holding(pc).map(|function| function.name.as_str())
    }
}

/// The function symbols of an ELF file (Thumb bit cleared).
fn elf_functions(path: &Path, data: &[u8]) -> Result<Vec<Function>> {
    let file = object::File::parse(data)
        .with_context(|| format!("{}: not a readable ELF file", path.display()))?;
    let arm = file.architecture() == object::Architecture::Arm;
    let functions: Vec<Function> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
        .filter_map(|s| {
            let name = s.name().ok()?;
            // `$a`, `$t`, `$d`: Arm mapping symbols, not functions.
            if name.is_empty() || name.starts_with('$') {
                return None;
            }
            let address = if arm { s.address() & !1 } else { s.address() };
            Some(Function {
                address,
                size: s.size(),
                name: name.to_string(),
                module_at: None,
            })
        })
        .collect();
    if functions.is_empty() {
        bail!(
            "{}: the ELF file has no function symbols (stripped?)",
            path.display()
        );
    }
    Ok(functions)
}

/// The text symbols of a `System.map` or `/proc/kallsyms` file: `ADDRESS TYPE NAME`
/// with an optional `[module]`. Other symbol types are skipped; kallsyms of an
/// unprivileged reader (all addresses zero) is refused.
fn text_functions(path: &Path, data: &[u8]) -> Result<Vec<Function>> {
    let text = std::str::from_utf8(data).with_context(|| {
        format!(
            "{}: neither an ELF file nor System.map/kallsyms text",
            path.display()
        )
    })?;
    let mut functions = Vec::new();
    let mut zero = 0usize;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // `nm` lists undefined symbols without an address: `         U memcpy`.
        if line.starts_with(' ') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(address), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            bail!(
                "{}: line {}: expected `ADDRESS TYPE NAME`, got {line:?}",
                path.display(),
                index + 1
            );
        };
        let address = u64::from_str_radix(address, 16).with_context(|| {
            format!(
                "{}: line {}: {address:?} is not a hex address",
                path.display(),
                index + 1
            )
        })?;
        if kind.len() != 1 {
            bail!(
                "{}: line {}: {kind:?} is not a symbol type",
                path.display(),
                index + 1
            );
        }
        // `$a`, `$d`: Arm mapping symbols (kallsyms lists modules' ones), not functions.
        if !matches!(kind, "T" | "t" | "W" | "w") || name.starts_with('$') {
            continue;
        }
        if address == 0 {
            zero += 1;
            continue;
        }
        let (name, module_at) = match fields.next() {
            Some(module) => (format!("{name} {module}"), Some(name.len())),
            None => (name.to_string(), None),
        };
        functions.push(Function {
            address,
            size: 0,
            name,
            module_at,
        });
    }
    if functions.is_empty() {
        if zero > 0 {
            bail!(
                "{}: every address is 0 (kallsyms read without privileges: copy /proc/kallsyms as root)",
                path.display()
            );
        }
        bail!("{}: no text symbols (T or t lines)", path.display());
    }
    Ok(functions)
}

/// Counts per function, for "top functions" lists.
#[derive(Default)]
pub struct FunctionCounts(HashMap<String, u64>);

impl FunctionCounts {
    /// Counts `n` accesses from `function` (`None`: a PC no symbol holds).
    pub fn add(&mut self, function: Option<&str>, n: u64) {
        *self
            .0
            .entry(function.unwrap_or("(no symbol)").to_string())
            .or_default() += n;
    }

    /// The `n` most frequent, most first (ties by name).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self.0.iter().map(|(k, v)| (k.clone(), *v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(contents: &str) -> Result<Symbols> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("System.map");
        std::fs::write(&path, contents)?;
        Symbols::load(&[path], false)
    }

    #[test]
    fn kallsyms_names_functions_and_modules() {
        let symbols = text(
            "c0008000 T stext\nc0100000 D some_data\nc0200000 t pl011_tx_chars\nc0200400 T pl011_int\nbf000000 t foo_probe\t[foo]\nbf000000 t $a\t[foo]\nbf000010 t $d\t[foo]\n",
        )
        .unwrap();
        assert_eq!(symbols.describe(0xc020_0010), "pl011_tx_chars+0x10");
        assert_eq!(symbols.describe(0xc020_0400), "pl011_int");
        // As the kernel prints it: the module after the offset. Mapping symbols
        // (`$a`, `$d`) name nothing and end nothing.
        assert_eq!(symbols.describe(0xbf00_0008), "foo_probe+0x8 [foo]");
        assert_eq!(symbols.describe(0xbf00_0018), "foo_probe+0x18 [foo]");
        // A module's last function does not reach the kernel's first.
        assert_eq!(symbols.describe(0xbf10_0000), "0xbf100000");
        assert_eq!(symbols.describe(0xbf00_0000), "foo_probe [foo]");
        assert_eq!(symbols.function_name(0xbf00_0008), Some("foo_probe [foo]"));
        // Before the first symbol, or far past the last one: raw.
        assert_eq!(symbols.describe(0x1000), "0x1000");
        assert_eq!(symbols.describe(0xc020_0400 + 0xffff), "pl011_int+0xffff");
        assert_eq!(symbols.describe(0xc020_0400 + 0x10000), "0xc0210400");
    }

    #[test]
    fn nm_output_with_undefined_symbols_is_read() {
        let symbols =
            text("         U memcpy\n         w _ITM_deregisterTMCloneTable\n00000040 T main\n")
                .unwrap();
        assert_eq!(symbols.describe(0x44), "main+0x4");
    }

    #[test]
    fn bad_text_names_the_file_and_line() {
        let error = text("c0008000 T stext\nnot a map\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.ends_with("System.map: line 2: \"not\" is not a hex address"),
            "{error}"
        );
        let error = text("c0008000 T\n").err().unwrap().to_string();
        assert!(
            error.ends_with("System.map: line 1: expected `ADDRESS TYPE NAME`, got \"c0008000 T\""),
            "{error}"
        );
        let error = text("00000000 T stext\n00000000 t pl011_int\n")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("every address is 0"), "{error}");
        let error = text("c0100000 D some_data\n").err().unwrap().to_string();
        assert!(
            error.ends_with("System.map: no text symbols (T or t lines)"),
            "{error}"
        );
    }
}
