//! PII and secret redaction for prompts, logs and model output.
//!
//! Matching is pattern-first, then validated where a cheap check exists (Luhn for cards,
//! ISO 7064 mod-97 and the per-country length for IBANs, the SSA's never-issued ranges
//! for SSNs, the check letter for Spanish DNIs) so that order numbers and timestamps
//! are not redacted. Overlapping matches resolve to the earliest, then the longest.
//!
//! [`StreamRedactor`] applies the same rules to streamed output: it releases text only
//! once no PII match can still grow over it, so a card number split across two SSE
//! chunks is never half-sent. Invariant: the concatenation of everything it emits
//! equals [`redact`] of the whole text.

use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};
use serde::Deserialize;

/// What a finding is; each kind has its own placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A telephone number.
    Phone,
    /// A payment card number that passes the Luhn check.
    Card,
    /// An IBAN with a valid checksum and length for its country.
    Iban,
    /// A national identifier: US SSN, UK National Insurance number, Spanish DNI.
    NationalId,
    /// A credential: cloud and API keys, tokens, JWTs, private keys, `password=` values.
    Secret,
}

impl PiiKind {
    /// The text that replaces a match.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Card => "[CARD]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::NationalId => "[NATIONAL_ID]",
            PiiKind::Secret => "[SECRET]",
        }
    }
}

/// Which kinds to redact. Every kind is on unless switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiConfig {
    /// Redact e-mail addresses.
    pub email: bool,
    /// Redact phone numbers.
    pub phone: bool,
    /// Redact payment card numbers.
    pub card: bool,
    /// Redact IBANs.
    pub iban: bool,
    /// Redact national identifiers.
    pub national_id: bool,
    /// Redact secrets and credentials.
    pub secret: bool,
}

impl Default for PiiConfig {
    fn default() -> Self {
        Self {
            email: true,
            phone: true,
            card: true,
            iban: true,
            national_id: true,
            secret: true,
        }
    }
}

impl PiiConfig {
    /// Whether `kind` is switched on.
    pub fn enabled(&self, kind: PiiKind) -> bool {
        match kind {
            PiiKind::Email => self.email,
            PiiKind::Phone => self.phone,
            PiiKind::Card => self.card,
            PiiKind::Iban => self.iban,
            PiiKind::NationalId => self.national_id,
            PiiKind::Secret => self.secret,
        }
    }
}

/// One redacted span, as byte offsets into the *original* text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub kind: PiiKind,
    /// Start byte offset in the input.
    pub start: usize,
    /// End byte offset (exclusive) in the input.
    pub end: usize,
}

/// The result of [`redact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The input with every finding replaced by its placeholder.
    pub text: String,
    /// What was replaced, in order of position.
    pub findings: Vec<Finding>,
}

/// How a candidate match is checked before it counts.
#[derive(Clone, Copy)]
enum Check {
    None,
    Luhn,
    IbanChecksum,
    Ssn,
    Nino,
    Dni,
    /// Phone: 8–15 digits in total.
    PhoneDigits,
    /// The match must not run on into more token characters (the regex crate has no
    /// look-ahead).
    TokenEnd,
}

struct Detector {
    kind: PiiKind,
    check: Check,
    /// Capture group holding the part to redact (0 = the whole match).
    group: usize,
    regex: Option<Regex>,
}

fn detector(kind: PiiKind, check: Check, group: usize, pattern: &str) -> Detector {
    // ASCII classes: Unicode `\b`/`\d` make every pattern slow on non-ASCII text and
    // would accept digits from other scripts as card or phone digits.
    let pattern = crate::ascii_words(pattern).replace(r"\d", "[0-9]");
    Detector {
        kind,
        check,
        group,
        regex: Regex::new(&pattern).ok(),
    }
}

static DETECTORS: LazyLock<Vec<Detector>> = LazyLock::new(|| {
    use Check::*;
    use PiiKind::*;
    vec![
        detector(
            Secret,
            None,
            0,
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        ),
        detector(
            Secret,
            TokenEnd,
            0,
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}",
        ),
        detector(
            Secret,
            TokenEnd,
            0,
            r"\bgh[pousr]_[A-Za-z0-9]{36,255}|\bgithub_pat_[A-Za-z0-9_]{22,255}",
        ),
        detector(
            Secret,
            TokenEnd,
            0,
            r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}",
        ),
        detector(Secret, TokenEnd, 0, r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
        detector(Secret, TokenEnd, 0, r"\bAIza[0-9A-Za-z_\-]{35}"),
        detector(
            Secret,
            TokenEnd,
            0,
            r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}",
        ),
        detector(Secret, TokenEnd, 0, r"\bfg-[A-Za-z0-9_\-]{43}"),
        detector(
            Secret,
            None,
            1,
            r#"(?i)\b(?:password|passwd|pwd|secret|api[_\-]?key|apikey|access[_\-]?token|auth[_\-]?token|client[_\-]?secret|private[_\-]?key)["']?\s*[:=]\s*["']?([^\s"',;]{4,})"#,
        ),
        detector(
            Email,
            None,
            0,
            r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}\b",
        ),
        detector(
            Iban,
            IbanChecksum,
            0,
            r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
        ),
        detector(Card, Luhn, 0, r"\b\d(?:[ \-]?\d){12,18}\b"),
        detector(NationalId, Ssn, 0, r"\b\d{3}-\d{2}-\d{4}\b"),
        detector(
            NationalId,
            Nino,
            0,
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
        ),
        detector(NationalId, Dni, 0, r"\b\d{8}-?[A-HJ-NP-TV-Z]\b"),
        detector(
            Phone,
            PhoneDigits,
            0,
            r"\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{2,4}){1,5}\b",
        ),
        detector(
            Phone,
            PhoneDigits,
            0,
            r"\(\d{3}\) ?\d{3}[ .\-]\d{4}\b|\b\d{3}[.\-]\d{3}[.\-]\d{4}\b|\b0\d{2,4}[ \-]\d{3,4}[ \-]?\d{3,4}\b",
        ),
    ]
});

/// Find and replace PII in `text`.
pub fn redact(text: &str, config: &PiiConfig) -> Redacted {
    let findings = find(text, config);
    Redacted {
        text: replace(text, 0, &findings),
        findings,
    }
}

/// `text[from..]` with each finding (inside it, in order) replaced by its placeholder.
fn replace<'a>(text: &str, from: usize, findings: impl IntoIterator<Item = &'a Finding>) -> String {
    let mut out = String::with_capacity(text.len() - from);
    let mut last = from;
    for f in findings {
        out.push_str(&text[last..f.start]);
        out.push_str(f.kind.placeholder());
        last = f.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Find PII without replacing it; non-overlapping, in order of position.
pub fn find(text: &str, config: &PiiConfig) -> Vec<Finding> {
    find_from(text, 0, config)
}

/// [`find`] for matches starting at `from` or later, with the text before `from` as
/// look-behind context (for `\b` and the digit-adjacency checks).
fn find_from(text: &str, from: usize, config: &PiiConfig) -> Vec<Finding> {
    let mut candidates = Vec::new();
    for d in DETECTORS.iter().filter(|d| config.enabled(d.kind)) {
        let Some(re) = &d.regex else { continue };
        let mut at = from;
        while let Some(caps) = re.captures_at(text, at) {
            let (Some(whole), Some(m)) = (caps.get(0), caps.get(d.group)) else {
                break;
            };
            // No pattern matches the empty string (which would not move `at` on).
            if whole.is_empty() {
                break;
            }
            at = whole.end();
            if passes(d.check, m.as_str(), text, m.start(), m.end()) {
                candidates.push(Finding {
                    kind: d.kind,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
    }
    // Earliest first, then longest; drop anything overlapping a kept finding.
    candidates.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept: Vec<Finding> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if kept.last().is_none_or(|k| c.start >= k.end) {
            kept.push(c);
        }
    }
    kept
}

fn passes(check: Check, m: &str, text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let digit_adjacent =
        before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit());
    match check {
        Check::None => true,
        Check::TokenEnd => {
            !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        Check::Luhn => !digit_adjacent && luhn(m),
        Check::IbanChecksum => iban_valid(m),
        Check::Ssn => ssn_valid(m),
        Check::Nino => nino_valid(m),
        Check::Dni => dni_valid(m),
        Check::PhoneDigits => {
            let digits = m.chars().filter(char::is_ascii_digit).count();
            !digit_adjacent && (8..=15).contains(&digits)
        }
    }
}

fn luhn(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN lengths per country (SWIFT registry); an IBAN from a country not listed is not
/// accepted, which keeps random upper-case codes out.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VG", 24),
    ("XK", 20),
];

fn iban_valid(m: &str) -> bool {
    let compact: String = m.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(expected) = IBAN_LENGTHS
        .iter()
        .find(|(cc, _)| compact.starts_with(cc))
        .map(|(_, l)| *l)
    else {
        return false;
    };
    if compact.len() != expected {
        return false;
    }
    let rearranged = compact[4..].chars().chain(compact[..4].chars());
    let mut remainder: u32 = 0;
    for c in rearranged {
        let Some(value) = c.to_digit(36) else {
            return false;
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn ssn_valid(m: &str) -> bool {
    let mut parts = m.split('-').map(|p| p.parse::<u32>().unwrap_or(0));
    let (area, group, serial) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn nino_valid(m: &str) -> bool {
    let prefix: String = m.chars().take(2).collect();
    !matches!(
        prefix.as_str(),
        "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ"
    )
}

fn dni_valid(m: &str) -> bool {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let number: u32 = m
        .chars()
        .take(8)
        .collect::<String>()
        .parse()
        .unwrap_or(u32::MAX);
    let letter = m.chars().last().map(|c| c as u32 as u8);
    number != u32::MAX && letter == LETTERS.get((number % 23) as usize).copied()
}

/// Redacts a stream of text deltas (model output) without ever emitting part of a match.
///
/// Text is held back exactly as long as a PII match could still start in it and grow
/// past it: the enabled patterns run as lazy DFAs (see `hold_automata`), anchored at
/// each held position in turn, and the first position from which one is still alive at
/// the end of the text (not dead, and not merely past a completed match) is where the
/// hold starts; a completed match before it is never split either.
/// So prose is released word by word, a number is held only while more digits could
/// still make it a card or phone number, and a `-----BEGIN … PRIVATE KEY-----` block is
/// held until its end line. Each released piece is redacted with the character before it
/// and the held text after it in view, so matches at its edges are judged as in the
/// whole text (word boundaries, digit adjacency).
/// The hold is capped at `max_hold` bytes (16 KiB by default) so an endless match (a
/// private key that never ends) cannot grow it without bound; past the cap text is
/// redacted and released.
#[derive(Debug, Clone)]
pub struct StreamRedactor {
    config: PiiConfig,
    /// The last released character (context: `ctx` bytes), then the held text.
    pending: String,
    ctx: usize,
    /// The hold automata and this stream's cache for each.
    hold: Option<(Arc<Vec<DFA>>, Vec<Cache>)>,
    max_hold: usize,
}

impl StreamRedactor {
    /// A redactor for the kinds `config` enables.
    pub fn new(config: PiiConfig) -> Self {
        let hold = hold_automata(&config).map(|dfas| {
            let caches = dfas.iter().map(DFA::create_cache).collect();
            (dfas, caches)
        });
        Self {
            config,
            pending: String::new(),
            ctx: 0,
            hold,
            max_hold: 16 * 1024,
        }
    }

    /// Add a delta; returns the redacted text that is now safe to send (may be empty).
    pub fn push(&mut self, delta: &str) -> String {
        self.pending.push_str(delta);
        let cut = self.safe_cut();
        if cut <= self.ctx {
            return String::new();
        }
        // Redacted with the held text after the cut in view, so a match ending at the
        // cut is judged on the character that follows it, as in the whole text.
        let out = self.redact_held(cut);
        let keep = self.pending[..cut]
            .char_indices()
            .next_back()
            .map_or(cut, |(i, _)| i);
        self.pending.drain(..keep);
        self.ctx = cut - keep;
        out
    }

    /// End of stream: redact and return everything still held.
    pub fn finish(self) -> String {
        self.redact_held(self.pending.len())
    }

    /// The text currently held back, unredacted (for tests and metrics).
    pub fn held(&self) -> usize {
        self.pending.len() - self.ctx
    }

    /// The held text up to `cut`, redacted.
    fn redact_held(&self, cut: usize) -> String {
        let text = self.pending.as_str();
        let findings = find_from(text, self.ctx, &self.config);
        let inside = findings.iter().take_while(|f| f.end <= cut);
        replace(&text[..cut], self.ctx, inside)
    }

    fn safe_cut(&mut self) -> usize {
        let text = self.pending.as_str();
        let bytes = text.as_bytes();
        let Some((dfas, caches)) = &mut self.hold else {
            // No automaton (a pattern failed to build): hold everything up to the cap.
            return floor_char_boundary(text, text.len().saturating_sub(self.max_hold))
                .max(self.ctx);
        };
        // The first position a match could still start from and grow past the end, and
        // the completed matches before it (a cut must not split them either).
        let mut cut = bytes.len();
        let mut matches = Vec::new();
        for at in (self.ctx..bytes.len()).filter(|&at| text.is_char_boundary(at)) {
            let behind = at.checked_sub(1).map(|i| bytes[i]);
            let mut longest = None;
            let alive = dfas.iter().zip(caches.iter_mut()).any(|(dfa, cache)| {
                match scan(dfa, cache, behind, &bytes[at..]) {
                    Scan::Alive => true,
                    Scan::Ended(len) => {
                        longest = longest.max(len);
                        false
                    }
                }
            });
            if alive {
                cut = at;
                break;
            }
            if let Some(len) = longest {
                matches.push((at, at + len));
            }
        }
        while let Some(&(start, _)) = matches.iter().find(|&&(s, e)| s < cut && e > cut) {
            cut = start;
        }
        if text.len() - cut > self.max_hold {
            cut = floor_char_boundary(text, text.len() - self.max_hold);
        }
        cut
    }
}

/// What the hold automaton makes of the held text from one position on.
enum Scan {
    /// A match from here could still run past the end of the text.
    Alive,
    /// No match from here can reach past the end; the longest one that ended, if any
    /// (its length in bytes).
    Ended(Option<usize>),
}

/// Runs the hold automaton anchored right after `behind` over `rest`.
fn scan(dfa: &DFA, cache: &mut Cache, behind: Option<u8>, rest: &[u8]) -> Scan {
    let config = start::Config::new()
        .anchored(Anchored::Yes)
        .look_behind(behind);
    // Any failure of the automaton errs on the side of holding.
    let Ok(mut sid) = dfa.start_state(cache, &config) else {
        return Scan::Alive;
    };
    let mut ended = None;
    for (i, &b) in rest.iter().enumerate() {
        if sid.is_dead() {
            return Scan::Ended(ended);
        }
        match dfa.next_state(cache, sid, b) {
            Ok(next) if !next.is_quit() => sid = next,
            _ => return Scan::Alive,
        }
        // Matches are reported one byte late: this one ended before byte `i`.
        if sid.is_match() {
            ended = Some(i);
        }
    }
    if sid.is_dead() || (sid.is_match() && !can_continue(dfa, cache, sid)) {
        Scan::Ended(ended)
    } else {
        Scan::Alive
    }
}

/// Whether some byte leads `sid` to a live state.
fn can_continue(dfa: &DFA, cache: &mut Cache, sid: LazyStateID) -> bool {
    (0..=u8::MAX).any(|b| dfa.next_state(cache, sid, b).map_or(true, |n| !n.is_dead()))
}

/// The hold automata for the kinds `config` enables, built once per config and shared by
/// every stream (each stream keeps its own caches of built states).
///
/// The detectors run independently, each leftmost-first, so one automaton over all of
/// them must not let one pattern's match cut another short: the greedy patterns share
/// one automaton that follows every pattern to every match (`MatchKind::All`, which can
/// only hold more), and a pattern with a lazy repetition (the private-key block, which
/// ends at its first end line) gets its own leftmost-first automaton, since following it
/// past that match would hold everything after it.
fn hold_automata(config: &PiiConfig) -> Option<Arc<Vec<DFA>>> {
    type Built = Vec<(PiiConfig, Option<Arc<Vec<DFA>>>)>;
    static BUILT: LazyLock<Mutex<Built>> = LazyLock::new(|| Mutex::new(Vec::new()));
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, dfas)) = built.iter().find(|(c, _)| c == config) {
        return dfas.clone();
    }
    let build = |kind: MatchKind, patterns: &[&str]| {
        DFA::builder()
            .configure(DFA::config().match_kind(kind))
            .build_many(patterns)
            .ok()
    };
    let (lazy, greedy): (Vec<&str>, Vec<&str>) = DETECTORS
        .iter()
        .filter(|d| config.enabled(d.kind))
        .filter_map(|d| d.regex.as_ref().map(Regex::as_str))
        .partition(|p| ["*?", "+?", "??", "}?"].iter().any(|q| p.contains(q)));
    let dfas = std::iter::once(build(MatchKind::All, &greedy))
        .chain(lazy.iter().map(|p| build(MatchKind::LeftmostFirst, &[p])))
        .collect::<Option<Vec<DFA>>>()
        .map(Arc::new);
    built.push((*config, dfas.clone()));
    dfas
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> String {
        redact(text, &PiiConfig::default()).text
    }

    #[test]
    fn all_patterns_compile() {
        assert!(DETECTORS.iter().all(|d| d.regex.is_some()));
    }

    #[test]
    fn redacts_each_kind() {
        let fg_key = format!("fg-{}", "A".repeat(21) + "b_c-" + &"9".repeat(18));
        let cases = [
            ("mail jane.doe+tag@example.co.uk now", "mail [EMAIL] now"),
            ("call +44 20 7946 0958 today", "call [PHONE] today"),
            ("call +1 (415) 555-2671", "call [PHONE]"),
            ("US (415) 555-2671 or 415-555-2671", "US [PHONE] or [PHONE]"),
            ("card 4111 1111 1111 1111 exp", "card [CARD] exp"),
            ("card 5500-0000-0000-0004.", "card [CARD]."),
            ("iban GB82 WEST 1234 5698 7654 32 ok", "iban [IBAN] ok"),
            ("iban DE89370400440532013000", "iban [IBAN]"),
            ("ssn 123-45-6789", "ssn [NATIONAL_ID]"),
            ("nino AB 12 34 56 C", "nino [NATIONAL_ID]"),
            ("dni 12345678Z", "dni [NATIONAL_ID]"),
            ("aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]"),
            ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [SECRET]"),
            ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "pat [SECRET]"),
            ("key sk-proj-abcdefghijklmnopqrstuvwx1234", "key [SECRET]"),
            ("slack xoxb-123456789012-abcdefghij", "slack [SECRET]"),
            ("g AIzaSyA-1234567890abcdefghijklmnopqrstu", "g [SECRET]"),
            ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt [SECRET]"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- done", "[SECRET] done"),
            (&format!("use {fg_key}"), "use [SECRET]"),
            ("password=hunter22 and api_key: 'abcd1234'", "password=[SECRET] and api_key: '[SECRET]'"),
        ];
        for (input, expected) in cases {
            assert_eq!(redacted(input), expected, "{input:?}");
        }
    }

    #[test]
    fn leaves_look_alikes_alone() {
        let cases = [
            "In 2024 we shipped 1500 units.",
            "Order 4111 1111 1111 1112 failed", // Luhn fails
            "ssn 666-12-3456 and 900-12-3456",  // never issued
            "ssn 123-00-6789",                  // group 00
            "GB82 WEST 1234 5698 7654 33",      // mod-97 fails
            "Timestamp 1700000000123 ms",
            "version 1.2.3-4, id 12345678",
            "sk-AIB-SECRET-9F2D is a test string",
            "nino BG 12 34 56 C",
            "dni 12345678A", // wrong check letter
            "fg-short",
        ];
        for input in cases {
            assert_eq!(redacted(input), input, "{input:?}");
        }
    }

    #[test]
    fn findings_point_into_the_original() {
        let text = "a@b.io and 4111111111111111";
        let r = redact(text, &PiiConfig::default());
        let spans: Vec<_> = r
            .findings
            .iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect();
        assert_eq!(
            spans,
            [
                (PiiKind::Email, "a@b.io"),
                (PiiKind::Card, "4111111111111111")
            ]
        );
    }

    #[test]
    fn config_switches_kinds_off_and_refuses_unknown_fields() {
        let config: PiiConfig = serde_json::from_str(r#"{"email": false}"#).unwrap();
        assert!(config.phone && !config.email);
        assert_eq!(
            redact("a@b.io 4111111111111111", &config).text,
            "a@b.io [CARD]"
        );
        assert!(serde_json::from_str::<PiiConfig>(r#"{"emails": true}"#).is_err());
        assert_eq!(
            serde_json::from_str::<PiiConfig>("{}").unwrap(),
            PiiConfig::default()
        );
    }

    #[test]
    fn stream_output_equals_one_shot_for_every_chunk_size() {
        let text = "Contact jane@example.com or +44 20 7946 0958. Card 4111 1111 1111 1111, \
                    token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U \
                    key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n\
                    and ünïcödé text with password=s3cret! at the end";
        let expected = redacted(text);
        let chars: Vec<char> = text.chars().collect();
        for size in [1, 2, 3, 5, 7, 13, 64, 1000] {
            let mut r = StreamRedactor::new(PiiConfig::default());
            let mut out = String::new();
            for chunk in chars.chunks(size) {
                let delta: String = chunk.iter().collect();
                out.push_str(&r.push(&delta));
                assert!(r.held() <= 16 * 1024 + delta.len());
            }
            out.push_str(&r.finish());
            assert_eq!(out, expected, "chunk size {size}");
        }
    }

    #[test]
    fn stream_output_equals_one_shot_for_multiword_matches_fed_word_by_word() {
        let text = "Here is the record you asked for. Her NINO is AB 12 34 56 C and the \
                    account GB82 WEST 1234 5698 7654 32 pays it. The api_key : sk0notakey99 \
                    and Password = hunter22 stay private, call (415) 555-2671 or \
                    +44 20 7946 0958, card 4111 1111 1111 1111, ssn 078-05-1120 and \
                    jane.doe@example.com thanks you.";
        let expected = redacted(text);
        for leak in [
            "12 34 56",
            "WEST 1234",
            "hunter22",
            "sk0notakey99",
            "555-2671",
            "7946",
        ] {
            assert!(!expected.contains(leak), "{leak} in {expected}");
        }
        // Word by word (each word with its leading space), and in odd character chunks.
        let mut words = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == ' ' && i > start {
                words.push(&text[start..i]);
                start = i;
            }
        }
        words.push(&text[start..]);
        let chars: Vec<char> = text.chars().collect();
        let odd: Vec<String> = chars.chunks(3).map(|c| c.iter().collect()).collect();
        for deltas in [words.iter().map(|w| w.to_string()).collect::<Vec<_>>(), odd] {
            let mut r = StreamRedactor::new(PiiConfig::default());
            let mut out = String::new();
            for d in &deltas {
                out.push_str(&r.push(d));
            }
            out.push_str(&r.finish());
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn prose_streams_after_its_first_word() {
        let mut r = StreamRedactor::new(PiiConfig::default());
        assert_eq!(r.push("The"), "");
        assert_eq!(r.push(" lighthouse"), "The ");
        assert_eq!(r.push(" keeper"), "lighthouse ");
        // A number is held while more digits could still make it a card or a phone.
        assert_eq!(r.push(" counted 4111"), "keeper counted ");
        assert_eq!(r.push(" 1111"), "");
        assert_eq!(r.held(), "4111 1111".len());
        assert_eq!(r.push(" boats"), "4111 1111 ");
    }

    #[test]
    fn stream_releases_plain_text_before_the_end() {
        let mut r = StreamRedactor::new(PiiConfig::default());
        let long = "word ".repeat(40);
        let out = r.push(&long);
        assert!(!out.is_empty());
        assert!(r.held() <= 64 + 5);
    }

    /// Text assembled at random from PII, near misses and prose, cut into random deltas:
    /// the stream must always equal the one-shot redaction, for every config.
    #[test]
    fn stream_equals_one_shot_on_random_mixes() {
        const ROUNDS: usize = 400;
        let pieces = [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "41111111111111112",
            "1234 5678 9012 3456",
            "jane.doe@example.com",
            "a@b",
            "+44 20 7946 0958",
            "(415) 555-2671",
            "415-555-2671",
            "078-05-1120",
            "AB 12 34 56 C",
            "AB123456C",
            "12345678Z",
            "GB82 WEST 1234 5698 7654 32",
            "GB82WEST12345698765432",
            "AKIAIOSFODNN7EXAMPLE",
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N",
            "password: hunter22",
            "Password = s3cret!",
            "api_key=abcd1234",
            "the secret of",
            "key",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN",
            "In 1987,",
            "chapter 3:",
            "lighthouse",
            "keeper",
            "ünïcödé",
            "x",
            "42",
            "7",
            "_",
            "@",
            "+",
            "AKIA",
            "fg-",
            // One detector's match inside another's: the e-mail wins in one shot.
            "AKIAIOSFODNN7EXAMPLEjane.doe@example.com",
        ];
        let seps = [
            " ", " ", " ", "\n", ", ", ". ", "", "", "-", "(", ")", ":", "\t", ".", "=",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let configs = [
            PiiConfig::default(),
            PiiConfig {
                email: false,
                card: false,
                ..PiiConfig::default()
            },
            PiiConfig {
                secret: false,
                phone: false,
                ..PiiConfig::default()
            },
        ];
        for round in 0..ROUNDS {
            let mut text = String::new();
            for _ in 0..(5 + next(20)) {
                text.push_str(pieces[next(pieces.len())]);
                text.push_str(seps[next(seps.len())]);
            }
            let config = configs[round % configs.len()];
            let expected = redact(&text, &config).text;
            let chars: Vec<char> = text.chars().collect();
            let mut r = StreamRedactor::new(config);
            let mut out = String::new();
            let mut i = 0;
            while i < chars.len() {
                let n = (1 + next(6)).min(chars.len() - i);
                let delta: String = chars[i..i + n].iter().collect();
                out.push_str(&r.push(&delta));
                i += n;
            }
            out.push_str(&r.finish());
            assert_eq!(out, expected, "round {round}: {text:?}");
        }
    }

    #[test]
    fn holds_exactly_what_could_still_become_pii() {
        let mut r = StreamRedactor::new(PiiConfig::default());
        // A keyword is held only while a value could still follow it.
        assert_eq!(r.push("the secret "), "the ");
        assert_eq!(r.push("of the "), "secret of the ");
        // A private key block is held whole until its end line.
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n";
        assert_eq!(r.push(key), "");
        assert_eq!(r.push("hkiG9w0B\n-----END PRIVATE KEY-----"), "");
        assert_eq!(r.push("\nDone "), "[SECRET]\nDone ");
        // A complete e-mail address goes once a byte shows it has ended.
        assert_eq!(r.push("mail jane@example.com"), "mail ");
        assert_eq!(r.push(" now"), "[EMAIL] ");
        assert_eq!(r.held(), "now".len());
    }
}
