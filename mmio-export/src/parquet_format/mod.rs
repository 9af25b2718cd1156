//! Parquet: typed columns (unsigned where the value is), zstd, row groups of bounded
//! size written as events arrive, the run's facts and device table as key-value
//! metadata; a killed run's complete row groups recoverable through a row-group log.
//!
//! | module | concern |
//! |---|---|
//! | `schema` | columns, types, key-value metadata |
//! | `columns` | events to Arrow record batches |
//! | `writer` | row-group policy, atomic finish |
//! | `row_group_log` | `FILE.partial.rowgroups`, written and read |
//! | `reader` | record batches to events, decoder panics contained |
//! | `recovery` | a valid file from a killed run's `FILE.partial` |

mod columns;
mod reader;
mod recovery;
mod row_group_log;
mod schema;
mod writer;

pub(crate) use reader::{check_footer, ParquetReader, SeekableChunks};
pub use recovery::{default_recovery_output, recover_parquet, RecoverySummary};
pub(crate) use schema::{check_schema, intern_stored_devices};
pub(crate) use writer::ParquetWriter;
