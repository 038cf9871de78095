//! Chat templates: rendering a conversation into the prompt the model was trained on.
//!
//! Real chat templates ship in the GGUF metadata as Jinja, so they are rendered with
//! minijinja (plus Python string-method compatibility, which most templates use).
//!
//! Security invariant: text that came from a client is never parsed for special
//! tokens. A user who writes `<|im_start|>system` gets those characters, not a fake
//! system turn. To keep that true, each message body is rendered as an unguessable
//! marker; the rendered prompt is then split at the markers so the engine tokenizes
//! template text with special-token parsing and message text without it.

use minijinja::{context, Environment, Error, ErrorKind};
use rand::Rng;

/// One piece of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptSegment {
    /// Text produced by the template itself (may contain special-token text).
    Template(String),
    /// Text supplied by the client.
    Content(String),
}

#[derive(Debug, Clone)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// Upper bound on template evaluation work, so a pathological template cannot hang.
const TEMPLATE_FUEL: u64 = 5_000_000;

pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: String, eos_token: String) -> Result<Self, Error> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> String {
            // Templates use this for "today's date" in system prompts.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let days = now / 86_400;
            let (y, m, d) = civil_from_days(days as i64);
            fmt.replace("%Y", &format!("{y:04}"))
                .replace("%m", &format!("{m:02}"))
                .replace("%d", &format!("{d:02}"))
        });
        env.add_template_owned("chat", source.to_string())?;
        Ok(Self {
            env,
            bos_token,
            eos_token,
        })
    }

    /// Renders the conversation with the assistant's turn opened.
    pub fn render(&self, messages: &[Message]) -> Result<Vec<PromptSegment>, Error> {
        let nonce: u64 = rand::rng().random();
        let marker = |i: usize| format!("\u{F8F0}{nonce:016x}:{i}\u{F8F1}");
        let marked: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| context! { role => m.role.clone(), content => marker(i) })
            .collect();
        let rendered = self.env.get_template("chat")?.render(context! {
            messages => marked,
            add_generation_prompt => true,
            bos_token => self.bos_token.clone(),
            eos_token => self.eos_token.clone(),
        })?;
        let prefix = format!("\u{F8F0}{nonce:016x}:");
        let mut segments = Vec::new();
        let mut rest = rendered.as_str();
        while let Some(start) = rest.find(&prefix) {
            let after = &rest[start + prefix.len()..];
            let Some(end) = after.find('\u{F8F1}') else {
                break;
            };
            let Some(message) = after[..end]
                .parse::<usize>()
                .ok()
                .and_then(|i| messages.get(i))
            else {
                break;
            };
            if start > 0 {
                segments.push(PromptSegment::Template(rest[..start].to_string()));
            }
            segments.push(PromptSegment::Content(message.content.clone()));
            rest = &after[end + '\u{F8F1}'.len_utf8()..];
        }
        if !rest.is_empty() {
            segments.push(PromptSegment::Template(rest.to_string()));
        }
        Ok(segments)
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn chatml_renders_with_content_kept_apart() {
        let t = ChatTemplate::new(CHATML, "<s>".into(), "</s>".into()).unwrap();
        let segs = t
            .render(&[msg("system", "Be brief."), msg("user", "<|im_start|>hi")])
            .unwrap();
        assert_eq!(
            segs,
            vec![
                PromptSegment::Template("<|im_start|>system\n".into()),
                PromptSegment::Content("Be brief.".into()),
                PromptSegment::Template("<|im_end|>\n<|im_start|>user\n".into()),
                PromptSegment::Content("<|im_start|>hi".into()),
                PromptSegment::Template("<|im_end|>\n<|im_start|>assistant\n".into()),
            ]
        );
    }

    #[test]
    fn python_style_methods_and_raise_exception_work() {
        let src = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}{{ bos_token }}{{ messages[0]['role'].upper() }}";
        let t = ChatTemplate::new(src, "<s>".into(), "</s>".into()).unwrap();
        let segs = t.render(&[msg("user", "x")]).unwrap();
        assert_eq!(segs, vec![PromptSegment::Template("<s>USER".into())]);
        let err = t.render(&[msg("system", "x")]).unwrap_err();
        assert!(err.to_string().contains("first must be user"), "{err}");
    }

    #[test]
    fn calendar_conversion() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }
}
