use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmio_core::{DeviceTable, MmioEvent};

use crate::jsonl::JsonLinesReader;
use crate::panda_json::PandaJsonReader;
use crate::parquet_format::ParquetReader;
use crate::{ExportError, Format, TraceInfo};

enum Source {
    PandaJson(PandaJsonReader<BufReader<File>>),
    JsonLines(JsonLinesReader<BufReader<File>>),
    Parquet(Box<ParquetReader>),
}

/// Streams the events of a trace file of any format, without loading it. Device names
/// are interned into [`TraceReader::devices`] as they are met. Stops after the first
/// error.
pub struct TraceReader {
    path: PathBuf,
    format: Format,
    source: Source,
    devices: Arc<DeviceTable>,
    failed: bool,
}

/// Opens `path`, choosing the reader by its extension.
pub fn open_trace(path: &Path) -> Result<TraceReader, ExportError> {
    let format = Format::from_path(path)?;
    let devices = Arc::new(DeviceTable::new());
    let open = || {
        File::open(path)
            .map(|f| BufReader::with_capacity(256 * 1024, f))
            .map_err(|e| ExportError::io(path, "cannot open", e))
    };
    let source = match format {
        Format::PandaJson => Source::PandaJson(PandaJsonReader::new(path, open()?)),
        Format::JsonLines => Source::JsonLines(JsonLinesReader::new(path, open()?)),
        Format::Parquet => Source::Parquet(Box::new(ParquetReader::open(path, &devices)?)),
    };
    Ok(TraceReader {
        path: path.to_path_buf(),
        format,
        source,
        devices,
        failed: false,
    })
}

impl TraceReader {
    pub fn path(&self) -> &Path {
        &self.path
    }

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
