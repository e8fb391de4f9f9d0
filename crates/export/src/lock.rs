//! One run at a time per output and warehouse: a lock object created with a conditional
//! put (`PutMode::Create`, which local disks, S3 and the other stores make atomic), holding
//! who took it, and removed when the run ends.
//!
//! A lock outlives a run that was killed. It is stale, and taken over with a warning, when
//! its holder ran on this host and that process is gone; anywhere else only the operator can
//! tell, so `--break-lock` removes it.

use exdep_core::Location;
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::object_store::{self, ObjectStoreExt, PutMode, PutPayload};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::error::{Error, Result};

/// The lock's object name under the output root and under the warehouse; `_` keeps lake
/// readers away from it.
pub const LOCK_NAME: &str = "_exdep.lock";

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The host the run started on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started: String,
    /// The run's id, which tells this run's lock from one another run took after breaking it.
    pub run_id: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the run on host {} (pid {}) started at {}",
            self.host, self.pid, self.started
        )
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
        }
    }

    /// Whether the holder is known to be gone: it ran on this host and its process no
    /// longer exists (checked where `/proc` tells, that is on Linux).
    fn is_gone(&self) -> bool {
        let proc = std::path::Path::new("/proc");
        self.host == host_name() && proc.is_dir() && !proc.join(self.pid.to_string()).exists()
    }
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

/// The locks a run holds, one per root; [`RunLock::release`] removes them.
#[derive(Debug)]
pub struct RunLock {
    locks: Vec<Location>,
    holder: LockHolder,
}

impl RunLock {
    /// Takes the lock of every root in `roots` (the warehouse and the output), in order. A
    /// root locked by a live run fails at once, naming the holder, after releasing the locks
    /// already taken; `break_lock` removes existing locks first.
    pub async fn acquire(
        ctx: &SessionContext,
        roots: &[&Location],
        holder: LockHolder,
        break_lock: bool,
    ) -> Result<Self> {
        let mut lock = RunLock {
            locks: Vec::new(),
            holder,
        };
        for root in roots {
            let location = root.join(LOCK_NAME);
            if let Err(error) = lock.take(ctx, &location, break_lock).await {
                lock.release(ctx).await?;
                return Err(error);
            }
            lock.locks.push(location);
        }
        Ok(lock)
    }

    async fn take(
        &self,
        ctx: &SessionContext,
        location: &Location,
        break_lock: bool,
    ) -> Result<()> {
        let store = location.store(ctx)?;
        let path = location.path()?;
        let payload = || -> Result<PutPayload> {
            Ok(PutPayload::from(serde_json::to_vec_pretty(&self.holder)?))
        };
        // Two tries: the second after removing a broken or stale lock.
        for _ in 0..2 {
            match store
                .put_opts(&path, payload()?, PutMode::Create.into())
                .await
            {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            let holder = match location.read_all(ctx).await {
                Ok(bytes) => serde_json::from_slice::<LockHolder>(&bytes).ok(),
                // Released in between: try again.
                Err(exdep_core::Error::ObjectStore(object_store::Error::NotFound { .. })) => {
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let stale = holder.as_ref().is_some_and(LockHolder::is_gone);
            if !(break_lock || stale) {
                return Err(Error::Locked {
                    lock: location.to_string(),
                    holder: holder.map_or_else(
                        || "a run whose lock cannot be read".to_string(),
                        |h| h.to_string(),
                    ),
                });
            }
            if let Some(holder) = &holder {
                let why = if break_lock {
                    "--break-lock"
                } else {
                    "its process is gone"
                };
                warn!(lock = %location, %holder, "removing the lock ({why})");
            }
            location.delete_if_exists(ctx).await?;
        }
        Err(Error::Locked {
            lock: location.to_string(),
            holder: "another run that took it at the same moment".to_string(),
        })
    }

    /// Removes the locks this run holds (a lock another run took after breaking ours stays).
    pub async fn release(self, ctx: &SessionContext) -> Result<()> {
        for location in &self.locks {
            let ours = match location.read_all(ctx).await {
                Ok(bytes) => serde_json::from_slice::<LockHolder>(&bytes)
                    .is_ok_and(|holder| holder == self.holder),
                Err(exdep_core::Error::ObjectStore(object_store::Error::NotFound { .. })) => false,
                Err(error) => return Err(error.into()),
            };
            if ours {
                location.store(ctx)?.delete(&location.path()?).await?;
            }
        }
        Ok(())
    }
}
