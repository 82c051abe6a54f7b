//! Lifecycle updates (SPEC section 11): what service, recycling and
//! manufacturer actors may record about a unit after it left the line,
//! each a new passport version with actor, role, time, type, reason,
//! evidence and delta.
//!
//! Owns: the update's body and its checks, who may record which type, and
//! the status a type leads to. Must not: do IO.

use serde::Deserialize;
use serde_json::Value;

use super::projection::Status;
use super::token::Role;

/// The update types.
pub const TYPES: [&str; 6] = [
    "serviced",
    "repaired",
    "repurposed",
    "remanufactured",
    "state_of_health",
    "recycled",
];

/// `POST /passports/{unit}/events`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    #[serde(default)]
    pub evidence: Option<String>,
    #[serde(default = "empty_object")]
    pub delta: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Why an update is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// 403.
    #[error(
        "a {role} token cannot record lifecycle updates (service, recycler or manufacturer can)"
    )]
    Role { role: &'static str },
    /// 403.
    #[error("only a recycler or the manufacturer records `recycled`")]
    NotRecycler,
    /// 400.
    #[error("{0}")]
    Bad(String),
    /// 409: nothing happens to a unit after it was recycled.
    #[error("unit {0} was recycled; its passport takes no more updates")]
    Recycled(String),
}

/// Reads and checks an update from `role` for a unit now `status`.
pub fn check(body: &[u8], role: Role, unit: &str, status: Status) -> Result<Update, UpdateError> {
    if !matches!(role, Role::Service | Role::Recycler | Role::Manufacturer) {
        return Err(UpdateError::Role {
            role: role.as_str(),
        });
    }
    let u: Update = serde_json::from_slice(body).map_err(|e| {
        UpdateError::Bad(format!(
            "the body must be {{\"type\", \"reason\", \"evidence\", \"delta\"}}: {e}"
        ))
    })?;
    if !TYPES.contains(&u.kind.as_str()) {
        return Err(UpdateError::Bad(format!(
            "type {:?} is not one of {}",
            u.kind,
            TYPES.join(", ")
        )));
    }
    if u.kind == "recycled" && role == Role::Service {
        return Err(UpdateError::NotRecycler);
    }
    if u.reason.trim().is_empty() || u.reason.len() > 1024 {
        return Err(UpdateError::Bad(
            "reason must be 1 to 1024 characters".into(),
        ));
    }
    if u.evidence.as_ref().is_some_and(|e| e.len() > 2048) {
        return Err(UpdateError::Bad(
            "evidence must be at most 2048 characters".into(),
        ));
    }
    if !u.delta.is_object() || u.delta.to_string().len() > 16 * 1024 {
        return Err(UpdateError::Bad(
            "delta must be a JSON object of at most 16 KiB".into(),
        ));
    }
    if let Some(soh) = u.delta.get("state_of_health") {
        // It becomes the passport's state of certified energy: a percentage.
        if !soh.as_f64().is_some_and(|v| (0.0..=100.0).contains(&v)) {
            return Err(UpdateError::Bad(format!(
                "delta.state_of_health must be a percentage from 0 to 100, not {soh}"
            )));
        }
    }
    if status == Status::Recycled {
        return Err(UpdateError::Recycled(unit.to_string()));
    }
    Ok(u)
}

/// The status after an update of `kind`.
pub fn status_after(kind: &str, before: Status) -> Status {
    if kind == "recycled" {
        Status::Recycled
    } else {
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, role: Role) -> Result<Update, UpdateError> {
        check(body.as_bytes(), role, "U1", Status::Shipped)
    }

    #[test]
    fn service_and_recycling_actors_record_their_types() {
        for bad in [r#""93%""#, "-1", "100.5", "null"] {
            let body = format!(
                r#"{{"type":"state_of_health","reason":"r","delta":{{"state_of_health":{bad}}}}}"#
            );
            assert!(
                matches!(run(&body, Role::Service), Err(UpdateError::Bad(m)) if m.contains("percentage")),
                "{bad}"
            );
        }
        let u = run(r#"{"type":"state_of_health","reason":"annual check","evidence":"https://x/r.pdf","delta":{"soh":0.91}}"#, Role::Service).unwrap();
        assert_eq!(u.kind, "state_of_health");
        assert!(run(
            r#"{"type":"recycled","reason":"end of life"}"#,
            Role::Recycler
        )
        .is_ok());
        assert!(run(
            r#"{"type":"recycled","reason":"end of life"}"#,
            Role::Manufacturer
        )
        .is_ok());
        assert_eq!(
            run(r#"{"type":"recycled","reason":"x"}"#, Role::Service).unwrap_err(),
            UpdateError::NotRecycler
        );
        assert!(matches!(
            run(r#"{"type":"repaired","reason":"x"}"#, Role::Authority),
            Err(UpdateError::Role { .. })
        ));
        assert_eq!(status_after("recycled", Status::Shipped), Status::Recycled);
        assert_eq!(status_after("repaired", Status::Shipped), Status::Shipped);
    }

    #[test]
    fn bad_updates_are_named_and_a_recycled_unit_takes_none() {
        for body in [
            r#"{"type":"painted","reason":"x"}"#,
            r#"{"type":"repaired","reason":" "}"#,
            r#"{"type":"repaired","reason":"x","delta":[1]}"#,
            r#"{"type":"repaired","reason":"x","colour":"red"}"#,
            "not json",
        ] {
            assert!(
                matches!(run(body, Role::Service), Err(UpdateError::Bad(_))),
                "{body}"
            );
        }
        let e = check(
            br#"{"type":"repaired","reason":"x"}"#,
            Role::Service,
            "U1",
            Status::Recycled,
        )
        .unwrap_err();
        assert_eq!(e, UpdateError::Recycled("U1".into()));
    }
}
