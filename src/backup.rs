//! `huying backup` / `huying restore` for SQLite deployments: one `.tar.gz` holding a
//! consistent copy of the database (`VACUUM INTO`, taken while the service runs) and the photo
//! files its rows name. PostgreSQL has its own tools (`pg_dump -Fc`, `pg_restore`), see
//! docs/operations.md.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::db::Target;

const MANIFEST: &str = "huying-backup.json";
const DATABASE: &str = "huying.db";
const ATTACHMENTS: &str = "attachments/";
const FORMAT: u32 = 1;
/// A photo's row commits before its file is renamed into place; a row in the copy whose file
/// is not there yet is waited for this long.
const RENAME_GRACE: Duration = Duration::from_secs(10);

/// The operator asked for something this command does not do (a PostgreSQL database, a
/// restore over existing data): `main` exits 2, the same as a configuration error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: chrono::DateTime<chrono::Utc>,
    huying_version: String,
    attachments: usize,
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub database_bytes: u64,
    pub attachments: usize,
    /// Rows whose photo file was not found (lost before the backup); the rows are kept.
    pub missing_attachments: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub attachments: usize,
}

fn sqlite_path(settings: &Settings, command: &str) -> anyhow::Result<PathBuf> {
    use secrecy::ExposeSecret;
    match Target::parse(settings.database.url.expose_secret())
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
    {
        Target::Sqlite(path) if path != ":memory:" => Ok(PathBuf::from(path)),
        Target::Sqlite(_) => Err(Refused(format!("{command}: an in-memory database has nothing to back up")).into()),
        Target::Postgres(_) => Err(Refused(format!(
            "huying {command} 只用于 SQLite。PostgreSQL 请用 pg_dump -Fc / pg_restore，并另外备份附件目录 \
             {}（见 docs/operations.md）/ `huying {command}` is for SQLite only; for PostgreSQL use \
             pg_dump -Fc and pg_restore, and copy the attachments directory (see docs/operations.md)",
            settings.data.dir.join("attachments").display()
        ))
        .into()),
    }
}

#[derive(QueryableByName)]
struct StorageName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    storage_name: String,
}

/// Copies the database while the service runs and archives it with its photos. The copy is
/// one read transaction, so it holds every ticket committed before it began; the photos taken
/// are exactly those its rows name.
pub fn backup(settings: &Settings, to: &Path) -> anyhow::Result<BackupReport> {
    let db_path = sqlite_path(settings, "backup")?;
    if !db_path.exists() {
        anyhow::bail!("no database at {}", db_path.display());
    }
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = parent.join(format!(".huying-backup-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = backup_via(&db_path, settings, to, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn backup_via(
    db_path: &Path,
    settings: &Settings,
    to: &Path,
    work: &Path,
) -> anyhow::Result<BackupReport> {
    let copy = work.join(DATABASE);
    {
        let mut live = SqliteConnection::establish(&db_path.to_string_lossy())
            .with_context(|| format!("opening {}", db_path.display()))?;
        live.batch_execute("PRAGMA busy_timeout = 10000;")?;
        diesel::sql_query("VACUUM INTO ?")
            .bind::<diesel::sql_types::Text, _>(copy.to_string_lossy())
            .execute(&mut live)
            .context("copying the database (VACUUM INTO)")?;
    }
    let names: Vec<String> = {
        let mut snap = SqliteConnection::establish(&copy.to_string_lossy())?;
        // A single self-contained file, whatever the live database's journal mode.
        snap.batch_execute("PRAGMA journal_mode = DELETE;")?;
        diesel::sql_query("SELECT storage_name FROM ticket_attachments ORDER BY id")
            .load::<StorageName>(&mut snap)
            .context("reading the attachment list from the copy")?
            .into_iter()
            .map(|r| r.storage_name)
            .collect()
    };
    let dir = settings.data.dir.join("attachments");
    let mut waiting: BTreeSet<&String> = names.iter().collect();
    let since = Instant::now();
    loop {
        waiting.retain(|n| !dir.join(n).is_file());
        if waiting.is_empty() || since.elapsed() > RENAME_GRACE {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let missing: Vec<String> = waiting.into_iter().cloned().collect();
    for name in &missing {
        tracing::warn!(file = %name, "attachment named in the database is missing; not in the backup");
    }

    let partial = work.join("archive.tar.gz");
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    let present: Vec<&String> = names.iter().filter(|n| !missing.contains(n)).collect();
    let manifest = serde_json::to_vec_pretty(&Manifest {
        format: FORMAT,
        created_at: chrono::Utc::now(),
        huying_version: env!("CARGO_PKG_VERSION").to_string(),
        attachments: present.len(),
    })?;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    tar.append_data(&mut header, MANIFEST, manifest.as_slice())?;
    tar.append_path_with_name(&copy, DATABASE)?;
    for name in &present {
        tar.append_path_with_name(dir.join(name), format!("{ATTACHMENTS}{name}"))
            .with_context(|| format!("adding attachment {name}"))?;
    }
    let file = tar.into_inner()?.finish()?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, to).with_context(|| format!("writing {}", to.display()))?;
    Ok(BackupReport {
        file: to.to_path_buf(),
        database_bytes: std::fs::metadata(&copy)?.len(),
        attachments: present.len(),
        missing_attachments: missing,
    })
}

fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", dir.display())),
    }
}

/// A photo's name as the service writes it (`<hex>.<ext>`); anything else in an archive (a
/// path, `..`) is refused rather than written somewhere.
fn valid_attachment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
}

/// Unpacks a backup into an empty data directory (and a database path with no file). Refuses
/// to overwrite anything.
pub fn restore(settings: &Settings, from: &Path) -> anyhow::Result<RestoreReport> {
    let db_path = sqlite_path(settings, "restore")?;
    let data_dir = &settings.data.dir;
    let sidecars = ["", "-wal", "-shm", "-journal"]
        .map(|s| PathBuf::from(format!("{}{s}", db_path.display())));
    if sidecars.iter().any(|p| p.exists()) || !is_empty_dir(data_dir)? {
        return Err(Refused(format!(
            "恢复只能写入空的数据目录：{} 或 {} 已有内容 / restore needs an empty data directory and no \
             database file: {} or {} is not empty",
            data_dir.display(),
            db_path.display(),
            data_dir.display(),
            db_path.display()
        ))
        .into());
    }
    let mut written: Vec<PathBuf> = Vec::new();
    let result = unpack(from, &db_path, data_dir, &mut written);
    if result.is_err() {
        // Empty again, so that a second try with a good archive is not refused.
        for p in written.iter().rev() {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_dir(data_dir.join("attachments"));
        let _ = std::fs::remove_dir(data_dir);
    }
    result
}

fn unpack(
    from: &Path,
    db_path: &Path,
    data_dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<RestoreReport> {
    let file = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let attachments = data_dir.join("attachments");
    std::fs::create_dir_all(&attachments)
        .with_context(|| format!("creating {}", attachments.display()))?;
    if let Some(parent) = db_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let db_partial = PathBuf::from(format!("{}.restoring", db_path.display()));
    let mut manifest: Option<Manifest> = None;
    let mut have_db = false;
    let mut count = 0usize;
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == MANIFEST {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            let m: Manifest = serde_json::from_str(&text).context("reading the manifest")?;
            if m.format != FORMAT {
                anyhow::bail!("backup format {} is not known to this version", m.format);
            }
            manifest = Some(m);
        } else if name == DATABASE {
            written.push(db_partial.clone());
            copy_to(&mut entry, &db_partial)?;
            have_db = true;
        } else if let Some(photo) = name.strip_prefix(ATTACHMENTS) {
            if !valid_attachment_name(photo) {
                anyhow::bail!("unexpected file in the archive: {name}");
            }
            let to = attachments.join(photo);
            written.push(to.clone());
            copy_to(&mut entry, &to)?;
            count += 1;
        } else {
            anyhow::bail!("unexpected file in the archive: {name}");
        }
    }
    let manifest = manifest.context("not a Huying backup (no manifest)")?;
    if !have_db {
        anyhow::bail!("the archive holds no database");
    }
    if manifest.attachments != count {
        anyhow::bail!(
            "the archive is incomplete: {count} of {} attachments",
            manifest.attachments
        );
    }
    std::fs::rename(&db_partial, db_path)?;
    written.push(db_path.to_path_buf());
    Ok(RestoreReport {
        database: db_path.to_path_buf(),
        attachments: count,
    })
}

fn copy_to(from: &mut impl Read, to: &Path) -> anyhow::Result<()> {
    let mut out = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    std::io::copy(from, &mut out).with_context(|| format!("writing {}", to.display()))?;
    out.flush()?;
    out.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_attachment_name;

    #[test]
    fn only_plain_attachment_names_are_restored() {
        assert!(valid_attachment_name("0f3a9c.jpg"));
        for bad in [
            "",
            "../x.jpg",
            "a/b.jpg",
            ".upload-1.tmp",
            "/etc/passwd",
            "..",
        ] {
            assert!(!valid_attachment_name(bad), "{bad}");
        }
    }
}
