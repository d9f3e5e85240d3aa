//! The output directory: a staging directory written file by file, swapped into place
//! atomically only when the whole build succeeded, plus the manifest of every file.
//!
//! A failed build removes its staging directory and leaves `--out` exactly as it was.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the manifest at the root of every built site.
pub const MANIFEST: &str = "aurelio-manifest.json";

/// How long a CDN and browsers may keep a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CachePolicy {
    /// Content-hashed name: cache for a year, never revalidate.
    Immutable,
    /// Pages, sitemap, feeds: short cache, revalidate.
    Revalidate,
}

impl CachePolicy {
    /// The `Cache-Control` header value for this policy.
    pub fn header(self) -> &'static str {
        match self {
            Self::Immutable => "public, max-age=31536000, immutable",
            Self::Revalidate => "public, max-age=60, must-revalidate",
        }
    }
}

/// One file of the built site, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// blake3 of the content, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub content_type: String,
    /// Cache policy.
    pub cache: CachePolicy,
}

/// The manifest: every file of the site keyed by its path, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Files by relative path with `/` separators.
    pub files: BTreeMap<String, FileEntry>,
}

/// MIME type from a file name.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("xml") => "application/xml; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// What to put at a path: bytes, or a file to link or copy (from the image cache).
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// This file, whose blake3 hex hash and size are known.
    File {
        /// The file.
        path: &'a Path,
        /// Its blake3 hash, hex.
        hash: &'a str,
        /// Its size in bytes.
        size: u64,
    },
}

/// Where a build puts files; implemented by a staging directory (full builds) and by a
/// pending change set applied in place (incremental builds).
pub trait Sink: Sync {
    /// Puts one file (relative path with `/`) and returns its manifest entry.
    fn put(
        &self,
        rel: &str,
        content: Content<'_>,
        cache: CachePolicy,
    ) -> io::Result<(String, FileEntry)>;

    /// True for a staging directory, which must receive every file of the site; false
    /// for an in-place change set, which receives only what changed.
    fn receives_everything(&self) -> bool {
        false
    }
}

/// Hard-links `from` to `to`, copying when linking is impossible (another file system).
pub fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(to)?;
            std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(drop))
        }
        Err(_) => std::fs::copy(from, to).map(drop),
    }
}

/// Puts the file `tmp` in place of `target` atomically: readers see the old file or the new
/// one, never neither. An existing target is exchanged with `tmp` (`renameat2` with
/// `RENAME_EXCHANGE`), after which `tmp` holds the old file and `true` is returned: the
/// caller removes it, now or later (`Janitor`). A plain rename over an existing file makes
/// ext4 (`auto_da_alloc`) allocate and start writing the new file's blocks on the spot,
/// which cost 1.5 ms per 40 KB page and 6 ms per 3 MB manifest here; removing the old
/// file frees its blocks, about 1 ms per page once it has been written back. Where the
/// exchange is not supported (or there is no target yet), a plain rename.
pub fn exchange(tmp: &Path, target: &Path) -> io::Result<bool> {
    let exchanged = rustix::fs::renameat_with(
        rustix::fs::CWD,
        tmp,
        rustix::fs::CWD,
        target,
        rustix::fs::RenameFlags::EXCHANGE,
    );
    match exchanged {
        Ok(()) => Ok(true),
        Err(_) => std::fs::rename(tmp, target).map(|()| false),
    }
}

/// `exchange`, then removes the old file at once.
pub fn replace(tmp: &Path, target: &Path) -> io::Result<()> {
    if exchange(tmp, target)? {
        std::fs::remove_file(tmp)?;
    }
    Ok(())
}

/// A hidden name next to `target` for a temporary file (`tag`: what it is for), unique in
/// this process: a file waiting for the `Janitor` never shares a name with a new one.
pub fn temporary_name(target: &Path, tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    target.with_file_name(format!(
        ".{}.{tag}-{}-{n}",
        target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ))
}

/// Writes `bytes` to `target` through a temporary file next to it and `exchange`; where
/// the old file is now, for the caller to remove (see `Janitor`).
pub fn write_exchanging(target: &Path, bytes: &[u8]) -> io::Result<Option<PathBuf>> {
    let tmp = temporary_name(target, "tmp");
    std::fs::write(&tmp, bytes)?;
    match exchange(&tmp, target) {
        Ok(exchanged) => Ok(exchanged.then_some(tmp)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `write_exchanging`, then removes the old file at once.
pub fn write_replacing(target: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(old) = write_exchanging(target, bytes)? {
        std::fs::remove_file(old)?;
    }
    Ok(())
}

/// File work nothing waits for, done in order on a background thread: deleting replaced
/// and removed files (freeing their blocks costs about 1 ms per written-back page, 180 ms
/// for 150 MB of feeds) and writing caches such as the build state. `wait` (and `Drop`)
/// finishes everything.
#[derive(Debug, Default)]
pub struct Janitor {
    queued: Vec<Chore>,
    running: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
enum Chore {
    /// Remove the file; with a directory, then its parents while empty, up to that one.
    Remove(PathBuf, Option<PathBuf>),
    /// Write the file (atomically, through `write_replacing`) with what the closure makes.
    Write(PathBuf, Contents),
}

/// A file's contents, made on the janitor's thread (`None`: write nothing).
struct Contents(Box<dyn FnOnce() -> Option<Vec<u8>> + Send>);

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contents(..)")
    }
}

impl Janitor {
    /// Queues `file` for removal; with `up_to`, then its parent directories while they
    /// are empty, stopping at `up_to`.
    pub fn push(&mut self, file: PathBuf, up_to: Option<PathBuf>) {
        self.queued.push(Chore::Remove(file, up_to));
    }

    /// Queues writing what `contents` makes (on the janitor's thread, so serialising a
    /// large cache costs the build nothing) to `file`; a failure is ignored: only for caches.
    pub fn write(
        &mut self,
        file: PathBuf,
        contents: impl FnOnce() -> Option<Vec<u8>> + Send + 'static,
    ) {
        self.queued.push(Chore::Write(file, Contents(Box::new(contents))));
    }

    /// Takes over what `other` has queued.
    pub fn absorb(&mut self, mut other: Janitor) {
        other.finish_running();
        self.queued.append(&mut other.queued);
    }

    /// Starts doing what is queued (after the previous batch).
    pub fn start(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.queued);
        let previous = self.running.take();
        let spawned = std::thread::Builder::new().name("aurelio-janitor".into()).spawn(move || {
            if let Some(previous) = previous {
                let _ = previous.join();
            }
            run(batch);
        });
        // Should no thread start, the batch is lost with the closure: hidden files or a
        // missing cache left behind, never a wrong output.
        if let Ok(handle) = spawned {
            self.running = Some(handle);
        }
    }

    /// Does everything queued and waits until every batch is done.
    pub fn wait(&mut self) {
        self.finish_running();
        run(std::mem::take(&mut self.queued));
    }

    fn finish_running(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.join();
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.wait();
    }
}

fn run(batch: Vec<Chore>) {
    for chore in batch {
        match chore {
            Chore::Write(file, contents) => {
                let Some(bytes) = (contents.0)() else { continue };
                if let Some(parent) = file.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = write_replacing(&file, &bytes);
            }
            Chore::Remove(file, up_to) => {
                let _ = std::fs::remove_file(&file);
                let Some(stop) = up_to else { continue };
                let mut dir = file.parent();
                while let Some(d) = dir {
                    if d == stop || !d.starts_with(&stop) || std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
        }
    }
}

/// The manifest entry of a file given by hash and size.
pub fn entry_of(rel: &str, hash: &str, size: u64, cache: CachePolicy) -> FileEntry {
    FileEntry { hash: hash.to_owned(), size, content_type: content_type(rel).to_owned(), cache }
}

/// A directory being written; becomes the output only through `commit`.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl Staging {
    /// Creates a fresh staging directory beside `out` (same file system, so the swap is a
    /// rename). Refuses to ever replace a non-empty directory that is not an Aurelio site.
    pub fn new(out: &Path) -> io::Result<Self> {
        if out.is_dir() && !out.join(MANIFEST).is_file() && std::fs::read_dir(out)?.next().is_some()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "refusing to replace `{}`: it is not empty and holds no Aurelio build ({MANIFEST})",
                    out.display()
                ),
            ));
        }
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "site".into());
        let dir = parent.join(format!(".{name}.staging-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, out: out.to_owned(), committed: false })
    }

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one file (relative path with `/`), creating parents, and returns its entry.
    pub fn write(
        &self,
        rel: &str,
        bytes: &[u8],
        cache: CachePolicy,
    ) -> io::Result<(String, FileEntry)> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
        Ok((rel.to_owned(), entry(rel, bytes, cache)))
    }

    /// The output directory this staging directory will replace.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Puts the staging directory in place of the output: an atomic exchange where the
    /// file system supports it, otherwise two renames.
    pub fn commit(mut self) -> io::Result<()> {
        if self.out.exists() {
            let exchanged = rustix::fs::renameat_with(
                rustix::fs::CWD,
                &self.dir,
                rustix::fs::CWD,
                &self.out,
                rustix::fs::RenameFlags::EXCHANGE,
            );
            if exchanged.is_err() {
                let old = self.dir.with_extension("old");
                std::fs::rename(&self.out, &old)?;
                std::fs::rename(&self.dir, &self.out)?;
                std::fs::rename(&old, &self.dir)?;
            }
            // `self.dir` now holds the previous site; `Drop` removes it.
        } else {
            std::fs::rename(&self.dir, &self.out)?;
            self.committed = true;
        }
        Ok(())
    }
}

impl Sink for Staging {
    fn receives_everything(&self) -> bool {
        true
    }

    fn put(
        &self,
        rel: &str,
        content: Content<'_>,
        cache: CachePolicy,
    ) -> io::Result<(String, FileEntry)> {
        match content {
            Content::Bytes(bytes) => self.write(rel, bytes, cache),
            Content::File { path, hash, size } => {
                link_or_copy(path, &self.dir.join(rel))?;
                Ok((rel.to_owned(), entry_of(rel, hash, size, cache)))
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The manifest entry of a file's bytes.
pub fn entry(rel: &str, bytes: &[u8], cache: CachePolicy) -> FileEntry {
    FileEntry {
        hash: blake3::hash(bytes).to_hex().to_string(),
        size: bytes.len() as u64,
        content_type: content_type(rel).to_owned(),
        cache,
    }
}

/// First 10 hex digits of the blake3 hash, for content-hashed file names.
pub fn short_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_discards() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("site");
        let s = Staging::new(&out).expect("staging");
        s.write("a/index.html", b"one", CachePolicy::Revalidate).expect("write");
        s.write(MANIFEST, b"{}", CachePolicy::Revalidate).expect("write");
        s.commit().expect("commit");
        assert_eq!(std::fs::read(out.join("a/index.html")).expect("read"), b"one");

        let s = Staging::new(&out).expect("staging");
        s.write("b/index.html", b"two", CachePolicy::Revalidate).expect("write");
        drop(s);
        assert!(out.join("a/index.html").exists(), "an abandoned build leaves the old site");
        assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 1, "no staging left behind");

        let s = Staging::new(&out).expect("staging");
        s.write("b/index.html", b"two", CachePolicy::Revalidate).expect("write");
        s.write(MANIFEST, b"{}", CachePolicy::Revalidate).expect("write");
        s.commit().expect("commit");
        assert!(!out.join("a/index.html").exists());
        assert!(out.join("b/index.html").exists());
        assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 1, "old site removed");
    }

    #[test]
    fn refuses_to_replace_foreign_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("thesis.tex"), "x").expect("write");
        let err = Staging::new(tmp.path()).expect_err("must refuse");
        assert!(err.to_string().contains("refusing to replace"), "{err}");
    }
}
