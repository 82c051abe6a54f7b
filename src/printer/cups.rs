//! The `cups://QUEUE` driver: labels as PDF through the local CUPS with
//! its command-line tools (`lp`, `lpstat`, from Debian's `cups-client`).
//!
//! Owns: refusing to submit to a queue that is stopped or not accepting
//! jobs (a printer fault: the label stays queued in the journal), submitting,
//! and waiting until CUPS lists the job as completed; only then is the label
//! printed. A job submitted while the queue later stops is waited for, not
//! submitted again. Must not: render, or decide when a label may print.
//!
//! `lpstat` lists a job cancelled in CUPS among the completed ones; such a
//! label counts as printed (reprint it with `REPRINT`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{Fault, State};
use crate::journal::labels::LabelJob;

/// How long one attempt waits for CUPS to complete a job before the label
/// counts as a fault (and the next attempt waits on, for the same job).
const COMPLETION_WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(200);

/// A CUPS queue and the CUPS jobs submitted for labels not yet printed.
#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    /// Label job -> CUPS request id (e.g. `Zebra-12`).
    submitted: Arc<Mutex<BTreeMap<i64, String>>>,
}

impl PartialEq for Queue {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Queue {}

impl Queue {
    pub fn new(name: &str) -> Queue {
        Queue {
            name: name.to_string(),
            submitted: Arc::default(),
        }
    }

    fn request_of(&self, job: i64) -> Option<String> {
        self.submitted.lock().ok()?.get(&job).cloned()
    }

    fn remember(&self, job: i64, id: Option<String>) {
        if let Ok(mut m) = self.submitted.lock() {
            match id {
                Some(id) => m.insert(job, id),
                None => m.remove(&job),
            };
        }
    }

    /// Prints one label: submit (once), then wait for completion.
    pub async fn print(&self, job: &LabelJob, pdf: &[u8]) -> Result<(), Fault> {
        let id = match self.request_of(job.job) {
            Some(id) => id,
            None => {
                self.check_ready().await?;
                let id = self.submit(job, pdf).await?;
                self.remember(job.job, Some(id.clone()));
                id
            }
        };
        let started = Instant::now();
        loop {
            let pending = lpstat(&["-o", &self.name]).await?;
            if !job_listed(&pending, &id) {
                let done = lpstat(&["-W", "completed", "-o", &self.name]).await?;
                self.remember(job.job, None);
                if job_listed(&done, &id) {
                    return Ok(());
                }
                return Err(Fault::new(
                    State::Error,
                    format!(
                        "CUPS job {id} disappeared without completing; the label is sent again"
                    ),
                ));
            }
            // Still pending: a stopped queue is a fault worth showing now.
            self.check_ready().await.map_err(|f| {
                Fault::new(f.state, format!("{} (CUPS job {id} waits in it)", f.reason))
            })?;
            if started.elapsed() > COMPLETION_WAIT {
                return Err(Fault::new(
                    State::Error,
                    format!(
                        "CUPS job {id} on queue {} not completed after {COMPLETION_WAIT:?}",
                        self.name
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A stopped queue or one refusing jobs is a fault, not a place to send labels.
    async fn check_ready(&self) -> Result<(), Fault> {
        let printer = lpstat(&["-p", &self.name]).await?;
        let accepting = lpstat(&["-a", &self.name]).await?;
        match queue_hold(&self.name, &printer, &accepting) {
            Some(why) => Err(Fault::new(State::Paused, why)),
            None => Ok(()),
        }
    }

    async fn submit(&self, job: &LabelJob, pdf: &[u8]) -> Result<String, Fault> {
        let mut child = tokio::process::Command::new("lp")
            .args([
                "-d",
                &self.name,
                "-t",
                &format!("linemark-{}-{}", job.unit, job.job),
                "-",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                Fault::new(
                    State::Offline,
                    format!("cannot run lp (install cups-client): {e}"),
                )
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(pdf)
                .await
                .map_err(|e| Fault::new(State::Error, format!("lp did not take the PDF: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Fault::new(State::Error, format!("lp failed: {e}")))?;
        if !out.status.success() {
            return Err(Fault::new(
                State::Error,
                format!(
                    "lp -d {}: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        parse_request_id(&text).ok_or_else(|| {
            Fault::new(
                State::Error,
                format!("lp did not say which job it made: {:?}", text.trim()),
            )
        })
    }
}

async fn lpstat(args: &[&str]) -> Result<String, Fault> {
    let out = tokio::process::Command::new("lpstat")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            Fault::new(
                State::Offline,
                format!("cannot run lpstat (install cups-client): {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(Fault::new(
            State::Offline,
            format!(
                "lpstat {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The request id in `lp`'s answer: `request id is Zebra-12 (1 file(s))`.
pub fn parse_request_id(lp_stdout: &str) -> Option<String> {
    let rest = lp_stdout.trim().strip_prefix("request id is ")?;
    let id = rest.split_whitespace().next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// Why a queue must not take labels now, from `lpstat -p Q` and `lpstat -a Q`
/// (the reason CUPS keeps is the indented line after the state).
pub fn queue_hold(queue: &str, printer: &str, accepting: &str) -> Option<String> {
    let reason = |text: &str| {
        text.lines()
            .skip(1)
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    };
    if printer
        .lines()
        .next()
        .is_some_and(|l| l.contains(" disabled since "))
    {
        return Some(format!("CUPS queue {queue} is stopped{}", reason(printer)));
    }
    if accepting
        .lines()
        .next()
        .is_some_and(|l| l.contains(" not accepting requests"))
    {
        return Some(format!(
            "CUPS queue {queue} is not accepting jobs{}",
            reason(accepting)
        ));
    }
    None
}

/// Whether `lpstat -o` output lists the job `id` (first column).
pub fn job_listed(listing: &str, id: &str) -> bool {
    listing
        .lines()
        .any(|l| l.split_whitespace().next() == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lp_answers_name_the_request() {
        assert_eq!(
            parse_request_id("request id is Zebra_ZT410-12 (1 file(s))\n").as_deref(),
            Some("Zebra_ZT410-12")
        );
        assert_eq!(parse_request_id("lp: Error - no default destination"), None);
        assert_eq!(parse_request_id(""), None);
    }

    #[test]
    fn a_stopped_or_rejecting_queue_holds_labels_with_its_reason() {
        let idle = "printer Q1 is idle.  enabled since Thu Dec  3 19:05:41 2026\n";
        let accepting = "Q1 accepting requests since Thu Dec  3 19:05:41 2026\n";
        assert_eq!(queue_hold("Q1", idle, accepting), None);
        let printing = "printer Q1 now printing Q1-3.  enabled since Thu Dec  3 19:05:41 2026\n";
        assert_eq!(queue_hold("Q1", printing, accepting), None);
        let stopped = "printer Q1 disabled since Thu Dec  3 19:05:49 2026 -\n\tpaper out\n";
        assert_eq!(
            queue_hold("Q1", stopped, accepting).as_deref(),
            Some("CUPS queue Q1 is stopped: paper out")
        );
        let rejecting =
            "Q1 not accepting requests since Thu Dec  3 19:05:49 2026 -\n\tRejecting Jobs\n";
        assert_eq!(
            queue_hold("Q1", idle, rejecting).as_deref(),
            Some("CUPS queue Q1 is not accepting jobs: Rejecting Jobs")
        );
        let bare = "printer Q1 disabled since Thu Dec  3 19:05:49 2026 -\n";
        assert_eq!(
            queue_hold("Q1", bare, accepting).as_deref(),
            Some("CUPS queue Q1 is stopped")
        );
    }

    #[test]
    fn jobs_are_found_by_their_exact_id() {
        let listing = "Q1-12                   root              1024   Thu Dec  3 19:05:41 2026\n\tAlerts: none\n";
        assert!(job_listed(listing, "Q1-12"));
        assert!(!job_listed(listing, "Q1-1"));
        assert!(!job_listed("", "Q1-12"));
    }
}
