//! One run at a time per output and warehouse: a lease object created with a conditional
//! put (`PutMode::Create`, which local disks, S3 and the other stores make atomic), holding
//! who took it and until when.
//!
//! The holder renews its lease (a heartbeat) long before it expires, each time with a
//! conditional replace of a lease that still names its run, so that a lease another run has
//! taken over is never written again: the holder learns it lost the lease and stops (and
//! gives it up itself when renewals keep failing until it nearly expires). A lease whose
//! expiry has passed belongs to a run that died (a killed pod, an OOM kill): the next run
//! takes it over with a conditional replace of exactly the expired content, so of two runs
//! taking it over at once exactly one wins. A lease is also stale when its holder ran on
//! this host, in this boot and process id namespace, and that process is gone; a lock
//! written by exdep 0.3.0, which has no expiry, needs `--break-lock` unless that holds.
//!
//! The conditional replace is the store's own (`PutMode::Update` on the object's ETag or
//! version: S3, GCS, Azure, memory). A local disk has none in `object_store`; there the
//! replace holds an exclusive `flock` on the lease file while it compares and renames a new
//! file over it, and checks that the path still names the file it locked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use exdep_core::Location;
use object_store::{self, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::objects::Objects;

/// Who holds a lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The host the run started on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started: String,
    /// The run's id, which tells this run's lease from one another run took over.
    pub run_id: String,
    /// When the lease expires unless renewed (RFC 3339); absent in a lock of exdep 0.3.0,
    /// which never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// How many times the holder has renewed it.
    #[serde(default)]
    pub renewals: u64,
    /// The holder's process id namespace (`/proc/self/ns/pid`): its pid means something
    /// only there (two pods may share a host name, not their pids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
    /// The holder host's boot (`/proc/sys/kernel/random/boot_id`): two hosts may share a
    /// host name and the initial pid namespace, not a boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the run on host {} (pid {}) started at {}",
            self.host, self.pid, self.started
        )?;
        if let Some(expires) = &self.expires {
            write!(f, ", its lease renewed until {expires}")?;
        }
        Ok(())
    }
}

impl LockHolder {
    /// This process, for the run `run_id` started at `started`.
    pub fn this_process(run_id: &str, started: &str) -> Self {
        Self {
            host: host_name(),
            pid: std::process::id(),
            started: started.to_string(),
            run_id: run_id.to_string(),
            expires: None,
            renewals: 0,
            pid_namespace: pid_namespace(),
            boot_id: boot_id(),
        }
    }

    /// Whether the holder is known to be gone: it ran on this host, in this process id
    /// namespace where it says which, and its process no longer exists (checked where
    /// `/proc` tells, that is on Linux).
    fn is_gone(&self) -> bool {
        let proc = std::path::Path::new("/proc");
        let same_namespace = self.pid_namespace.is_none() || self.pid_namespace == pid_namespace();
        let same_boot = self.boot_id.is_none() || self.boot_id == boot_id();
        self.host == host_name()
            && same_namespace
            && same_boot
            && proc.is_dir()
            && !proc.join(self.pid.to_string()).exists()
    }

    /// Whether its lease has expired by `now`.
    fn has_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires
            .as_deref()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .is_some_and(|expires| expires < now)
    }

    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("strings and numbers serialize")
    }
}

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.display().to_string())
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The leases a run holds, one per root, renewed by a heartbeat until
/// [`RunLock::release`]. Dropped without a release, the heartbeat stops and the leases
/// expire.
#[derive(Debug)]
pub struct RunLock {
    shared: Arc<Leases>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Debug)]
struct Leases {
    locks: Vec<Location>,
    /// The lease as this run last stored it in every lock (its expiry is the one that
    /// counts for other runs).
    holder: Mutex<LockHolder>,
    length: Duration,
    /// Whether a store without conditional replaces may have its lease written plainly.
    plain_writes: bool,
    /// Cancelled when the run has lost a lease: taken over, or expired unrenewed.
    lost: CancellationToken,
    /// Why, as the error the run fails with.
    lost_because: Mutex<Option<(String, String)>>,
    /// Cancelled to stop the heartbeat.
    stopped: CancellationToken,
    /// Held while this run reads or writes its leases, so that it never reads one halfway
    /// through its own renewal.
    io: tokio::sync::Mutex<()>,
}

impl RunLock {
    /// Takes every lease in `leases` (the warehouse's and the output's, see
    /// [`crate::layout`]), in order, for `length`, and starts renewing them. A lease held by
    /// a live run fails at once,
    /// naming the holder, after releasing the leases already taken; `break_lock` takes
    /// existing leases over whoever holds them. `plain_writes` lets a store without
    /// conditional replaces write the lease anyway (the scheduler serialises runs).
    pub async fn acquire(
        ctx: &SessionContext,
        leases: &[Location],
        holder: LockHolder,
        length: Duration,
        plain_writes: bool,
        break_lock: bool,
    ) -> Result<Self> {
        let mut holder = holder;
        holder.expires = Some(expiry(length));
        let first = holder.bytes();
        let mut taken = Leases {
            locks: Vec::new(),
            holder: Mutex::new(holder),
            length,
            plain_writes,
            lost: CancellationToken::new(),
            lost_because: Mutex::new(None),
            stopped: CancellationToken::new(),
            io: tokio::sync::Mutex::new(()),
        };
        for location in leases {
            if let Err(error) = taken.take(ctx, location, &first, break_lock).await {
                taken.release_all(ctx).await?;
                return Err(error);
            }
            taken.locks.push(location.clone());
        }
        // A first renewal at once: a store that cannot replace an object conditionally is
        // refused now, not a quarter of a lease later.
        if let Err(error) = taken.renew(ctx).await {
            taken.release_all(ctx).await?;
            return Err(error);
        }
        let shared = Arc::new(taken);
        let heartbeat = tokio::spawn(Arc::clone(&shared).renew_until_stopped(ctx.clone()));
        Ok(Self {
            shared,
            heartbeat: Some(heartbeat),
        })
    }

    /// A token cancelled when the run has lost its lease (another run took it over after
    /// it expired): the run must stop and publish nothing more.
    pub fn lost(&self) -> CancellationToken {
        self.shared.lost.clone()
    }

    /// Why the run lost its lease, once [`RunLock::lost`] is cancelled.
    pub fn lost_error(&self) -> Option<Error> {
        let because = self
            .shared
            .lost_because
            .lock()
            .expect("not poisoned")
            .clone();
        because.map(|(lock, holder)| Error::LeaseLost { lock, holder })
    }

    /// Renews every lease now, which fails unless each still holds what this run wrote
    /// last: checked before each step that commits or publishes.
    pub async fn ensure_held(&self, ctx: &SessionContext) -> Result<()> {
        self.shared.renew(ctx).await
    }

    /// Stops renewing (after a renewal under way) and removes the leases this run still
    /// holds (a lease another run took over stays).
    pub async fn release(mut self, ctx: &SessionContext) -> Result<()> {
        self.shared.stopped.cancel();
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.await;
        }
        self.shared.release_all(ctx).await
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.shared.stopped.cancel();
    }
}

impl Leases {
    async fn take(
        &self,
        ctx: &SessionContext,
        location: &Location,
        ours: &[u8],
        break_lock: bool,
    ) -> Result<()> {
        let store = location.store(ctx)?;
        let path = location.path()?;
        // Two tries: the second when the lease was released between the create and the read.
        for _ in 0..2 {
            let payload = PutPayload::from(ours.to_vec());
            match store.put_opts(&path, payload, PutMode::Create.into()).await {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(object_store::Error::NotImplemented { .. }) if !self.plain_writes => {
                    return Err(Error::NoConditionalUpdate {
                        lock: location.to_string(),
                    });
                }
                // The scheduler serialises runs: a lease that is not there is written.
                Err(object_store::Error::NotImplemented { .. }) => match store.head(&path).await {
                    Err(object_store::Error::NotFound { .. }) => {
                        store.put(&path, PutPayload::from(ours.to_vec())).await?;
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(error) => return Err(error.into()),
                },
                Err(error) => return Err(error.into()),
            }
            let found = match location.read_all(ctx).await {
                Ok(bytes) => bytes,
                Err(error) if error.is_not_found() => continue,
                Err(error) => return Err(error),
            };
            let holder = serde_json::from_slice::<LockHolder>(&found).ok();
            let why = match &holder {
                _ if break_lock => "--break-lock",
                Some(h) if h.has_expired(Utc::now()) => "its lease expired",
                Some(h) if h.is_gone() => "its process is gone",
                _ => {
                    return Err(Error::Locked {
                        lock: location.to_string(),
                        holder: holder.map_or_else(
                            || "a run whose lock cannot be read".to_string(),
                            |h| h.to_string(),
                        ),
                    });
                }
            };
            if let Some(holder) = &holder {
                warn!(lock = %location, %holder, "taking the lease over ({why})");
            }
            let expired = Expect::Bytes(found);
            if replace_if_unchanged(ctx, location, &expired, ours.to_vec(), self.plain_writes)
                .await?
            {
                return Ok(());
            }
            // Another run took it over first.
            let holder = match location.read_all(ctx).await {
                Ok(bytes) => serde_json::from_slice::<LockHolder>(&bytes)
                    .map_or_else(|_| "another run".to_string(), |h| h.to_string()),
                Err(_) => "another run".to_string(),
            };
            return Err(Error::Locked {
                lock: location.to_string(),
                holder,
            });
        }
        Err(Error::Locked {
            lock: location.to_string(),
            holder: "another run that took it at the same moment".to_string(),
        })
    }

    /// Renews the leases every quarter of their length until stopped. A renewal that
    /// fails on the store is tried again sooner, until the lease would expire; a lease
    /// found taken over, or expired, is lost.
    async fn renew_until_stopped(self: Arc<Self>, ctx: SessionContext) {
        let mut wait = self.length / 4;
        loop {
            tokio::select! {
                () = self.stopped.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.renew(&ctx).await {
                Ok(()) => wait = self.length / 4,
                Err(Error::LeaseLost { lock, holder }) => {
                    warn!(
                        lock,
                        holder, "this run's lease was taken over; stopping the run"
                    );
                    return self.lose(lock, holder);
                }
                Err(error) if self.expires_within(self.length / 8) => {
                    let error = exdep_core::error_chain(&error);
                    warn!(%error, "this run's lease expired before it could be renewed");
                    let lock = self
                        .locks
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    let holder = format!("no other run (it expired unrenewed: {error})");
                    return self.lose(lock, holder);
                }
                Err(error) => {
                    let error = exdep_core::error_chain(&error);
                    warn!(%error, "renewing the lease failed; trying again");
                    wait = (self.length / 16).max(Duration::from_millis(100));
                }
            }
        }
    }

    fn lose(&self, lock: String, holder: String) {
        *self.lost_because.lock().expect("not poisoned") = Some((lock, holder));
        self.lost.cancel();
    }

    /// Whether the lease as last stored expires within `margin`: past that a renewal that
    /// keeps failing gives the lease up before another run can take it over.
    fn expires_within(&self, margin: Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        let holder = self.holder.lock().expect("not poisoned");
        Utc::now()
            .checked_add_signed(margin)
            .is_none_or(|soon| holder.has_expired(soon))
    }

    fn ours(&self) -> Expect {
        Expect::RunOf(self.holder.lock().expect("not poisoned").run_id.clone())
    }

    /// Stores the lease with a new expiry in every lock; the new expiry counts once every
    /// lock holds it.
    async fn renew(&self, ctx: &SessionContext) -> Result<()> {
        let _io = self.io.lock().await;
        let mut renewed = self.holder.lock().expect("not poisoned").clone();
        renewed.expires = Some(expiry(self.length));
        renewed.renewals += 1;
        let bytes = renewed.bytes();
        for location in &self.locks {
            let replaced = replace_if_unchanged(
                ctx,
                location,
                &self.ours(),
                bytes.clone(),
                self.plain_writes,
            )
            .await?;
            if !replaced {
                let current = location.read_all(ctx).await.ok();
                return Err(lost_error(location, current.as_deref()));
            }
        }
        *self.holder.lock().expect("not poisoned") = renewed;
        debug!("lease renewed");
        Ok(())
    }

    /// Removes every lease that is still this run's.
    async fn release_all(&self, ctx: &SessionContext) -> Result<()> {
        let _io = self.io.lock().await;
        for location in &self.locks {
            delete_if_unchanged(ctx, location, &self.ours()).await?;
        }
        Ok(())
    }
}

/// What a lease object must hold for a conditional replace or delete to go ahead.
#[derive(Debug, Clone)]
enum Expect {
    /// Exactly these bytes: the expired or abandoned lease a run takes over.
    Bytes(Vec<u8>),
    /// A lease of this run, whatever its renewal: a renewal or release whose write
    /// landed without its answer (a stop mid-request, a timeout) still finds it its own.
    RunOf(String),
}

impl Expect {
    fn matches(&self, found: &[u8]) -> bool {
        match self {
            Self::Bytes(bytes) => found == bytes.as_slice(),
            Self::RunOf(run_id) => serde_json::from_slice::<LockHolder>(found)
                .is_ok_and(|holder| &holder.run_id == run_id),
        }
    }
}

/// When a lease of `length` taken now expires.
fn expiry(length: Duration) -> String {
    chrono::Duration::from_std(length)
        .ok()
        .and_then(|length| Utc::now().checked_add_signed(length))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn lost_error(location: &Location, current: Option<&[u8]>) -> Error {
    let holder = current
        .and_then(|bytes| serde_json::from_slice::<LockHolder>(bytes).ok())
        .map_or_else(|| "no run".to_string(), |h| h.to_string());
    Error::LeaseLost {
        lock: location.to_string(),
        holder,
    }
}

/// Replaces the object at `location` with `new` if it still holds `expected`; returns
/// whether it did. Exactly one of several runs replacing the same content wins, but on a
/// store without conditional replaces where `plain_writes` allows a plain write.
async fn replace_if_unchanged(
    ctx: &SessionContext,
    location: &Location,
    expected: &Expect,
    new: Vec<u8>,
    plain_writes: bool,
) -> Result<bool> {
    let store = location.store(ctx)?;
    let path = location.path()?;
    let found = match store.get(&path).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => return Ok(false),
        Err(error) => return Err(error.into()),
    };
    let version = UpdateVersion {
        e_tag: found.meta.e_tag.clone(),
        version: found.meta.version.clone(),
    };
    if !expected.matches(&found.bytes().await?) {
        return Ok(false);
    }
    let options = PutOptions::from(PutMode::Update(version));
    match store
        .put_opts(&path, PutPayload::from(new.clone()), options)
        .await
    {
        Ok(_) => Ok(true),
        // A request retried after it had succeeded is refused by its own write.
        Err(object_store::Error::Precondition { .. }) => Ok(location.read_all(ctx).await? == new),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(object_store::Error::NotImplemented { .. }) => match local_file(location) {
            Some(file) => {
                let expected = expected.clone();
                tokio::task::spawn_blocking(move || {
                    local::replace_if_unchanged(&file, &expected, Some(&new))
                })
                .await
                .expect("the blocking task does not panic")
                .map_err(|source| lease_file_error(location, source))
            }
            None if plain_writes => {
                store.put(&path, PutPayload::from(new)).await?;
                Ok(true)
            }
            None => Err(Error::NoConditionalUpdate {
                lock: location.to_string(),
            }),
        },
        Err(error) => Err(error.into()),
    }
}

/// Deletes the object at `location` if what it holds is `expected`.
async fn delete_if_unchanged(
    ctx: &SessionContext,
    location: &Location,
    expected: &Expect,
) -> Result<()> {
    if let Some(file) = local_file(location) {
        let expected = expected.clone();
        tokio::task::spawn_blocking(move || local::replace_if_unchanged(&file, &expected, None))
            .await
            .expect("the blocking task does not panic")
            .map_err(|source| lease_file_error(location, source))?;
        return Ok(());
    }
    let ours = match location.read_all(ctx).await {
        Ok(bytes) => expected.matches(&bytes),
        Err(error) if error.is_not_found() => false,
        Err(error) => return Err(error),
    };
    if ours {
        location.delete_if_exists(ctx).await?;
    }
    Ok(())
}

fn lease_file_error(location: &Location, source: std::io::Error) -> Error {
    Error::LeaseFile {
        lock: location.to_string(),
        source,
    }
}

/// The local file behind a `file://` location.
fn local_file(location: &Location) -> Option<std::path::PathBuf> {
    (location.url().scheme() == "file")
        .then(|| location.url().to_file_path().ok())
        .flatten()
}

/// Compare-and-replace of a local file, under an exclusive `flock` that every exdep process
/// takes for it.
mod local {
    use std::fs::{File, OpenOptions};
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    /// Replaces the file's content with `new`, or deletes it when `new` is `None`, if it
    /// holds `expected`; returns whether it did.
    pub(super) fn replace_if_unchanged(
        path: &Path,
        expected: &super::Expect,
        new: Option<&[u8]>,
    ) -> std::io::Result<bool> {
        // Opened for writing too: on NFS an exclusive `flock` is a write lock.
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        };
        file.lock()?;
        // Another run may have removed the file and created a new one at the path while
        // this one waited for the lock.
        if !same_file(path, &file)? {
            return Ok(false);
        }
        let mut found = Vec::new();
        file.read_to_end(&mut found)?;
        if !expected.matches(&found) {
            return Ok(false);
        }
        match new {
            // A new file renamed over the old one: a reader sees the old content or the
            // new, never a part, and a kill halfway leaves the old lease whole.
            Some(new) => {
                let mut name = path.file_name().unwrap_or_default().to_os_string();
                name.push(format!(".{}.new", std::process::id()));
                let replacement = path.with_file_name(name);
                let mut written = File::create(&replacement)?;
                written.write_all(new)?;
                written.sync_all()?;
                std::fs::rename(&replacement, path)?;
            }
            None => std::fs::remove_file(path)?,
        }
        Ok(true)
    }

    fn same_file(path: &Path, file: &File) -> std::io::Result<bool> {
        match std::fs::metadata(path) {
            Ok(at_path) => {
                let open = file.metadata()?;
                Ok(at_path.ino() == open.ino() && at_path.dev() == open.dev())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}
