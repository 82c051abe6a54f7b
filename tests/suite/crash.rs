//! Crash safety: a child allocates and commits in a loop, printing each ID
//! only after its commit, and is killed with SIGKILL at random moments.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::helper::{Allocator, Line, Rng};
use linemark::config::Config;
use linemark::ids::{IdCodec, NamespaceKey};
use linemark::journal::{self, AllocRequest, Journal, JournalOptions};

/// Entry point of the child process; does nothing in a normal test run.
#[test]
#[ignore = "child process of the crash tests"]
fn allocating_child() {
    let Ok(config) = std::env::var("LINEMARK_CRASH_CHILD") else {
        return;
    };
    let cfg = Config::load(std::path::Path::new(&config)).expect("config");
    let j = Journal::open(JournalOptions::from_config(&cfg)).expect("journal");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let j = j.clone();
            std::thread::spawn(move || loop {
                let r = j.write_blocking(move |tx| {
                    tx.allocate(&AllocRequest {
                        product: "PACK-48V",
                        gtin: "09506000134352",
                        level: "item",
                        lot: None,
                        station: Some("provision-1"),
                        actor: if t % 2 == 0 { "station:a" } else { "station:b" },
                    })
                });
                match r {
                    Ok(a) => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "ID {}", a.unit);
                        let _ = out.flush();
                    }
                    Err(_) => return,
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn codec() -> IdCodec {
    IdCodec::new(&NamespaceKey::from_hex(crate::helper::NAMESPACE_KEY_HEX).unwrap())
}

#[test]
fn sigkill_at_random_moments_never_loses_a_printed_id_or_issues_one_twice() {
    let line = Line::new();
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 10_000_000);
    }
    let mut rng = Rng::seeded();
    let mut printed_total: HashSet<String> = HashSet::new();
    let mut kills_with_output = 0;
    for round in 0..24 {
        let a = Allocator::spawn(&line);
        // Some kills land during start-up and recovery, most during allocation.
        let wait = Duration::from_millis(20 + rng.below(400));
        let until = Instant::now() + wait;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let ids = a.kill();
        if !ids.is_empty() {
            kills_with_output += 1;
        }
        for id in &ids {
            assert!(
                printed_total.insert(id.clone()),
                "round {round}: {id} printed twice across runs"
            );
        }
        // Restart: every printed ID is there, the chain verifies, no ID twice.
        let j = line.open();
        let units: HashSet<String> = crate::helper::units_in(&line.db_path())
            .into_iter()
            .collect();
        for id in &printed_total {
            assert!(
                units.contains(id),
                "round {round}: {id} was printed (committed) but is not in the journal"
            );
        }
        let conn = j.reader().unwrap();
        let report = journal::verify::verify(&conn, &codec(), |_, _| {})
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(report.units as usize, units.len());
        drop(conn);
        drop(j);
    }
    assert!(
        kills_with_output >= 10,
        "only {kills_with_output} kills happened mid-allocation"
    );
}
