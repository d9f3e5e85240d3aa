//! Problems found in a shop's input, collected over a whole pass and reported together.
//!
//! `Err` is for "cannot go on"; content problems are `Diagnostic`s so that one bad product
//! does not hide the other nine.

use std::fmt;

/// How bad a problem is: errors stop the build, warnings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The build goes on.
    Warning,
    /// The build stops and leaves the output untouched.
    Error,
}

/// One problem, with the place that needs fixing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable machine-readable code such as `price-precision`.
    pub code: &'static str,
    /// File relative to the catalog directory, e.g. `products.jsonl`.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Field path inside the record, e.g. `variants[2].price`.
    pub field: Option<String>,
    /// What is wrong, lowercase, without trailing period.
    pub message: String,
    /// For syntax errors: a short excerpt of the line and a caret under the column (two
    /// lines), printed under the message.
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// Where the diagnostic comes in the output: problems reading a file (syntax) first,
    /// then problems of a value, then references between files, which are often the
    /// consequence of the others.
    pub fn rank(&self) -> u8 {
        match self.code {
            "empty-catalog" | "missing-file" | "encoding" | "syntax" => 0,
            "unknown-product" | "unknown-category" | "unchecked" => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}[{}]:", self.code)?;
        if !self.file.is_empty() {
            write!(f, " `{}`", self.file)?;
        }
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, " line {line}:{column}")?,
            (Some(line), None) => write!(f, " line {line}")?,
            _ => {}
        }
        if let Some(field) = &self.field {
            write!(f, ": `{field}`")?;
        }
        if self.file.is_empty() && self.field.is_none() {
            write!(f, " {}", self.message)?;
        } else {
            write!(f, ": {}", self.message)?;
        }
        for line in self.snippet.iter().flat_map(|s| s.lines()) {
            write!(f, "\n    | {line}")?;
        }
        Ok(())
    }
}

/// A list of diagnostics, sorted for output by file and line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Adds an error.
    pub fn error(
        &mut self,
        code: &'static str,
        file: &str,
        line: Option<usize>,
        field: Option<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, code, file, line, field, &message.into());
    }

    /// Adds a warning.
    pub fn warning(
        &mut self,
        code: &'static str,
        file: &str,
        line: Option<usize>,
        field: Option<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, code, file, line, field, &message.into());
    }

    /// Adds a diagnostic with a line and column (`position`), e.g. for a JSON pointer.
    pub fn push_at(
        &mut self,
        severity: Severity,
        code: &'static str,
        file: &str,
        position: Option<(usize, usize)>,
        field: Option<String>,
        message: &str,
    ) {
        self.push(severity, code, file, position.map(|p| p.0), field, message);
        if let Some(last) = self.0.last_mut() {
            last.column = position.map(|p| p.1);
        }
    }

    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        file: &str,
        line: Option<usize>,
        field: Option<String>,
        message: &str,
    ) {
        let message = message.trim().replace('\n', " ");
        self.0.push(Diagnostic {
            severity,
            code,
            file: file.to_owned(),
            line,
            column: None,
            field,
            message,
            snippet: None,
        });
    }

    /// Adds a syntax error at a line and column with an excerpt of the line (`snippet`).
    pub fn syntax(
        &mut self,
        file: &str,
        position: (usize, usize),
        field: Option<String>,
        message: &str,
        snippet: String,
    ) {
        self.push_at(Severity::Error, "syntax", file, Some(position), field, message);
        if let Some(last) = self.0.last_mut() {
            last.snippet = Some(snippet);
        }
    }

    /// Keeps only the diagnostics for which `keep` is true; returns how many were dropped.
    pub fn retain(&mut self, keep: impl FnMut(&Diagnostic) -> bool) -> usize {
        let before = self.0.len();
        self.0.retain(keep);
        before - self.0.len()
    }

    /// Moves all of `other` into `self`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// All diagnostics in a stable order: syntax errors, then the other problems, then
    /// references between files (`Diagnostic::rank`); each by file, line, then insertion.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut all: Vec<&Diagnostic> = self.0.iter().collect();
        all.sort_by(|a, b| (a.rank(), &a.file, a.line).cmp(&(b.rank(), &b.file, b.line)));
        all
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.0.iter().filter(|d| d.severity == Severity::Warning).count()
    }

    /// Iterates in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.sorted() {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}
