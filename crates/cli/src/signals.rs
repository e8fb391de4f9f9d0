//! The signals that stop a run: SIGTERM (Kubernetes stopping a pod at its deadline or on
//! eviction) and SIGINT (Ctrl-C).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

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
    /// The signal's name.
    pub fn name(self) -> &'static str {
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

/// The SIGTERM and SIGINT the process receives while a command runs, watched from its start
/// to its end: a signal must stop the run, and one that comes while the run reports its
/// start or its end to the platform must cut that report short rather than be lost (once
/// watched, a signal no longer ends the process by itself).
#[derive(Clone)]
pub struct Signals(watch::Receiver<Received>);

#[derive(Clone, Copy, Default)]
struct Received {
    count: u64,
    last: Option<Termination>,
}

impl Signals {
    /// Watches from now on. Where a handler cannot be installed no signal is ever seen, and
    /// signals keep their default action.
    pub fn watch() -> Self {
        let (sender, receiver) = watch::channel(Received::default());
        if let (Ok(mut terminate), Ok(mut interrupt)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::spawn(async move {
                loop {
                    let signal = tokio::select! {
                        Some(()) = terminate.recv() => Termination::Terminate,
                        Some(()) = interrupt.recv() => Termination::Interrupt,
                        else => return,
                    };
                    sender.send_modify(|received| {
                        received.count += 1;
                        received.last = Some(signal);
                    });
                }
            });
        }
        Self(receiver)
    }

    /// How many signals came so far: what [`Self::after`] waits past.
    pub fn seen(&self) -> u64 {
        self.0.borrow().count
    }

    /// The first signal after the `seen`-th; never, if none comes.
    pub async fn after(&self, seen: u64) -> Termination {
        let mut receiver = self.0.clone();
        match receiver.wait_for(|received| received.count > seen).await {
            Ok(received) => received.last.expect("a counted signal is kept"),
            Err(_) => std::future::pending().await,
        }
    }

    /// `work`'s output, unless a signal after the `seen`-th comes first.
    pub async fn unless_after<T>(
        &self,
        seen: u64,
        work: impl Future<Output = T>,
    ) -> Result<T, Termination> {
        tokio::select! {
            biased;
            signal = self.after(seen) => Err(signal),
            output = work => Ok(output),
        }
    }
}
