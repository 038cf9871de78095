//! The prompts a benchmark sends: a fixed built-in set, or a JSONL file.
//!
//! The built-in set is fixed so that two runs (or two servers) see the same requests; request
//! `i` of every level uses prompt `i % len`. The prompts vary in length and kind (chat,
//! code, lists, prose) so that prefill cost is not one number.

use std::path::Path;

use serde_json::Value;

use crate::error::BenchError;

/// One prompt: chat messages (for `--api completions` their contents are joined).
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub messages: Vec<Value>,
}

impl Prompt {
    pub fn user(text: &str) -> Self {
        Self {
            messages: vec![serde_json::json!({"role": "user", "content": text})],
        }
    }

    /// The prompt as one string for the text-completions API.
    pub fn as_text(&self) -> String {
        self.messages
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

const BUILT_IN: &[&str] = &[
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a hash map works to someone who has just learned what an array is.",
    "List ten creative names for a coffee shop run by cats, with one sentence about each.",
    "Write a Python function that returns the n-th Fibonacci number iteratively, and explain its complexity.",
    "What are the main differences between TCP and UDP? Give an example application for each.",
    "Summarise the water cycle in a paragraph suitable for a ten-year-old.",
    "Translate into French and then back into English: 'The early bird catches the worm, but the second mouse gets the cheese.'",
    "Write a haiku about autumn rain, then explain the imagery line by line.",
    "You are a travel agent. Plan a three-day trip to Lisbon for a family with two children, including food recommendations for every day.",
    "Describe the rules of chess for the knight and the bishop, and explain why the bishop pair is considered an advantage.",
    "Write a SQL query that finds the five customers with the highest total order value in the last 30 days, given tables customers(id, name) and orders(id, customer_id, total, created_at).",
    "Give me a recipe for a simple vegetable soup with a shopping list and step-by-step instructions.",
    "Why is the sky blue? Answer first in one sentence, then in detail.",
    "Compose a polite email to a colleague asking them to review a pull request before Friday.",
    "Compare the advantages and disadvantages of electric cars and petrol cars in a table.",
    "Continue this story: The last train left the station at midnight, and Maria realised she had left her suitcase on the platform. She",
];

/// The built-in prompt set (16 prompts).
pub fn built_in() -> Vec<Prompt> {
    BUILT_IN.iter().map(|p| Prompt::user(p)).collect()
}

/// Reads a JSONL file: each non-blank line is a JSON string, `{"prompt": "..."}` or
/// `{"messages": [...]}`. All bad lines are reported together.
pub fn load(path: &Path) -> Result<Vec<Prompt>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::Prompts {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_jsonl(&text).map_err(|message| BenchError::Prompts {
        path: path.to_path_buf(),
        message,
    })
}

fn parse_jsonl(text: &str) -> Result<Vec<Prompt>, String> {
    let mut prompts = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(p) => prompts.push(p),
            Err(e) => errors.push(format!("line {}: {e}", n + 1)),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    if prompts.is_empty() {
        return Err("no prompts in file".into());
    }
    Ok(prompts)
}

fn parse_line(line: &str) -> Result<Prompt, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    match &value {
        Value::String(s) => Ok(Prompt::user(s)),
        Value::Object(o) => {
            if let Some(messages) = o.get("messages") {
                match messages.as_array() {
                    Some(m) if !m.is_empty() && m.iter().all(Value::is_object) => Ok(Prompt {
                        messages: m.clone(),
                    }),
                    _ => Err("`messages` must be a non-empty array of objects".into()),
                }
            } else if let Some(p) = o.get("prompt") {
                p.as_str()
                    .map(Prompt::user)
                    .ok_or_else(|| "`prompt` must be a string".into())
            } else {
                Err("expected a `prompt` or `messages` field".into())
            }
        }
        _ => Err("expected a JSON string or object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_set_is_fixed_and_varied() {
        let p = built_in();
        assert_eq!(p.len(), 16);
        let lens: Vec<usize> = p.iter().map(|p| p.as_text().len()).collect();
        assert!(lens.iter().max() > Some(&(2 * lens.iter().min().copied().unwrap_or(0))));
    }

    #[test]
    fn jsonl_lines() {
        let text = r#"
"plain string"
{"prompt": "a prompt"}
{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
"#;
        let p = parse_jsonl(text).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].as_text(), "plain string");
        assert_eq!(p[1].as_text(), "a prompt");
        assert_eq!(p[2].messages.len(), 2);
        assert_eq!(p[2].as_text(), "be brief\n\nhi");
    }

    #[test]
    fn jsonl_errors_are_reported_together() {
        let err = parse_jsonl("{\"prompt\": 1}\n\"ok\"\n[1]\n{\"x\": 2}\nnot json\n").unwrap_err();
        for want in ["line 1", "line 3", "line 4", "line 5"] {
            assert!(err.contains(want), "{err}");
        }
        assert!(!err.contains("line 2"), "{err}");
        assert_eq!(parse_jsonl("\n\n").unwrap_err(), "no prompts in file");
    }
}
