//! `[guard]`: input and output guards and `/v1/moderations`.

use serde::{Deserialize, Serialize};

/// What a guard does with text that reaches its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Serve it unmarked.
    Allow,
    /// Serve it, marked (`x-floodgate-guard`) and counted.
    Flag,
    /// Refuse it (input: 400 `prompt_blocked`; output: the answer is withheld).
    Block,
}

/// Stages 4 and 8: input and output guards, and `/v1/moderations`. Policies are
/// `allow`, `flag` (serve, mark and count) or `block`; a model may override them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// What to do with a prompt whose injection score reaches `injection_threshold`.
    pub input_policy: Policy,
    pub injection_threshold: f32,
    /// Redact PII (emails, phones, cards, IBANs, national ids, secrets) in user text
    /// before it reaches the model.
    pub redact_input_pii: bool,
    /// What to do with an answer whose toxicity reaches `toxicity_threshold`.
    pub output_policy: Policy,
    pub toxicity_threshold: f32,
    /// Redact PII in generated text.
    pub redact_output_pii: bool,
    /// A moderation category is flagged at this score (`prompt_injection` uses
    /// `injection_threshold`).
    pub moderation_threshold: f32,
    /// A stream is screened over its most recent this-many bytes of text…
    pub stream_window_chars: usize,
    /// …each time this many new bytes have been released.
    pub stream_check_chars: usize,
    /// A fine-tuned toxicity model (milliseconds per call) screens the stream's window
    /// each time this many new bytes have been released, and once at the end.
    pub stream_classifier_chars: usize,
    /// Directory of trained guard classifiers (`floodgate guard train`); empty =
    /// `guard/` in the model home. Without them the rule layers work alone.
    pub classifier_dir: String,
    /// Let the learned toxicity head lift `/v1/moderations` scores. Off by default: it
    /// was trained on explicit toxicity and misfires on other styles (see README).
    pub classifier_toxicity: bool,
    /// Use the fine-tuned toxicity model (`floodgate guard train --toxicity-finetune`),
    /// when installed, for `/v1/moderations`.
    pub finetuned_toxicity: bool,
    /// …and for the output guard (answers and streams). Off by default: on ToxiGen-style
    /// text it also flags about a quarter of the benign statements about groups.
    pub finetuned_toxicity_output: bool,
    /// Use the language-model toxicity probe (`floodgate guard train --toxicity-probe`),
    /// when installed, wherever the fine-tuned model is used, and in its place when both
    /// are installed.
    pub toxicity_probe: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            input_policy: Policy::Block,
            injection_threshold: 0.5,
            redact_input_pii: false,
            output_policy: Policy::Block,
            toxicity_threshold: 0.5,
            redact_output_pii: true,
            moderation_threshold: 0.5,
            stream_window_chars: 512,
            stream_check_chars: 32,
            stream_classifier_chars: 256,
            classifier_dir: String::new(),
            classifier_toxicity: false,
            finetuned_toxicity: true,
            finetuned_toxicity_output: false,
            toxicity_probe: true,
        }
    }
}

impl GuardConfig {
    /// Problems with this section, each with its path.
    pub(super) fn validate(&self, errors: &mut Vec<String>) {
        let g = self;
        for (name, v) in [
            ("injection_threshold", g.injection_threshold),
            ("toxicity_threshold", g.toxicity_threshold),
            ("moderation_threshold", g.moderation_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                errors.push(format!("guard.{name}: must be between 0 and 1"));
            }
        }
        if g.stream_window_chars < 16 || g.stream_check_chars == 0 || g.stream_classifier_chars == 0
        {
            errors.push(
                "guard.stream_window_chars: must be at least 16 (and stream_check_chars and stream_classifier_chars at least 1)"
                    .into(),
            );
        }
    }
}
