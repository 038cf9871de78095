//! Golden question sets and how an answer is judged against them.
//!
//! A golden row is `{"question": "...", "answers": ["canonical", "alias", ...]}` (other
//! fields are kept but ignored). An answer is right when, after normalisation (lower
//! case, punctuation and the articles a/an/the removed, number words 0–20 written as
//! digits, whitespace collapsed), it equals one of the answers or contains one as whole
//! words. "Contains" matters because chat models answer in sentences ("The capital of
//! France is Paris.").

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenRow {
    #[serde(default)]
    pub id: Option<String>,
    pub question: String,
    pub answers: Vec<String>,
}

/// Reads a golden JSONL file; blank lines are skipped, a bad line is an error naming it.
pub fn read_golden(path: &Path) -> Result<Vec<GoldenRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: GoldenRow =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        if row.answers.iter().all(|a| normalize(a).is_empty()) {
            return Err(format!("{}:{}: no usable answer", path.display(), i + 1));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(format!("{}: no questions", path.display()));
    }
    Ok(rows)
}

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// The comparable form of an answer: lower-case words, no punctuation or articles.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    let cleaned: String = lower
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    cleaned
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(|w| match NUMBER_WORDS.iter().position(|n| *n == w) {
            Some(i) => i.to_string(),
            None => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `answer` matches any of `expected` (exact or whole-word containment).
pub fn is_correct(answer: &str, expected: &[String]) -> bool {
    let got = normalize(answer);
    if got.is_empty() {
        return false;
    }
    let padded = format!(" {got} ");
    expected.iter().any(|e| {
        let want = normalize(e);
        !want.is_empty() && (got == want || padded.contains(&format!(" {want} ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sentences_that_contain_the_answer_count() {
        assert!(is_correct(
            "The capital of France is Paris.",
            &v(&["Paris"])
        ));
        assert!(is_correct("paris", &v(&["Paris, France", "Paris"])));
        assert!(is_correct("It has four legs", &v(&["4"])));
        assert!(is_correct("The Beatles", &v(&["Beatles"])));
    }

    #[test]
    fn partial_words_and_empty_answers_do_not() {
        assert!(!is_correct("Parisian food", &v(&["Paris"])));
        assert!(!is_correct("", &v(&["Paris"])));
        assert!(!is_correct("...", &v(&["Paris"])));
        assert!(!is_correct("Paris", &v(&["the"])));
        assert!(!is_correct("Lyon", &v(&["Paris"])));
    }

    #[test]
    fn normalisation_drops_articles_and_punctuation() {
        assert_eq!(normalize("  The U.S.  Army!"), "u s army");
        assert_eq!(normalize("An Apple a day"), "apple day");
    }

    #[test]
    fn reading_reports_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.jsonl");
        std::fs::write(
            &p,
            "{\"question\": \"q\", \"answers\": [\"a1\"]}\n\n{\"question\": 3}\n",
        )
        .unwrap();
        let e = read_golden(&p).unwrap_err();
        assert!(e.contains(":3:"), "{e}");
        std::fs::write(
            &p,
            "{\"question\": \"q\", \"answers\": [\"x\"], \"extra\": 1}\n",
        )
        .unwrap();
        assert_eq!(read_golden(&p).unwrap().len(), 1);
    }
}
