//! Golden sets for evaluation, in either of two shapes, one JSON object per line:
//!
//! - a **QA row** `{"question": "...", "answers": ["alias", ...]}` is scored by alias
//!   matching ([`crate::cascade::golden::is_correct`], the cascade's own rule);
//! - a **reference row** `{"prompt": "...", "reference": "..."}` is scored by the judge.
//!
//! Both may carry `id`, `segment` (the user segment the row stands for) and `type` (its
//! query type); a row without a type is classified by [`super::classify`]. Other fields
//! are ignored. A file may mix both shapes.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::cascade::golden::{is_correct, normalize};

/// How a row is scored.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// Any of these aliases, by [`is_correct`].
    Aliases(Vec<String>),
    /// A reference answer that the judge compares with.
    Reference(String),
}

impl Expected {
    /// Reference rows are graded by the judge.
    pub fn needs_judge(&self) -> bool {
        matches!(self, Expected::Reference(_))
    }

    /// Alias matching for QA rows; `None` for reference rows, which need the judge.
    pub fn alias_verdict(&self, answer: &str) -> Option<bool> {
        match self {
            Expected::Aliases(aliases) => Some(is_correct(answer, aliases)),
            Expected::Reference(_) => None,
        }
    }

    /// The reference as the judge sees it: the text, or the first few aliases.
    pub fn for_judge(&self) -> String {
        match self {
            Expected::Reference(r) => r.clone(),
            Expected::Aliases(a) => a
                .iter()
                .take(5)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" / "),
        }
    }
}

/// One golden row, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRow {
    pub id: String,
    pub prompt: String,
    pub expected: Expected,
    pub segment: Option<String>,
    pub query_type: Option<String>,
}

/// A golden file: its rows and its identity (path and content hash).
#[derive(Debug, Clone)]
pub struct EvalSet {
    pub path: PathBuf,
    pub sha256: String,
    pub rows: Vec<EvalRow>,
}

impl EvalSet {
    /// Whether any row needs the judge for correctness.
    pub fn needs_judge(&self) -> bool {
        self.rows.iter().any(|r| r.expected.needs_judge())
    }
}

#[derive(Deserialize)]
struct RawRow {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    answers: Option<Vec<String>>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    segment: Option<String>,
    #[serde(default, rename = "type")]
    query_type: Option<String>,
}

/// Reads a golden file (blank lines skipped); a bad row is an error naming its line.
/// Rows without an `id` are named `row-N` by their 0-based position.
pub fn read_set(path: &Path) -> Result<EvalSet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), line_no + 1);
        let raw: RawRow = serde_json::from_str(line).map_err(|e| format!("{}: {e}", at()))?;
        let index = rows.len();
        rows.push(validate(raw, index).map_err(|e| format!("{}: {e}", at()))?);
    }
    if rows.is_empty() {
        return Err(format!("{}: no rows", path.display()));
    }
    Ok(EvalSet {
        path: path.to_path_buf(),
        sha256,
        rows,
    })
}

fn validate(raw: RawRow, index: usize) -> Result<EvalRow, String> {
    let id = match raw.id {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => return Err("`id` must be a string or a number".into()),
        None => format!("row-{index}"),
    };
    let (prompt, expected) = match (raw.question, raw.answers, raw.prompt, raw.reference) {
        (Some(q), Some(answers), None, None) => {
            if answers.iter().all(|a| normalize(a).is_empty()) {
                return Err("no usable answer".into());
            }
            (q, Expected::Aliases(answers))
        }
        (None, None, Some(p), Some(r)) => {
            if r.trim().is_empty() {
                return Err("empty `reference`".into());
            }
            (p, Expected::Reference(r))
        }
        _ => {
            return Err(
                "a row is either {\"question\", \"answers\"} or {\"prompt\", \"reference\"}".into(),
            )
        }
    };
    if prompt.trim().is_empty() {
        return Err("empty question".into());
    }
    let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(EvalRow {
        id,
        prompt,
        expected,
        segment: clean(raw.segment),
        query_type: clean(raw.query_type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.jsonl");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn both_shapes_are_read_with_their_optional_fields() {
        let (_d, p) = write(concat!(
            "{\"id\": \"a\", \"question\": \"Who wrote Emma?\", \"answers\": [\"Jane Austen\"], \"source\": \"x\"}\n",
            "\n",
            "{\"prompt\": \"Name a primary colour.\", \"reference\": \"Red\", \"segment\": \"free\", \"type\": \"list\"}\n",
        ));
        let set = read_set(&p).unwrap();
        assert_eq!(set.rows.len(), 2);
        assert_eq!(set.sha256.len(), 64);
        assert_eq!(set.rows[0].id, "a");
        assert_eq!(
            set.rows[0].expected.alias_verdict("It was Jane Austen."),
            Some(true)
        );
        assert_eq!(set.rows[1].id, "row-1");
        assert_eq!(set.rows[1].segment.as_deref(), Some("free"));
        assert_eq!(set.rows[1].query_type.as_deref(), Some("list"));
        assert_eq!(set.rows[1].expected.alias_verdict("Red"), None);
        assert_eq!(set.rows[1].expected.for_judge(), "Red");
        assert!(set.needs_judge());
    }

    #[test]
    fn bad_rows_name_their_line() {
        for text in [
            "{\"question\": \"q\", \"answers\": [\"x1\"]}\n{\"question\": \"q\"}\n",
            "{\"question\": \"q\", \"answers\": [\"x1\"]}\n{\"prompt\": \"p\", \"answers\": [\"x1\"]}\n",
            "{\"question\": \"q\", \"answers\": [\"x1\"]}\n{\"question\": \"q\", \"answers\": [\"...\"]}\n",
            "{\"question\": \"q\", \"answers\": [\"x1\"]}\nnot json\n",
        ] {
            let (_d, p) = write(text);
            let e = read_set(&p).unwrap_err();
            assert!(e.contains(":2:"), "{e}");
        }
        let (_d, p) = write("\n");
        assert!(read_set(&p).unwrap_err().contains("no rows"));
    }

    #[test]
    fn the_shipped_golden_set_reads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/golden/qa.test.jsonl");
        let set = read_set(&p).unwrap();
        assert_eq!(set.rows.len(), 400);
        assert!(!set.needs_judge());
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/golden/reference.jsonl");
        let set = read_set(&p).unwrap();
        assert_eq!(set.rows.len(), 20);
        assert!(set
            .rows
            .iter()
            .all(|r| r.expected.needs_judge() && r.segment.is_some() && r.query_type.is_some()));
    }
}
