//! Where the client keeps its tokens between requests and, with [`FileStore`], between runs.
//! A store only saves and loads; when to refresh is the session's business.

use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The tokens of a session. `Debug` masks them: tokens are credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token sent as `Authorization: Bearer`.
    pub access: String,
    /// The refresh token; `None` in the server's cookie mode, where it lives in an HttpOnly
    /// cookie of the client's cookie store instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access", &"****")
            .field("refresh", &self.refresh.as_ref().map(|_| "****"))
            .finish()
    }
}

/// Keeps a session's tokens. The client loads them once when it is built and saves them after
/// every sign-in and refresh (a rotated refresh token replaces the old one), so a store that
/// outlives the process resumes the session.
///
/// Calls are synchronous and made while the client holds its refresh lock: keep them short.
pub trait TokenStore: Send + Sync + 'static {
    /// The saved tokens, `None` when there are none.
    fn load(&self) -> io::Result<Option<Tokens>>;
    /// Replaces the saved tokens.
    fn save(&self, tokens: &Tokens) -> io::Result<()>;
    /// Forgets the tokens (sign-out, or the server refused the refresh token).
    fn clear(&self) -> io::Result<()>;
}

/// Tokens in memory only (the default): the session ends with the process. Clones share the
/// same tokens.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(Arc<Mutex<Option<Tokens>>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TokenStore for MemoryStore {
    fn load(&self) -> io::Result<Option<Tokens>> {
        Ok(self.0.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    fn save(&self, tokens: &Tokens) -> io::Result<()> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(tokens.clone());
        Ok(())
    }

    fn clear(&self) -> io::Result<()> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }
}

/// Tokens in a JSON file, readable and writable by its owner only (mode 0600 on Unix).
///
/// Each save writes a temporary file in the same directory and renames it over the old one, so
/// a crash leaves either the old tokens or the new ones, never half a file, and the file never
/// exists with wider permissions.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path`; the file is created on the first save, its directory must exist.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }
}

impl TokenStore for FileStore {
    fn load(&self) -> io::Result<Option<Tokens>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn save(&self, tokens: &Tokens) -> io::Result<()> {
        let dir = self.dir();
        let mut builder = tempfile::Builder::new();
        builder.prefix(".jwtd-tokens-").suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // Created with these bits (O_CREAT | O_EXCL), so no other user can open it in between.
            builder.permissions(std::fs::Permissions::from_mode(0o600));
        }
        let mut file = builder.tempfile_in(dir)?;
        file.write_all(&serde_json::to_vec(tokens).map_err(io::Error::other)?)?;
        file.as_file().sync_all()?;
        file.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(dir)
    }

    fn clear(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => sync_dir(self.dir()),
        }
    }
}

/// Makes a rename or removal durable: on Unix a directory entry change is only on disk once the
/// directory itself is synced.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(access: &str, refresh: Option<&str>) -> Tokens {
        Tokens { access: access.into(), refresh: refresh.map(Into::into) }
    }

    #[test]
    fn debug_masks_the_tokens() {
        let shown = format!("{:?}", tokens("secret-access", Some("secret-refresh")));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn memory_store_clones_share_tokens() {
        let a = MemoryStore::new();
        let b = a.clone();
        a.save(&tokens("a", Some("r"))).unwrap();
        assert_eq!(b.load().unwrap(), Some(tokens("a", Some("r"))));
        b.clear().unwrap();
        assert_eq!(a.load().unwrap(), None);
    }

    #[test]
    fn file_store_round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens.json"));
        assert_eq!(store.load().unwrap(), None);
        store.save(&tokens("a1", Some("r1"))).unwrap();
        store.save(&tokens("a2", None)).unwrap();
        assert_eq!(store.load().unwrap(), Some(tokens("a2", None)));
        store.clear().unwrap();
        store.clear().unwrap();
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn file_store_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens.json"));
        for i in 0..3 {
            store.save(&tokens(&format!("a{i}"), Some("r"))).unwrap();
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["tokens.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn file_store_file_is_private_even_if_it_was_not() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        FileStore::new(&path).save(&tokens("a", Some("r"))).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn file_store_reports_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, "not json").unwrap();
        assert!(FileStore::new(&path).load().is_err());
    }
}
