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
    /// The columns named by `function` and `register`.
    pub fn new(function: bool, register: bool) -> NameColumns {
        NameColumns { function, register }
    }

    /// Whether no column is added.
    pub fn is_empty(self) -> bool {
        !self.function && !self.register
    }
}

/// Names events for the optional columns. Called on the writer's thread for every
/// event, so it should look names up, not build them.
pub trait Annotate: Send + Sync {
    /// The columns this annotator fills; the others are not written.
    fn columns(&self) -> NameColumns;
    /// The function holding the event's `guest_pc`, or `None` (a null).
    fn function(&self, event: &MmioEvent) -> Option<&str>;
    /// The register the event accessed, or `None` (a null).
    fn register(&self, event: &MmioEvent) -> Option<&str>;
}

/// A writer's annotator, if any.
pub(crate) type Names = Option<Arc<dyn Annotate>>;

/// The columns `names` fills.
pub(crate) fn columns_of(names: &Names) -> NameColumns {
    names.as_ref().map(|n| n.columns()).unwrap_or_default()
}
