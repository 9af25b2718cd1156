use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmio_core::{DeviceTable, MmioEvent};

use crate::jsonl::JsonLinesReader;
use crate::panda_json::PandaJsonReader;
use crate::parquet_format::{ParquetReader, SeekableChunks};
use crate::{ExportError, Format, TraceInfo};

/// Buffer of the text formats' readers.
const TEXT_BUFFER: usize = 256 * 1024;

type TextInput = Box<dyn BufRead + Send>;

enum Source {
    PandaJson(PandaJsonReader<TextInput>),
    JsonLines(JsonLinesReader<TextInput>),
    Parquet(Box<ParquetReader>),
}

/// Streams the events of a trace of any format, without loading it. Device names are
/// interned into [`TraceReader::devices`] as they are met. Stops after the first
/// error.
///
/// ```no_run
/// let mut reader = mmio_export::open_trace("trace.parquet".as_ref())?;
/// for event in reader.by_ref() {
///     let event = event?;
///     println!("{:#x} {} {:#x}", event.guest_pc, event.access, event.value);
/// }
/// println!("{} devices", reader.devices().len());
/// # Ok::<(), mmio_export::ExportError>(())
/// ```
pub struct TraceReader {
    path: PathBuf,
    format: Format,
    source: Source,
    devices: Arc<DeviceTable>,
    failed: bool,
}

/// Opens `path`, choosing the reader by its extension ([`Format::from_path`]).
pub fn open_trace(path: &Path) -> Result<TraceReader, ExportError> {
    open_trace_into(path, Arc::new(DeviceTable::new()))
}

/// Opens `path`, interning its devices into `devices`.
pub(crate) fn open_trace_into(
    path: &Path,
    devices: Arc<DeviceTable>,
) -> Result<TraceReader, ExportError> {
    let format = Format::from_path(path)?;
    let file = File::open(path).map_err(|e| ExportError::io(path, "cannot open", e))?;
    let source = match format {
        Format::Parquet => {
            Source::Parquet(Box::new(ParquetReader::from_chunks(path, file, &devices)?))
        }
        text => text_source(
            text,
            path,
            Box::new(BufReader::with_capacity(TEXT_BUFFER, file)),
        ),
    };
    Ok(TraceReader::new(path, format, source, devices))
}

fn text_source(format: Format, name: &Path, input: TextInput) -> Source {
    match format {
        Format::PandaJson => Source::PandaJson(PandaJsonReader::new(name, input)),
        _ => Source::JsonLines(JsonLinesReader::new(name, input)),
    }
}

impl TraceReader {
    fn new(path: &Path, format: Format, source: Source, devices: Arc<DeviceTable>) -> Self {
        TraceReader {
            path: path.to_path_buf(),
            format,
            source,
            devices,
            failed: false,
        }
    }

    /// Reads a trace in `format` from any seekable input: a file, a
    /// `std::io::Cursor` over bytes in memory. `name` stands for the input in errors.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::io::Cursor;
    /// use mmio_export::{Format, TraceReader};
    ///
    /// let line = r#"{"seq":0,"cpu":0,"type":"W","guest_pc":256,"phys_addr":1073790976,"virt_addr":1073790976,"offset":0,"size":4,"value":72,"device":"pl011","device_kind":"device","instr_count":null}"#;
    /// let input = Cursor::new(format!("{line}\n"));
    /// let events: Vec<_> = TraceReader::from_seekable(input, Format::JsonLines, "uart.jsonl")?
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(events[0].value, 72);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_seekable<R: Read + Seek + Send + 'static>(
        input: R,
        format: Format,
        name: impl AsRef<Path>,
    ) -> Result<TraceReader, ExportError> {
        let name = name.as_ref();
        let devices = Arc::new(DeviceTable::new());
        let source = match format {
            Format::Parquet => {
                let chunks = SeekableChunks::new(input)
                    .map_err(|e| ExportError::io(name, "cannot seek", e))?;
                Source::Parquet(Box::new(ParquetReader::from_chunks(
                    name, chunks, &devices,
                )?))
            }
            text => text_source(
                text,
                name,
                Box::new(BufReader::with_capacity(TEXT_BUFFER, input)),
            ),
        };
        Ok(TraceReader::new(name, format, source, devices))
    }

    /// Reads a trace in `format` from a stream that cannot seek (a pipe, standard
    /// input). The text formats stream; Parquet, whose footer comes last, is read into
    /// memory first.
    pub fn from_stream<R: Read + Send + 'static>(
        mut input: R,
        format: Format,
        name: impl AsRef<Path>,
    ) -> Result<TraceReader, ExportError> {
        let name = name.as_ref();
        match format {
            Format::Parquet => {
                let mut bytes = Vec::new();
                input
                    .read_to_end(&mut bytes)
                    .map_err(|e| ExportError::io(name, "cannot read", e))?;
                let devices = Arc::new(DeviceTable::new());
                let chunks = bytes::Bytes::from(bytes);
                let source = Source::Parquet(Box::new(ParquetReader::from_chunks(
                    name, chunks, &devices,
                )?));
                Ok(TraceReader::new(name, format, source, devices))
            }
            text => {
                let devices = Arc::new(DeviceTable::new());
                let source = text_source(
                    text,
                    name,
                    Box::new(BufReader::with_capacity(TEXT_BUFFER, input)),
                );
                Ok(TraceReader::new(name, format, source, devices))
            }
        }
    }

    /// The file read, or the name given for the input.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trace's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Devices met so far (all of them once iteration is over).
    pub fn devices(&self) -> &Arc<DeviceTable> {
        &self.devices
    }

    /// The run's facts, where the format stores them (Parquet).
    pub fn info(&self) -> Option<&TraceInfo> {
        match &self.source {
            Source::Parquet(reader) => reader.info.as_ref(),
            _ => None,
        }
    }
}

impl Iterator for TraceReader {
    type Item = Result<MmioEvent, ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let devices = &self.devices;
        let next = match &mut self.source {
            Source::PandaJson(reader) => reader.next_event(devices),
            Source::JsonLines(reader) => reader.next_event(devices),
            Source::Parquet(reader) => reader.next_event(devices),
        };
        if matches!(next, Some(Err(_))) {
            self.failed = true;
        }
        next
    }
}
