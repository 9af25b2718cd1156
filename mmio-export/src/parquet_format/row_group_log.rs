//! The row-group log, `FILE.partial.rowgroups`: both halves of its format.
//!
//! A Parquet file is only readable once its footer is written at the end. So that a
//! killed run still leaves something, the writer appends each completed row group's
//! metadata to this log, one record per group:
//! `[u32 little-endian length][Thrift footer of a file holding just that group]`.
//! Recovery reads the records back and keeps the groups whose bytes all reached
//! `FILE.partial`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parquet::errors::ParquetError;
use parquet::file::metadata::{
    FileMetaData, ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter, RowGroupMetaData,
};

use super::schema::info_metadata;
use crate::{ExportError, TraceInfo};

/// The writer's half: an append-only log beside `FILE.partial`.
pub(super) struct RowGroupLog {
    file: File,
    path: PathBuf,
    /// Row groups of the writer already in the log.
    logged: usize,
}

impl RowGroupLog {
    /// `FILE.partial.rowgroups` for `partial` = `FILE.partial`.
    pub fn path_for(partial: &Path) -> PathBuf {
        let mut name = partial.as_os_str().to_owned();
        name.push(".rowgroups");
        PathBuf::from(name)
    }

    /// Creates an empty log for `partial`.
    pub fn create(partial: &Path) -> Result<RowGroupLog, ExportError> {
        let path = Self::path_for(partial);
        let file = File::create(&path)
            .map_err(|e| ExportError::io(&path, "cannot create the row-group log", e))?;
        Ok(RowGroupLog {
            file,
            path,
            logged: 0,
        })
    }

    /// The groups of `flushed` (all the writer's completed row groups) not logged yet.
    pub fn unlogged<'a>(&self, flushed: &'a [RowGroupMetaData]) -> &'a [RowGroupMetaData] {
        flushed.get(self.logged..).unwrap_or_default()
    }

    /// Appends `groups`; their bytes must already be in `FILE.partial` (synced), since
    /// recovery trusts what the log names.
    pub fn append(
        &mut self,
        groups: &[RowGroupMetaData],
        info: &TraceInfo,
    ) -> Result<(), ExportError> {
        let mut records = Vec::new();
        for group in groups {
            let footer = single_row_group_footer(group, info).map_err(|e| {
                ExportError::parquet(&self.path, "cannot encode row-group metadata", e)
            })?;
            records.extend_from_slice(&(footer.len() as u32).to_le_bytes());
            records.extend_from_slice(&footer);
        }
        self.file
            .write_all(&records)
            .map_err(|e| ExportError::io(&self.path, "write failed", e))?;
        self.logged += groups.len();
        Ok(())
    }

    /// Deletes the log: the finished file has its footer.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// The recovery half: the metadata of every row group named in the log of
    /// `partial` whose bytes lie within its first `partial_len` bytes, stopping at the
    /// first record cut short by the kill. `None` when no group is complete.
    pub fn read(partial: &Path, partial_len: u64) -> Result<Option<ParquetMetaData>, ExportError> {
        let path = Self::path_for(partial);
        let mut log = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut log))
            .map_err(|e| {
                ExportError::io(
                    &path,
                    "cannot read the row-group log written beside the partial trace",
                    e,
                )
            })?;
        Ok(decode(&log, partial_len))
    }
}

fn single_row_group_footer(
    group: &RowGroupMetaData,
    info: &TraceInfo,
) -> Result<Vec<u8>, ParquetError> {
    let file_metadata = FileMetaData::new(
        1,
        group.num_rows(),
        None,
        Some(info_metadata(info)),
        group.schema_descr_ptr(),
        None,
    );
    let metadata = ParquetMetaData::new(file_metadata, vec![group.clone()]);
    let mut footer = Vec::new();
    ParquetMetaDataWriter::new(&mut footer, &metadata).finish()?;
    // Keep the Thrift bytes only: drop the 4-byte length and the `PAR1` magic.
    footer.truncate(footer.len().saturating_sub(8));
    Ok(footer)
}

/// The log's records as one file's metadata, keeping the complete groups.
fn decode(log: &[u8], partial_len: u64) -> Option<ParquetMetaData> {
    let mut row_groups = Vec::new();
    let mut file_metadata = None;
    let mut rest = log;
    while let Some((length, after)) = rest.split_first_chunk::<4>() {
        let Some(footer) = after.get(..u32::from_le_bytes(*length) as usize) else {
            break; // Cut short by the kill.
        };
        rest = &after[footer.len()..];
        let Ok(metadata) = ParquetMetaDataReader::decode_metadata(footer) else {
            break;
        };
        let complete = metadata.row_groups().iter().all(|group| {
            group.columns().iter().all(|column| {
                let start = column
                    .dictionary_page_offset()
                    .unwrap_or(column.data_page_offset());
                u64::try_from(start)
                    .ok()
                    .zip(u64::try_from(column.compressed_size()).ok())
                    .is_some_and(|(start, len)| start.saturating_add(len) <= partial_len)
            })
        });
        if !complete {
            break;
        }
        file_metadata.get_or_insert_with(|| metadata.file_metadata().clone());
        row_groups.extend(metadata.row_groups().iter().cloned());
    }
    let first = file_metadata?;
    let rows = row_groups.iter().map(RowGroupMetaData::num_rows).sum();
    let file_metadata = FileMetaData::new(
        first.version(),
        rows,
        first.created_by().map(str::to_string),
        first.key_value_metadata().cloned(),
        first.schema_descr_ptr(),
        None,
    );
    Some(ParquetMetaData::new(file_metadata, row_groups))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{RecordBatch, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;

    /// A Parquet file of two row groups (never finished) and their log records.
    fn two_groups() -> (tempfile::TempDir, PathBuf, Vec<RowGroupMetaData>) {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("t.parquet.partial");
        let schema = Arc::new(Schema::new(vec![Field::new(
            "seq",
            DataType::UInt64,
            false,
        )]));
        let mut writer =
            ArrowWriter::try_new(File::create(&partial).unwrap(), schema.clone(), None).unwrap();
        for first in [0u64, 100] {
            let column = Arc::new(UInt64Array::from_iter_values(first..first + 100));
            writer
                .write(&RecordBatch::try_new(schema.clone(), vec![column]).unwrap())
                .unwrap();
            writer.flush().unwrap();
        }
        writer.sync().unwrap();
        let groups = writer.flushed_row_groups().to_vec();
        std::mem::forget(writer); // Killed: no footer.
        (dir, partial, groups)
    }

    use std::sync::Arc;

    #[test]
    fn keeps_the_groups_whose_bytes_reached_the_file() {
        let (_dir, partial, groups) = two_groups();
        let mut log = RowGroupLog::create(&partial).unwrap();
        assert_eq!(log.unlogged(&groups).len(), 2);
        log.append(&groups, &TraceInfo::default()).unwrap();
        assert!(log.unlogged(&groups).is_empty());
        let length = std::fs::metadata(&partial).unwrap().len();

        let all = RowGroupLog::read(&partial, length).unwrap().unwrap();
        assert_eq!(all.num_row_groups(), 2);
        assert_eq!(all.file_metadata().num_rows(), 200);

        // The second group's bytes did not all reach the file: only the first is kept.
        let (start, length) = groups[1].columns()[0].byte_range();
        let second_end = start + length;
        let first = RowGroupLog::read(&partial, second_end - 1)
            .unwrap()
            .unwrap();
        assert_eq!(first.num_row_groups(), 1);
        assert_eq!(first.file_metadata().num_rows(), 100);

        // Killed before the first group was complete.
        assert!(RowGroupLog::read(&partial, 10).unwrap().is_none());
    }

    #[test]
    fn stops_at_a_record_cut_short() {
        let (_dir, partial, groups) = two_groups();
        let mut log = RowGroupLog::create(&partial).unwrap();
        log.append(&groups, &TraceInfo::default()).unwrap();
        let path = RowGroupLog::path_for(&partial);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let metadata = RowGroupLog::read(&partial, u64::MAX).unwrap().unwrap();
        assert_eq!(metadata.num_row_groups(), 1);
    }

    #[test]
    fn a_missing_log_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = RowGroupLog::read(&dir.path().join("t.parquet.partial"), 0).unwrap_err();
        assert!(error
            .to_string()
            .ends_with("t.parquet.partial.rowgroups: cannot read the row-group log written beside the partial trace"));
    }
}
