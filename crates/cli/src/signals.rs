//! The signals that stop a run: SIGTERM (Kubernetes stopping a pod at its deadline or on
//! eviction) and SIGINT (Ctrl-C).

use tokio::signal::unix::{SignalKind, signal};

/// A run stopped by a signal; the process exits with 128 + the signal's number, as a shell
/// reports it.
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped by {}: the run released its lease and left what it had not published to the \
     next run",
    .0.name()
)]
pub struct Stopped(pub Termination);

/// A signal that ends the process.
#[derive(Debug, Clone, Copy)]
pub enum Termination {
    /// SIGTERM.
    Terminate,
    /// SIGINT.
    Interrupt,
}

impl Termination {
    fn name(self) -> &'static str {
        match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT",
        }
    }

    /// The process's exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Terminate => 128 + 15,
            Self::Interrupt => 128 + 2,
        }
    }
}

/// Waits for SIGTERM or SIGINT. Where a handler cannot be installed it never returns, and
/// the signal keeps its default action.
pub async fn termination() -> Termination {
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => Termination::Terminate,
        _ = interrupt.recv() => Termination::Interrupt,
    }
}
