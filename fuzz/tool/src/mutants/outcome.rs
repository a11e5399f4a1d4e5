//! What happened to one mutant, as the report and `results.json` show it.

use serde::Serialize;

use super::Mutant;

/// What happened to one mutant.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Killed,
    Survived,
    TimedOut,
    Crashed,
    Equivalent,
    /// A patch mutant that did not build (its log is named in `detail`).
    BuildFailed,
    /// A generated mutant of the core that the compiler rejects (cargo-mutants' "unviable"):
    /// not a program, so not counted.
    Unviable,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub id: usize,
    pub key: String,
    pub file: String,
    pub function: String,
    pub line: usize,
    pub operator: &'static str,
    pub original: String,
    pub replacement: String,
    pub status: Status,
    /// The report's signature (killed), the signal or exit status (crashed), or the
    /// argument (equivalent).
    pub detail: String,
    /// The step of the diverging program at which the report came.
    pub step: Option<usize>,
    pub seconds: f64,
    pub programs: u64,
    pub ops: u64,
    /// Listed in the equivalent file and still run (`--check-equivalent`).
    pub listed_equivalent: bool,
    /// A patch mutant's patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

impl Outcome {
    pub(super) fn new(mutant: &Mutant) -> Outcome {
        Outcome {
            id: mutant.id,
            key: mutant.key(),
            file: mutant.file.clone(),
            function: mutant.function.clone(),
            line: mutant.line,
            operator: mutant.operator,
            original: mutant.original.clone(),
            replacement: mutant.replacement.clone(),
            status: Status::Survived,
            detail: String::new(),
            step: None,
            seconds: 0.0,
            programs: 0,
            ops: 0,
            listed_equivalent: false,
            patch: None,
        }
    }

    /// In the score: neither equivalent nor rejected by the compiler.
    pub(super) fn counted(&self) -> bool {
        !matches!(self.status, Status::Equivalent | Status::Unviable)
    }

    pub(super) fn detected(&self) -> bool {
        matches!(
            self.status,
            Status::Killed | Status::TimedOut | Status::Crashed
        )
    }
}
