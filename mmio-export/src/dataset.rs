//! Traces that outgrow one file: a directory of parts (`DIR/part-00000.parquet`, …),
//! each finished atomically once it holds `rotate` events, so a running or killed
//! trace's finished parts are readable at once; and reading several files and
//! directories as one trace set.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmio_core::{DeviceTable, EventSink, MmioEvent, SinkError};

use crate::annotate::{Annotate, Names};
use crate::atomic::Staging;
use crate::reader::open_trace_into;
use crate::{create_staged_writer, ExportError, Format, TraceInfo, TraceReader};

/// Events a part holds unless told otherwise (`rotate=`): 16M.
pub const DEFAULT_ROTATE: u64 = 16_000_000;

/// How to write a trace: [`create_output`]'s options beyond the path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputOptions {
    /// The format: for a directory, of its parts (default Parquet); for a file, it
    /// must agree with the extension.
    pub format: Option<Format>,
    /// Events a part of a directory output holds before the next part starts
    /// (default [`DEFAULT_ROTATE`]); only for directories.
    pub rotate: Option<u64>,
}

/// Whether `path` names a directory output: it ends with `/` or is a directory.
pub fn is_directory_output(path: &Path) -> bool {
    path.as_os_str().to_string_lossy().ends_with('/') || path.is_dir()
}

/// Parses an event count: a plain number, or with a `k` (thousand) or `M` (million)
/// suffix: `500000`, `500k`, `16M`.
pub fn parse_count(text: &str) -> Option<u64> {
    let (digits, scale) = match text.strip_suffix(['k', 'K']) {
        Some(digits) => (digits, 1_000),
        None => match text.strip_suffix('M') {
            Some(digits) => (digits, 1_000_000),
            None => (text, 1),
        },
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// Checks, creating nothing, that `options` fit `path` and that a directory output
/// holds no parts yet: what [`create_output`] checks first, for a caller that wants
/// to fail before starting a long run.
pub fn check_output(path: &Path, options: &OutputOptions) -> Result<(), ExportError> {
    let bad = |message: String| ExportError::BadOutput {
        path: path.to_path_buf(),
        message,
    };
    if !is_directory_output(path) {
        if options.rotate.is_some() {
            return Err(bad(
                "rotate applies to a directory output (end the path with /)".into(),
            ));
        }
        let format = Format::from_path(path)?;
        return match options.format {
            Some(wanted) if wanted != format => Err(bad(format!(
                "the extension says {format}, the format option says {wanted}"
            ))),
            _ => Ok(()),
        };
    }
    if options.format == Some(Format::PandaJson) {
        return Err(bad(
            "a directory of parts is Parquet or JSON Lines (format=parquet or format=jsonl)".into(),
        ));
    }
    if options.rotate == Some(0) {
        return Err(bad("rotate must be at least 1 event".into()));
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(()); // Not there yet: created at the start.
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("part-") || name.starts_with(".part-") {
            return Err(bad(format!(
                "already holds the parts of a trace ({name}): give a new directory"
            )));
        }
    }
    Ok(())
}

/// Creates the writer for `path`: a file (format by extension, as
/// [`create_writer`](crate::create_writer)) or, for a directory ([`is_directory_output`]), a writer of
/// parts `part-NNNNN.parquet` (or `.jsonl`) in it. Fails now for options that do not
/// fit the path ([`check_output`]).
pub fn create_output(
    path: &Path,
    options: &OutputOptions,
    info: TraceInfo,
) -> Result<Box<dyn EventSink>, ExportError> {
    open_output(path, options, info, None)
}

/// [`create_output`] whose files carry the optional name columns `names` fills
/// (`function`, `register`; docs/FORMAT.md). The PANDA JSON format has no room for
/// them: asking it for names is an error.
pub fn create_annotated_output(
    path: &Path,
    options: &OutputOptions,
    info: TraceInfo,
    names: Arc<dyn Annotate>,
) -> Result<Box<dyn EventSink>, ExportError> {
    open_output(path, options, info, Some(names))
}

fn open_output(
    path: &Path,
    options: &OutputOptions,
    info: TraceInfo,
    names: Names,
) -> Result<Box<dyn EventSink>, ExportError> {
    check_output(path, options)?;
    if !is_directory_output(path) {
        return create_staged_writer(path, info, Staging::Beside, names);
    }
    std::fs::create_dir_all(path)
        .map_err(|e| ExportError::io(path, "cannot create the trace directory", e))?;
    let format = options.format.unwrap_or(Format::Parquet);
    Ok(Box::new(PartsWriter {
        dir: path.to_path_buf(),
        extension: format.extension(),
        info,
        names,
        rotate: options.rotate.unwrap_or(DEFAULT_ROTATE),
        part: None,
        parts: 0,
        in_part: 0,
    }))
}

/// Writes a directory of parts, each a complete trace of its own.
struct PartsWriter {
    dir: PathBuf,
    extension: &'static str,
    info: TraceInfo,
    names: Names,
    rotate: u64,
    /// The part being written, created at its first event.
    part: Option<Box<dyn EventSink>>,
    /// Parts started so far.
    parts: u64,
    /// Events in the current part.
    in_part: u64,
}

impl PartsWriter {
    fn start_part(&mut self) -> Result<&mut Box<dyn EventSink>, SinkError> {
        let part = self.part.take();
        let part = match part {
            Some(part) => part,
            None => {
                let path = self
                    .dir
                    .join(format!("part-{:05}.{}", self.parts, self.extension));
                self.parts += 1;
                self.in_part = 0;
                create_staged_writer(
                    &path,
                    self.info.clone(),
                    Staging::Hidden,
                    self.names.clone(),
                )
                .map_err(SinkError::new)?
            }
        };
        Ok(self.part.insert(part))
    }

    fn finish_part(&mut self, devices: &DeviceTable) -> Result<(), SinkError> {
        match self.part.take() {
            Some(mut part) => part.finish(devices),
            None => Ok(()),
        }
    }
}

impl EventSink for PartsWriter {
    fn target(&self) -> String {
        format!("{}/", self.dir.display())
    }

    fn write(&mut self, events: &[MmioEvent], devices: &DeviceTable) -> Result<(), SinkError> {
        let mut rest = events;
        while !rest.is_empty() {
            let rotate = self.rotate;
            let in_part = self.in_part;
            let part = self.start_part()?;
            let take =
                usize::try_from(rotate - in_part).map_or(rest.len(), |room| room.min(rest.len()));
            part.write(&rest[..take], devices)?;
            self.in_part += take as u64;
            rest = &rest[take..];
            if self.in_part == self.rotate {
                self.finish_part(devices)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        match self.part.as_mut() {
            Some(part) => part.flush(),
            None => Ok(()),
        }
    }

    fn finish(&mut self, devices: &DeviceTable) -> Result<(), SinkError> {
        // A trace without events is still one (empty) part, so it has a schema.
        if self.parts == 0 {
            self.start_part()?;
        }
        self.finish_part(devices)
    }
}

/// The trace files of `paths`, in order: each file as given; each directory's trace
/// files (by extension, in its subdirectories too, parts in their numeric order),
/// leaving out hidden names (`.` or `_` first: parts still being written) and not
/// following symbolic links.
pub fn trace_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ExportError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            collect_trace_files(path, &mut files)?;
            if files.len() == before {
                return Err(ExportError::BadOutput {
                    path: path.clone(),
                    message: format!("holds no trace file ({})", Format::SUPPORTED),
                });
            }
            files[before..].sort_by(|a, b| part_order(a).cmp(&part_order(b)));
        } else if path.as_os_str().to_string_lossy().ends_with('/') {
            return Err(ExportError::BadOutput {
                path: path.clone(),
                message: "no such directory".into(),
            });
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Sort key of a directory's files: by directory, then name, with the number of
/// `part-NNNNN` compared as a number (part 100000 comes after part 99999).
fn part_order(path: &Path) -> (Option<&Path>, String, u64, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let number = name
        .strip_prefix("part-")
        .and_then(|rest| rest.split('.').next())
        .and_then(|digits| digits.parse::<u64>().ok());
    match number {
        Some(number) => (path.parent(), "part-".into(), number, name),
        None => (path.parent(), name.clone(), 0, name),
    }
}

fn collect_trace_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ExportError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ExportError::io(dir, "cannot list the directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ExportError::io(dir, "cannot list the directory", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        // The entry's own type: a symbolic link is neither followed nor read.
        let kind = entry
            .file_type()
            .map_err(|e| ExportError::io(&path, "cannot stat", e))?;
        if kind.is_dir() {
            collect_trace_files(&path, files)?;
        } else if kind.is_file() && !name.ends_with(".partial") && Format::from_path(&path).is_ok()
        {
            files.push(path);
        }
    }
    Ok(())
}

/// Several trace files and directories read as one trace: their events in turn, with
/// one device table for all (a device of the same name and base is one device).
pub struct TraceSet {
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<TraceReader>,
    devices: Arc<DeviceTable>,
    failed: bool,
}

impl TraceSet {
    /// The trace set of `paths` (files and directories, see [`trace_files`]). Each
    /// file is opened when its turn comes; the first is opened now, so that a bad
    /// first file fails here.
    pub fn open(paths: &[PathBuf]) -> Result<TraceSet, ExportError> {
        let mut set = TraceSet {
            files: trace_files(paths)?,
            next_file: 0,
            current: None,
            devices: Arc::new(DeviceTable::new()),
            failed: false,
        };
        set.open_next()?;
        Ok(set)
    }

    fn open_next(&mut self) -> Result<bool, ExportError> {
        let Some(path) = self.files.get(self.next_file) else {
            return Ok(false);
        };
        self.next_file += 1;
        self.current = Some(open_trace_into(path, Arc::clone(&self.devices))?);
        Ok(true)
    }

    /// Every file of the set, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The file being read (the last one once iteration is over).
    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(TraceReader::path)
    }

    /// The run facts of the file being read, where its format stores them.
    pub fn info(&self) -> Option<&TraceInfo> {
        self.current.as_ref().and_then(TraceReader::info)
    }

    /// Devices met so far in all files.
    pub fn devices(&self) -> &Arc<DeviceTable> {
        &self.devices
    }
}

impl Iterator for TraceSet {
    type Item = Result<MmioEvent, ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(event) = self.current.as_mut()?.next() {
                self.failed = event.is_err();
                return Some(event);
            }
            match self.open_next() {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
