//! The nightly job's cache directory, kept between runs:
//!
//! ```text
//! <cache>/.lock                    held (flock) by the running job
//! <cache>/run.XXXXXX/              one job's scratch: binaries, logs, artifacts
//! <cache>/corpus/<target>          a link to the target's current working corpus, ...
//! <cache>/corpus/.gen/<target>.*   ... one of these generations
//! ```
//!
//! A merge writes a new generation and switches the link to it with one rename, so a job
//! killed at any point leaves the old corpus or the new one. The lock is the kernel's: it goes
//! with the process that held it, so a killed job never blocks the next, which clears what the
//! killed one left.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The cache, locked for this job.
pub struct Cache {
    pub dir: PathBuf,
    /// Held until the job ends (its descriptor is close-on-exec: no child inherits it).
    _lock: File,
}

impl Cache {
    /// Lock `dir` (created if missing) and clear what a killed job left in it.
    pub fn open(dir: &Path) -> Result<Cache, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the cache directory {}: {e}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock_path = dir.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!("another nightly job is using {}", dir.display()))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("{}: {e}", lock_path.display()))
            }
        }
        let cache = Cache { dir, _lock: lock };
        cache.clear_leftovers()?;
        Ok(cache)
    }

    fn corpus_dir(&self) -> PathBuf {
        self.dir.join("corpus")
    }

    fn generations(&self) -> PathBuf {
        self.corpus_dir().join(".gen")
    }

    /// The link to `target`'s working corpus.
    pub fn corpus_link(&self, target: &str) -> PathBuf {
        self.corpus_dir().join(target)
    }

    /// Scratch directories of killed jobs, and generations no link points at (a merge that
    /// was killed before its rename).
    fn clear_leftovers(&self) -> Result<(), String> {
        for entry in read_dir(&self.dir)? {
            let name = entry.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("run.") && entry.is_dir() {
                remove_dir(&entry)?;
            }
        }
        let generations = self.generations();
        if !generations.is_dir() {
            return Ok(());
        }
        let used: Vec<PathBuf> = read_dir(&self.corpus_dir())?
            .into_iter()
            .filter_map(|link| std::fs::read_link(link).ok())
            .collect();
        for generation in read_dir(&generations)? {
            let name = generation.file_name().unwrap_or_default();
            if !used.iter().any(|u| u == &Path::new(".gen").join(name)) {
                remove_dir(&generation)?;
            }
        }
        Ok(())
    }

    /// A new scratch directory for this job.
    pub fn scratch(&self) -> Result<PathBuf, String> {
        for attempt in 0..100u32 {
            let dir = self
                .dir
                .join(format!("run.{}.{attempt}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            }
        }
        Err(format!(
            "no scratch directory could be made in {}",
            self.dir.display()
        ))
    }

    /// The inputs of `target`'s working corpus. A plain directory there (an older layout, or
    /// made by hand) first becomes a generation.
    pub fn working_corpus(&self, target: &str) -> Result<Vec<PathBuf>, String> {
        let link = self.corpus_link(target);
        let meta = std::fs::symlink_metadata(&link);
        if meta.as_ref().is_ok_and(|m| m.is_dir()) {
            std::fs::create_dir_all(self.generations())
                .map_err(|e| format!("{}: {e}", self.generations().display()))?;
            let name = format!("{target}.legacy.{}", std::process::id());
            std::fs::rename(&link, self.generations().join(&name))
                .map_err(|e| format!("{}: {e}", link.display()))?;
            std::os::unix::fs::symlink(Path::new(".gen").join(&name), &link)
                .map_err(|e| format!("{}: {e}", link.display()))?;
        }
        if !link.is_dir() {
            return Ok(Vec::new());
        }
        files_in(&link)
    }

    /// A new, empty generation for `target`'s next working corpus, stamped `stamp`.
    pub fn new_generation(&self, target: &str, stamp: &str) -> Result<PathBuf, String> {
        let dir = self
            .generations()
            .join(format!("{target}.{stamp}.{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Make `generation` the working corpus of `target` (one rename), then delete the one it
    /// replaces.
    pub fn switch_to(&self, target: &str, generation: &Path) -> Result<(), String> {
        let link = self.corpus_link(target);
        let old = std::fs::read_link(&link).ok();
        let name = generation
            .file_name()
            .ok_or_else(|| format!("{}: not a generation", generation.display()))?;
        let relative = Path::new(".gen").join(name);
        let next = self.corpus_dir().join(format!(".{target}.next"));
        let _ = std::fs::remove_file(&next);
        std::os::unix::fs::symlink(&relative, &next)
            .map_err(|e| format!("{}: {e}", next.display()))?;
        std::fs::rename(&next, &link).map_err(|e| format!("{}: {e}", link.display()))?;
        if let Some(old) = old.filter(|old| old != &relative) {
            let _ = std::fs::remove_dir_all(self.corpus_dir().join(old));
        }
        Ok(())
    }
}

/// The regular files directly in `dir`.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    Ok(read_dir(dir)?.into_iter().filter(|p| p.is_file()).collect())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    entries.sort();
    Ok(entries)
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::scratch;
    use super::*;

    #[test]
    fn one_job_per_cache() {
        let dir = scratch("cache-lock").join("cache");
        let first = Cache::open(&dir).unwrap();
        let err = Cache::open(&dir).err().unwrap();
        assert!(err.contains("another nightly job"), "{err}");
        drop(first);
        Cache::open(&dir).unwrap();
    }

    #[test]
    fn generations_switch_by_rename_and_leftovers_go() {
        let dir = scratch("cache-generations").join("cache");
        let cache = Cache::open(&dir).unwrap();
        // A working corpus as a plain directory becomes a generation.
        std::fs::create_dir_all(cache.corpus_link("lookups")).unwrap();
        std::fs::write(cache.corpus_link("lookups").join("a"), "a").unwrap();
        assert_eq!(cache.working_corpus("lookups").unwrap().len(), 1);
        assert!(std::fs::symlink_metadata(cache.corpus_link("lookups"))
            .unwrap()
            .is_symlink());
        let next = cache.new_generation("lookups", "20261207T000000").unwrap();
        std::fs::write(next.join("b"), "b").unwrap();
        std::fs::write(next.join("c"), "c").unwrap();
        cache.switch_to("lookups", &next).unwrap();
        assert_eq!(cache.working_corpus("lookups").unwrap().len(), 2);
        // What a killed job leaves: its scratch, and a generation it never switched to.
        let run = cache.scratch().unwrap();
        let orphan = cache.new_generation("lookups", "20261207T010000").unwrap();
        drop(cache);
        let cache = Cache::open(&dir).unwrap();
        assert!(!run.exists() && !orphan.exists());
        assert!(next.exists(), "the generation in use stays");
        assert_eq!(cache.working_corpus("lookups").unwrap().len(), 2);
        let gens = std::fs::read_dir(dir.join("corpus/.gen")).unwrap().count();
        assert_eq!(gens, 1, "the replaced generation was deleted");
    }
}
