//! One request's drift features and the cheap text analysis behind them.
//!
//! [`text_features`] runs on the request path: it looks at a bounded prefix of the prompt
//! (whatlang on the first [`LANGUAGE_SAMPLE_BYTES`], the code heuristic on the first
//! [`KIND_SAMPLE_BYTES`]), so its cost does not grow with the prompt.

use serde::{Deserialize, Serialize};

/// One request's drift features, as carried (compactly) inside its request event.
///
/// `embedding` is the [`project`](crate::project)ed sentence embedding (32 numbers), not the
/// encoder's raw output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Features {
    pub prompt_chars: u32,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub turns: u32,
    /// Dominant Unicode script ("Latin", "Cyrillic", "Han", …), "none" without letters.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub script: String,
    /// ISO 639-3 code ("eng", "fra", …), "und" when detection is unsure.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub language: String,
    /// "prose" or "code".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_score: Option<f32>,
    #[serde(skip_serializing_if = "is_false")]
    pub refused: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub escalated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Features {
    /// Features with the text-derived fields (`prompt_chars`, `script`, `language`, `kind`)
    /// filled from `text`; the rest default.
    pub fn from_text(text: &str) -> Self {
        let mut features = Self::default();
        text_features(text).apply(&mut features);
        features
    }
}

/// What [`text_features`] finds in a prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextFeatures {
    /// Unicode scalar values in the whole text.
    pub chars: u32,
    pub script: &'static str,
    pub language: &'static str,
    pub kind: &'static str,
}

impl TextFeatures {
    /// Copies these fields into `features`.
    pub fn apply(&self, features: &mut Features) {
        features.prompt_chars = self.chars;
        features.script = self.script.to_owned();
        features.language = self.language.to_owned();
        features.kind = self.kind.to_owned();
    }
}

/// Bytes of the prompt given to language detection. whatlang's cost is mostly fixed per call
/// (128 bytes cost nearly as much as 1 KB); the bytes past 512 would add about a sixth and
/// rarely change its answer.
pub const LANGUAGE_SAMPLE_BYTES: usize = 512;
/// whatlang confidence from which its language is kept. Its own `is_reliable` (above 0.9)
/// calls most one-sentence English prompts undetermined ("I need help writing an email to my
/// landlord about a broken heater" scores 0.70); below 0.5 its guesses are mostly wrong
/// ("How do I make a sourdough starter from scratch?" is Czech at 0.04).
pub const LANGUAGE_MIN_CONFIDENCE: f64 = 0.5;

/// Bytes of the prompt given to the code heuristic.
pub const KIND_SAMPLE_BYTES: usize = 4096;

/// Length, dominant script, language and prose/code kind of a prompt (70–100 µs for 1 KB in
/// release, nearly all of it whatlang).
///
/// Language comes from whatlang and is kept only at a confidence of at least
/// [`LANGUAGE_MIN_CONFIDENCE`]; otherwise it is "und". Short prompts are often "und": what
/// matters for drift is that the same kind of text gets the same answer in the reference and
/// in live traffic, not that every answer is right.
pub fn text_features(text: &str) -> TextFeatures {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    let sample = prefix(text, LANGUAGE_SAMPLE_BYTES);
    let (script, language) = match whatlang::detect(sample) {
        Some(info) => (
            script_name(info.script()),
            if info.confidence() >= LANGUAGE_MIN_CONFIDENCE {
                info.lang().code()
            } else {
                "und"
            },
        ),
        None => ("none", "und"),
    };
    TextFeatures {
        chars,
        script,
        language,
        kind: kind(prefix(text, KIND_SAMPLE_BYTES)),
    }
}

/// The longest prefix of at most `max` bytes that ends on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

fn script_name(script: whatlang::Script) -> &'static str {
    use whatlang::Script as S;
    match script {
        S::Arabic => "Arabic",
        S::Armenian => "Armenian",
        S::Bengali => "Bengali",
        S::Cyrillic => "Cyrillic",
        S::Devanagari => "Devanagari",
        S::Ethiopic => "Ethiopic",
        S::Georgian => "Georgian",
        S::Greek => "Greek",
        S::Gujarati => "Gujarati",
        S::Gurmukhi => "Gurmukhi",
        S::Hangul => "Hangul",
        S::Hebrew => "Hebrew",
        S::Hiragana => "Hiragana",
        S::Kannada => "Kannada",
        S::Katakana => "Katakana",
        S::Khmer => "Khmer",
        S::Latin => "Latin",
        S::Malayalam => "Malayalam",
        // Unicode's name for the script whatlang calls Mandarin.
        S::Mandarin => "Han",
        S::Myanmar => "Myanmar",
        S::Oriya => "Oriya",
        S::Sinhala => "Sinhala",
        S::Tamil => "Tamil",
        S::Telugu => "Telugu",
        S::Thai => "Thai",
    }
}

/// Lowercase line openers that start code and rarely start a prose line (prose sentences
/// open with a capital). Matched when followed by a space, `(`, `!`, `.`, `:`, `<` or `{`.
const CODE_OPENERS: &[&str] = &[
    "async", "await", "break", "case", "catch", "class", "const", "continue", "def", "elif",
    "else", "enum", "except", "export", "fn", "for", "from", "func", "function", "if", "impl",
    "import", "let", "match", "mod", "package", "print", "println", "private", "pub", "public",
    "raise", "return", "static", "struct", "switch", "trait", "try", "type", "use", "var", "while",
    "with", "yield", "console", "#include", "#define", "#!", "SELECT", "INSERT", "UPDATE",
    "DELETE", "CREATE", "WITH",
];

/// Characters that are common in code and rare in prose.
fn is_code_symbol(c: char) -> bool {
    matches!(
        c,
        '{' | '}'
            | '['
            | ']'
            | '('
            | ')'
            | '<'
            | '>'
            | '='
            | ';'
            | '_'
            | '|'
            | '&'
            | '*'
            | '#'
            | '$'
            | '\\'
            | '`'
            | '^'
            | '~'
    )
}

/// "code" when most of the text (by characters) sits on code-like lines and code punctuation
/// is dense enough, else "prose". A line is code-like when it is indented (4 spaces or a tab),
/// ends in `;`, `{` or `}`, opens with a code keyword (`def`, `fn`, `const`, `import`, …) or a `//` comment,
/// contains an operator such as `=>`, `->`, `::`, `==` or `+=`, or is at least 15% code
/// punctuation. Markdown fences count as code lines. Structured data (JSON, SQL) is "code".
pub fn kind(text: &str) -> &'static str {
    let (mut code_chars, mut all_chars) = (0usize, 0usize);
    let (mut symbols, mut nonspace) = (0usize, 0usize);
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let line_nonspace = trimmed.chars().filter(|c| !c.is_whitespace()).count();
        let line_symbols = trimmed.chars().filter(|&c| is_code_symbol(c)).count();
        symbols += line_symbols;
        nonspace += line_nonspace;
        all_chars += line_nonspace;
        let code_like = line.starts_with("    ")
            || line.starts_with('\t')
            || trimmed.ends_with([';', '{', '}'])
            || trimmed.starts_with("//")
            || trimmed.starts_with("```")
            || opens_with_keyword(trimmed)
            || ["=>", "->", "::", "==", "!=", "+=", "-=", "&&", "||"]
                .iter()
                .any(|op| trimmed.contains(op))
            || (line_nonspace >= 6 && line_symbols * 100 >= line_nonspace * 15);
        if code_like {
            code_chars += line_nonspace;
        }
    }
    if nonspace == 0 {
        return "prose";
    }
    let code_share = code_chars as f64 / all_chars as f64;
    let symbol_share = symbols as f64 / nonspace as f64;
    if (code_share >= 0.5 && symbol_share >= 0.04) || symbol_share >= 0.15 {
        "code"
    } else {
        "prose"
    }
}

fn opens_with_keyword(line: &str) -> bool {
    let word_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == '!'))
        .unwrap_or(line.len());
    let (word, rest) = line.split_at(word_end);
    let word = word.trim_end_matches('!');
    let follows = rest.chars().next();
    CODE_OPENERS.contains(&word)
        && matches!(
            follows,
            None | Some(' ' | '(' | '.' | ':' | '<' | '{' | '!')
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_and_code_are_told_apart() {
        let prose = [
            "What is the capital of France?",
            "Can you explain how photosynthesis works? I am studying for an exam (biology, year 2).",
            "Here is my list:\n- eggs\n- milk\n- bread\nWhat can I cook with these?",
            "Write a function that sorts a list of numbers in Python.",
            "If the train leaves at 5 pm and travels 80 km/h, when does it arrive?",
            "Peux-tu m'expliquer comment fonctionne la photosynthèse ?",
            "print the numbers from 1 to 10",
            "",
        ];
        let code = [
            "def add(a, b):\n    return a + b\n",
            "Why does this fail?\n```python\nfor i in range(10):\n    print(items[i])\n```",
            "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{:?}\", x);\n}",
            "const total = items.reduce((a, b) => a + b, 0);",
            "SELECT name, count(*) FROM users WHERE age > 30 GROUP BY name;",
            "{\"model\": \"gpt\", \"messages\": [{\"role\": \"user\"}]}",
            "x = [i * i for i in range(10)]",
        ];
        for text in prose {
            assert_eq!(kind(text), "prose", "{text:?}");
        }
        for text in code {
            assert_eq!(kind(text), "code", "{text:?}");
        }
    }

    #[test]
    fn scripts_and_languages() {
        let cases = [
            ("The quick brown fox jumps over the lazy dog while the farmer watches from the porch.", "Latin", "eng"),
            ("Le renard brun rapide saute par-dessus le chien paresseux pendant que le fermier regarde.", "Latin", "fra"),
            ("Быстрая коричневая лиса прыгает через ленивую собаку, пока фермер смотрит с крыльца.", "Cyrillic", "rus"),
            ("敏捷的棕色狐狸跳过了懒狗，农夫在门廊上看着。", "Han", "cmn"),
            ("12345 !!! ???", "none", "und"),
        ];
        for (text, script, language) in cases {
            let f = text_features(text);
            assert_eq!((f.script, f.language), (script, language), "{text}");
        }
        assert_eq!(text_features("héllo").chars, 5);
    }

    #[test]
    fn features_serialise_compactly() {
        let f = Features {
            prompt_chars: 12,
            turns: 1,
            ..Features::default()
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"prompt_chars":12,"prompt_tokens":0,"completion_tokens":0,"turns":1}"#
        );
        let back: Features = serde_json::from_str(r#"{"prompt_chars":12,"turns":1}"#).unwrap();
        assert_eq!(back, f);
        let full = Features {
            embedding: Some(vec![0.5; 2]),
            refused: true,
            language: "eng".into(),
            ..f
        };
        let json = serde_json::to_string(&full).unwrap();
        assert!(json.contains(r#""refused":true"#) && json.contains(r#""embedding":[0.5,0.5]"#));
        assert_eq!(serde_json::from_str::<Features>(&json).unwrap(), full);
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let text = "é".repeat(1000);
        assert!(prefix(&text, 1025).len() <= 1025);
        assert_eq!(text_features(&text).chars, 1000);
    }
}
