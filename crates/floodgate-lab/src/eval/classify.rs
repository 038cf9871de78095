//! Query types for rows that carry none: a small rule classifier by question word.
//!
//! It stands in for the router's class. The gateway's pre-router (`cascade/router.rs`)
//! scores prompts for escalation but names no class, so the golden rows are sliced by
//! the form of the question instead: the earliest question word or phrase in the
//! prompt picks the type (`In which year…` is `which`), a longer phrase wins over a
//! shorter one at the same place (`how many` over `how`), and a prompt with none is
//! `other`.
//!
//! The rules are configurable (`--query-types`): `TYPE=phrase|phrase;TYPE=…`, e.g.
//! `person=who|whom|whose;count=how many|how much`. Rows with a `type` field keep it.

use crate::cascade::golden::normalize;

/// The default rules, in the `--query-types` syntax.
pub const DEFAULT_RULES: &str = "who=who|whom|whose;which=which;what=what;where=where;\
                                 when=when|what year|which year;how-many=how many|how much;\
                                 how=how;why=why";

/// The type of a prompt no rule matches.
pub const OTHER: &str = "other";

#[derive(Debug, Clone, PartialEq)]
pub struct QueryClassifier {
    /// (type, phrase as normalised words), in the order given.
    rules: Vec<(String, Vec<String>)>,
}

impl Default for QueryClassifier {
    fn default() -> Self {
        // The default rules are a constant that the tests parse.
        Self::parse(DEFAULT_RULES).unwrap_or(Self { rules: Vec::new() })
    }
}

impl QueryClassifier {
    /// Parses `TYPE=phrase|phrase;TYPE=…`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, phrases) = part
                .split_once('=')
                .ok_or_else(|| format!("query type rule `{part}`: expected TYPE=phrase|phrase"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("query type rule `{part}`: empty type"));
            }
            for phrase in phrases.split('|') {
                let words: Vec<String> = normalize(phrase)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if words.is_empty() {
                    return Err(format!("query type rule `{part}`: empty phrase"));
                }
                rules.push((name.to_string(), words));
            }
        }
        if rules.is_empty() {
            return Err("no query type rules".into());
        }
        Ok(Self { rules })
    }

    /// The type of `prompt`: the rule whose phrase starts earliest (the longest phrase
    /// at that position, then the first rule given), else [`OTHER`].
    pub fn classify(&self, prompt: &str) -> String {
        let text = normalize(prompt);
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut best: Option<(usize, usize, &str)> = None; // (start, -len as rank, type)
        for (name, phrase) in &self.rules {
            let Some(start) = words
                .windows(phrase.len())
                .position(|w| w.iter().zip(phrase).all(|(a, b)| *a == b))
            else {
                continue;
            };
            let better = match best {
                None => true,
                Some((s, len, _)) => start < s || (start == s && phrase.len() > len),
            };
            if better {
                best = Some((start, phrase.len(), name));
            }
        }
        best.map_or_else(|| OTHER.to_string(), |(_, _, name)| name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_classify_by_the_earliest_question_word() {
        let c = QueryClassifier::default();
        for (prompt, want) in [
            ("Who wrote the novel 'Anna Karenina'?", "who"),
            ("Which old English coin was equal to four pence?", "which"),
            ("In which year did the Titanic sink?", "when"),
            ("In which country is Timbuktu?", "which"),
            ("What was unusual about a polo world cup?", "what"),
            ("How many legs does a spider have?", "how-many"),
            ("How does a siphon work?", "how"),
            ("Where is the Sea of Tranquility?", "where"),
            ("When did the Berlin Wall fall?", "when"),
            ("Name the capital of Peru.", "other"),
            ("The Bald Eagle is the national bird of ___?", "other"),
            ("Whose face is on the US $5 bill?", "who"),
        ] {
            assert_eq!(c.classify(prompt), want, "{prompt}");
        }
    }

    #[test]
    fn custom_rules_parse_and_bad_ones_are_refused() {
        let c = QueryClassifier::parse("person=who|whom; count = how many ").unwrap();
        assert_eq!(c.classify("Whom did she marry?"), "person");
        assert_eq!(c.classify("How many moons has Mars?"), "count");
        assert_eq!(c.classify("What is 2+2?"), OTHER);
        assert!(QueryClassifier::parse("").is_err());
        assert!(QueryClassifier::parse("who").is_err());
        assert!(QueryClassifier::parse("=who").is_err());
        assert!(QueryClassifier::parse("x=who|").is_err());
    }
}
