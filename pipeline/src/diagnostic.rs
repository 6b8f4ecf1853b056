//! Diagnostics: a user's mistake, where it is, and what to do about it.
//!
//! User mistakes are values of this type, never `Err`s and never panics. Each carries a file and
//! a byte range; lines and columns are computed by whoever shows it ([`crate::render`], the
//! language server).

use std::fmt;
use std::path::PathBuf;

use crate::text::TextRange;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Hint,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Hint => "hint",
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $text:literal, $severity:ident;)*) => {
        /// Stable diagnostic codes: usable in docs, filters and snapshots.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text),* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity),* }
            }
        }
    };
}

codes! {
    YamlSyntax = "yaml-syntax", Error;
    InvalidPipeline = "invalid-pipeline", Error;
    MissingUuid = "missing-uuid", Error;
    MissingType = "missing-type", Error;
    InvalidBlockType = "invalid-block-type", Error;
    InvalidLanguage = "invalid-language", Error;
    InvalidStatus = "invalid-status", Warning;
    InvalidExecutorType = "invalid-executor-type", Warning;
    UnknownUpstream = "unknown-upstream", Warning;
    UnknownDownstream = "unknown-downstream", Warning;
    AsymmetricEdge = "asymmetric-edge", Warning;
    DependencyCycle = "dependency-cycle", Error;
    DuplicateUuid = "duplicate-uuid", Error;
    MissingBlockFile = "missing-block-file", Error;
    FileSourceMismatch = "file-source-mismatch", Warning;
    MissingBlockFunction = "missing-block-function", Error;
    ArgumentCount = "argument-count", Error;
    PythonSyntax = "python-syntax", Error;
    DfOutOfRange = "df-out-of-range", Error;
    UnknownBlockOutput = "unknown-block-output", Error;
    UnknownProfile = "unknown-profile", Error;
    InvalidTrigger = "invalid-trigger", Error;
    PathEscapesProject = "path-escapes-project", Error;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A second place that explains the first (the other end of an edge, the first duplicate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub file: PathBuf,
    pub range: TextRange,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Absolute path of the file the range points into.
    pub file: PathBuf,
    pub range: TextRange,
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn new(code: Code, file: impl Into<PathBuf>, range: TextRange, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: file.into(), range, severity: code.severity(), code, message: message.into(), help: None, related: Vec::new() }
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn severity(mut self, severity: Severity) -> Diagnostic {
        self.severity = severity;
        self
    }

    pub fn related(mut self, file: impl Into<PathBuf>, range: TextRange, message: impl Into<String>) -> Diagnostic {
        self.related.push(Related { file: file.into(), range, message: message.into() });
        self
    }
}
