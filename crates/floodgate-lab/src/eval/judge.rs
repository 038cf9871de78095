//! The LLM judge: a served model asked, with a rubric, whether an answer agrees with
//! the reference and how coherent it is, replying `{"correct": 0|1, "coherence": 1-5}`.
//!
//! Models do not always reply with clean JSON, so [`parse_verdict`] reads the first
//! JSON object anywhere in the reply that has either key; failing that, `correct` and
//! `coherence` followed by a digit; failing that, the first numbers in the reply (the
//! first 0 or 1 as `correct`, the next 1–5 as `coherence`). A reply with neither is
//! *unparseable* and is counted as such, never as wrong.
//!
//! The default judge ([`default_judge`]) is the largest chat model the server lists.
//! `/v1/models` gives no sizes, so "largest" is the parameter count written in the id
//! or, failing that, in the model card's description (a word such as `1.5b`, `135M`,
//! `7B`); routes and completions-only models (a card saying "completions only") are
//! never chosen, models without a count rank below those with one, and ties go to the
//! shorter id (the plain model over its versions and variants), then alphabetically.

use super::client::ListedModel;

/// The judge's instructions. The reply format is shown with placeholders, not values:
/// given a filled-in example, Qwen2.5-Coder-1.5B copied its numbers for every answer.
pub const RUBRIC: &str = "You are a strict grader. You compare a candidate answer with a \
reference answer and rate it.\n\
- correct: 1 if the candidate's answer states the same facts as the reference answer \
(wording may differ; extra correct detail is fine), 0 if it is wrong, contradicts the \
reference, refuses or does not answer.\n\
- coherence: 1 to 5, how clear, fluent and on-topic the candidate's text is, whether or \
not it is correct (1 = broken or off-topic, 3 = understandable with problems, 5 = clear \
and well-formed).\n\
Reply with one JSON object only: {\"correct\": <0 or 1>, \"coherence\": <1 to 5>}";

/// The judge's user message for one answer.
pub fn judge_prompt(question: &str, reference: &str, answer: &str) -> String {
    format!(
        "Question: {question}\nReference answer: {reference}\nCandidate answer: {answer}\n\n\
         Grade the candidate answer. Reply with JSON only: {{\"correct\": 0 or 1, \"coherence\": 1 to 5}}"
    )
}

/// A parsed verdict; at least one field is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub correct: Option<bool>,
    pub coherence: Option<u8>,
}

/// Reads a judge's reply; `None` when nothing in it is a verdict.
pub fn parse_verdict(reply: &str) -> Option<Verdict> {
    from_json(reply)
        .or_else(|| from_labels(reply))
        .or_else(|| from_numbers(reply))
}

fn verdict(correct: Option<bool>, coherence: Option<u8>) -> Option<Verdict> {
    (correct.is_some() || coherence.is_some()).then_some(Verdict { correct, coherence })
}

fn correct_of(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        serde_json::Value::String(s) => match s.trim().to_lowercase().as_str() {
            "0" | "false" | "no" | "incorrect" => Some(false),
            "1" | "true" | "yes" | "correct" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn coherence_of(v: &serde_json::Value) -> Option<u8> {
    let x = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let rounded = x.round();
    (1.0..=5.0).contains(&rounded).then_some(rounded as u8)
}

/// The first JSON object in `text` with a `correct` or `coherence` key.
fn from_json(text: &str) -> Option<Verdict> {
    for (i, _) in text.match_indices('{') {
        let mut values =
            serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde_json::Value>();
        let Some(Ok(serde_json::Value::Object(map))) = values.next() else {
            continue;
        };
        let key = |name: &str| {
            map.iter()
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let found = verdict(
            key("correct").and_then(correct_of),
            key("coherence").and_then(coherence_of),
        );
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The first digit within a few characters after `label` (`"correct": 1`,
/// `Coherence = 4`).
fn digit_after(lower: &str, label: &str) -> Option<u32> {
    let mut from = 0;
    while let Some(at) = lower[from..].find(label) {
        let start = from + at + label.len();
        let window: String = lower[start..].chars().take(6).collect();
        let digit = window
            .chars()
            .take_while(|c| !c.is_alphabetic())
            .find_map(|c| c.to_digit(10));
        if digit.is_some() {
            return digit;
        }
        from = start;
    }
    None
}

fn from_labels(text: &str) -> Option<Verdict> {
    let lower = text.to_lowercase();
    // "incorrect" contains "correct": both read the digit after the word.
    let correct = digit_after(&lower, "correct").and_then(|d| match d {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    });
    let coherence = digit_after(&lower, "coherence")
        .filter(|d| (1..=5).contains(d))
        .map(|d| d as u8);
    verdict(correct, coherence)
}

/// The first 0/1 as `correct`, then the next number in 1–5 as `coherence`.
fn from_numbers(text: &str) -> Option<Verdict> {
    let numbers: Vec<u64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    let first = *numbers.first()?;
    let correct = match first {
        0 => Some(false),
        1 => Some(true),
        _ => return None,
    };
    let coherence = numbers
        .get(1)
        .filter(|n| (1..=5).contains(*n))
        .map(|n| *n as u8);
    verdict(correct, coherence)
}

/// A parameter count written as a word of `text` (`1.5b` → 1.5e9, `135M` → 1.35e8).
pub fn parameter_count(text: &str) -> Option<f64> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .filter_map(|word| {
            let word = word.trim_matches('.');
            let (number, unit) = word.split_at(word.len().checked_sub(1)?);
            let scale = match unit {
                "k" | "K" => 1e3,
                "m" | "M" => 1e6,
                "b" | "B" => 1e9,
                "t" | "T" => 1e12,
                _ => return None,
            };
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            Some(number.parse::<f64>().ok()? * scale)
        })
        .next()
}

/// The default judge among the listed models (see the module docs for the rule).
pub fn default_judge(models: &[ListedModel]) -> Option<String> {
    let description = |m: &ListedModel| {
        m.card
            .as_ref()
            .map(|c| c.description.clone())
            .unwrap_or_default()
    };
    models
        .iter()
        .filter(|m| m.kind.as_deref() != Some("route") && m.owned_by != "floodgate-route")
        .filter(|m| !description(m).to_lowercase().contains("completions only"))
        .map(|m| {
            let size = parameter_count(&m.id).or_else(|| parameter_count(&description(m)));
            (m, size)
        })
        .max_by(|(a, sa), (b, sb)| {
            let by_size = match (sa, sb) {
                (Some(x), Some(y)) => x.total_cmp(y),
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (None, None) => std::cmp::Ordering::Equal,
            };
            // Among equals the shorter, then alphabetically first, id is "larger".
            by_size
                .then_with(|| b.id.len().cmp(&a.id.len()))
                .then_with(|| b.id.cmp(&a.id))
        })
        .map(|(m, _)| m.id.clone())
}

#[cfg(test)]
mod tests {
    use super::super::client::ListedCard;
    use super::*;

    #[test]
    fn verdicts_are_read_from_json_labels_or_numbers() {
        let v = |c: Option<bool>, h: Option<u8>| {
            Some(Verdict {
                correct: c,
                coherence: h,
            })
        };
        for (reply, want) in [
            (r#"{"correct": 1, "coherence": 5}"#, v(Some(true), Some(5))),
            (
                "Sure! Here is my grade:\n```json\n{\"correct\": 0, \"coherence\": 3}\n```",
                v(Some(false), Some(3)),
            ),
            (
                r#"{"Correct": "yes", "coherence": "4"}"#,
                v(Some(true), Some(4)),
            ),
            (
                r#"{"correct": true, "coherence": 4.4}"#,
                v(Some(true), Some(4)),
            ),
            (r#"{"coherence": 2}"#, v(None, Some(2))),
            (
                "{not json} then {\"correct\": 1, \"coherence\": 2}",
                v(Some(true), Some(2)),
            ),
            ("correct: 1, coherence: 4", v(Some(true), Some(4))),
            ("Incorrect = 0. Coherence = 2", v(Some(false), Some(2))),
            ("\"correct\": 1, \"coherence\": 9", v(Some(true), None)),
            ("1 5", v(Some(true), Some(5))),
            ("0", v(Some(false), None)),
            ("1, 7", v(Some(true), None)),
            ("The answer is 1998.", None),
            ("I think the answer is right.", None),
            ("", None),
            (r#"{"score": 7}"#, None),
        ] {
            assert_eq!(parse_verdict(reply), want, "{reply}");
        }
    }

    #[test]
    fn parameter_counts_are_read_from_names() {
        assert_eq!(parameter_count("qwen2.5-coder-1.5b"), Some(1.5e9));
        assert_eq!(parameter_count("smollm2-135m"), Some(1.35e8));
        assert_eq!(
            parameter_count("SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB)"),
            Some(1.35e8)
        );
        assert_eq!(parameter_count("llama-3-8B@2:q4"), Some(8e9));
        assert_eq!(parameter_count("chat"), None);
        assert_eq!(parameter_count("Q4_K_M gguf"), None);
    }

    fn listed(id: &str, kind: Option<&str>, description: &str) -> ListedModel {
        ListedModel {
            id: id.into(),
            owned_by: "floodgate".into(),
            kind: kind.map(str::to_string),
            card: Some(ListedCard {
                description: description.into(),
            }),
        }
    }

    #[test]
    fn the_default_judge_is_the_largest_chat_model() {
        let models = vec![
            listed("smollm2-135m", None, "SmolLM2-135M-Instruct; chat model"),
            listed(
                "qwen2.5-coder-1.5b",
                None,
                "Qwen2.5-Coder-1.5B-Instruct; chat model",
            ),
            listed(
                "gemma3-270m",
                None,
                "Gemma-3-270M base; no chat template, completions only",
            ),
            listed("huge-70b-router", Some("route"), "Route over a -> b"),
            listed("mystery", None, ""),
        ];
        assert_eq!(
            default_judge(&models).as_deref(),
            Some("qwen2.5-coder-1.5b")
        );
        // Versions and variants of one model: the plain name.
        let models = vec![
            listed("chat@1:q4", Some("variant"), "Chat-7B"),
            listed("chat", Some("model"), "Chat-7B"),
            listed("chat@1", Some("version"), "Chat-7B"),
        ];
        assert_eq!(default_judge(&models).as_deref(), Some("chat"));
        // Without sizes, the shortest id; nothing listed, nothing chosen.
        let models = vec![listed("bbb", None, ""), listed("aa", None, "")];
        assert_eq!(default_judge(&models).as_deref(), Some("aa"));
        assert_eq!(default_judge(&[]), None);
    }
}
