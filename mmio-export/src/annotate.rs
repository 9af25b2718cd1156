//! Optional name columns, `function` and `register`: what a caller that knows the
//! guest's symbols or registers (`mmio-trace convert --symbols --svd`) adds beside the
//! recorded columns, so that DuckDB and pandas users group by names too.

use std::sync::Arc;

use mmio_core::MmioEvent;

/// Which optional name columns a writer adds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NameColumns {
    /// `function`: the function holding `guest_pc`.
    pub function: bool,
    /// `register`: the register at the accessed address (`PERIPHERAL.REGISTER`).
    pub register: bool,
}

impl NameColumns {
    /// These columns and `function`.
    pub fn with_function(self) -> NameColumns {
        NameColumns {
            function: true,
            ..self
        }
    }

    /// These columns and `register`.
    pub fn with_register(self) -> NameColumns {
        NameColumns {
            register: true,
            ..self
        }
    }

    /// Whether no column is added.
    pub fn is_empty(self) -> bool {
        !self.function && !self.register
    }
}

/// Names events for the optional columns. A writer calls it for every event it
/// writes, from whichever thread writes, so it should look names up, not build them.
pub trait Annotate: Send + Sync {
    /// The columns this annotator fills; the others are not written. Asked once, when
    /// a file is created: the answer must not change.
    fn columns(&self) -> NameColumns;
    /// The function holding the event's `guest_pc`, or `None` (a null).
    fn function(&self, _event: &MmioEvent) -> Option<&str> {
        None
    }
    /// The register the event accessed, or `None` (a null).
    fn register(&self, _event: &MmioEvent) -> Option<&str> {
        None
    }
}

/// A writer's annotator, if any.
pub(crate) type Names = Option<Arc<dyn Annotate>>;

/// The columns `names` fills.
pub(crate) fn columns_of(names: &Names) -> NameColumns {
    names.as_ref().map(|n| n.columns()).unwrap_or_default()
}
