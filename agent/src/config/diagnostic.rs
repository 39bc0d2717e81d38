//! What the configuration check reports: one [`Diagnostic`] per problem, rendered like a
//! compiler's (`FILE:LINE:COL: error: MESSAGE`).

use core::fmt;
use core::ops::Range;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration is refused.
    Error,
    /// The configuration is accepted, but something will not work as written on this host
    /// (for example an interface that does not exist yet).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// A position in the configuration file, both 1-based. The column counts characters, not
/// bytes, so it matches what an editor shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One problem found in a configuration file.
///
/// Displays as `SOURCE:LINE:COL: SEVERITY: MESSAGE`, or `SOURCE: SEVERITY: MESSAGE` when the
/// problem has no position (the file could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file as the operator named it.
    pub source: String,
    pub location: Option<Location>,
    /// What is wrong and what would be valid, without the position or severity prefix.
    pub message: String,
}

impl Diagnostic {
    /// Whether this diagnostic refuses the configuration.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(Location { line, column }) => write!(
                f,
                "{}:{line}:{column}: {}: {}",
                self.source, self.severity, self.message
            ),
            None => write!(f, "{}: {}: {}", self.source, self.severity, self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Byte offsets (what `toml` spans are) to line and column.
pub(super) struct LineIndex<'s> {
    text: &'s str,
    /// Byte offset of the start of every line.
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    pub(super) fn new(text: &'s str) -> Self {
        let starts = core::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// The location of byte `offset`, clamped to the text and to a character boundary.
    pub(super) fn locate(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        Location { line, column }
    }

    /// The location of the start of `span`.
    pub(super) fn locate_span(&self, span: &Range<usize>) -> Location {
        self.locate(span.start)
    }
}
