//! `[plc]`, checked: the OPC UA server's address, its users and their
//! password hashes, its certificate, the Modbus server and the stations'
//! mailbox slots, and that `port = "plc"` stations and a gateway come
//! together.
//!
//! Owns: the PLC gateway's config rules and their errors. Must not: open
//! the server's port or its certificate store.

use std::net::SocketAddr;

use super::locate::Seg;
use super::raw::{RawModbus, RawOpcUa, RawPlc};
use super::validate::Validator;
use super::{ConfigError, Modbus, OpcUa, OpcUaUser, Plc, Station, StationPort};

/// The highest slot: its mailbox ends at register 1000 * 65 + 329.
pub const MAX_MODBUS_SLOT: u16 = 65;

impl Validator<'_> {
    /// `[plc]` against the stations it serves.
    pub(super) fn plc(&self, raw: &RawPlc, stations: &[Station]) -> Result<Plc, ConfigError> {
        use Seg::{Index as I, Key as K};
        let opcua = raw.opcua.as_ref().map(|o| self.opcua(o)).transpose()?;
        let modbus = raw.modbus.as_ref().map(|m| self.modbus(m)).transpose()?;
        let plc_station = stations.iter().position(|s| s.port == StationPort::Plc);
        if let Some(i) = plc_station {
            let reached = opcua.is_some()
                || stations
                    .iter()
                    .all(|s| s.port != StationPort::Plc || s.modbus_slot.is_some());
            if !reached {
                let i = stations
                    .iter()
                    .position(|s| s.port == StationPort::Plc && s.modbus_slot.is_none())
                    .unwrap_or(i);
                return Err(self.err(
                    &[K("station"), I(i), K("port")],
                    format!(
                        "station {:?} has port = \"plc\" but nothing reaches it: add a [plc.opcua] section, or give it a modbus_slot and add [plc.modbus]",
                        stations[i].name
                    ),
                ));
            }
        } else if opcua.is_some() {
            return Err(self.err(
                &[K("plc"), K("opcua")],
                "no [[station]] has port = \"plc\": every method call would be refused; add a station with port = \"plc\" and the verbs the PLC uses in allow",
            ));
        }
        self.slots(stations, modbus.is_some())?;
        Ok(Plc { opcua, modbus })
    }

    /// Each `modbus_slot`: on a PLC station, in range, used once, and
    /// served by `[plc.modbus]`, which needs at least one.
    fn slots(&self, stations: &[Station], modbus: bool) -> Result<(), ConfigError> {
        use Seg::{Index as I, Key as K};
        let mut any = false;
        for (i, s) in stations.iter().enumerate() {
            let Some(slot) = s.modbus_slot else { continue };
            any = true;
            let at = [K("station"), I(i), K("modbus_slot")];
            if s.port != StationPort::Plc {
                return Err(self.err(
                    &at,
                    "only a station with port = \"plc\" has a Modbus mailbox",
                ));
            }
            if slot > MAX_MODBUS_SLOT {
                return Err(self.err(
                    &at,
                    format!("{slot} is not a slot (0 to {MAX_MODBUS_SLOT}: the mailbox starts at register 1000 * slot)"),
                ));
            }
            if let Some(other) = stations[..i].iter().find(|q| q.modbus_slot == Some(slot)) {
                return Err(self.err(
                    &at,
                    format!(
                        "slot {slot} is already the mailbox of station {:?}",
                        other.name
                    ),
                ));
            }
            if !modbus {
                return Err(self.err(
                    &at,
                    "needs a [plc.modbus] section (the Modbus server that serves the mailbox)",
                ));
            }
        }
        if modbus && !any {
            return Err(self.err(
                &[K("plc"), K("modbus")],
                "no PLC station has a modbus_slot: give each station a PLC drives over Modbus its own slot",
            ));
        }
        Ok(())
    }

    fn modbus(&self, m: &RawModbus) -> Result<Modbus, ConfigError> {
        use Seg::Key as K;
        let listen: SocketAddr = m.listen.parse().map_err(|_| {
            self.err(
                &[K("plc"), K("modbus"), K("listen")],
                format!("{:?} must be ADDRESS:PORT, e.g. 0.0.0.0:502", m.listen),
            )
        })?;
        Ok(Modbus { listen })
    }

    fn opcua(&self, o: &RawOpcUa) -> Result<OpcUa, ConfigError> {
        use Seg::{Index as I, Key as K};
        let at = |k| [K("plc"), K("opcua"), K(k)];
        let listen: SocketAddr = o.listen.parse().map_err(|_| {
            self.err(
                &at("listen"),
                format!("{:?} must be ADDRESS:PORT, e.g. 127.0.0.1:4840", o.listen),
            )
        })?;
        let mut users: Vec<OpcUaUser> = Vec::new();
        for (i, u) in o.users.iter().enumerate() {
            let at = |k| [K("plc"), K("opcua"), K("user"), I(i), K(k)];
            self.name(&at("name"), &u.name)?;
            if users.iter().any(|q| q.name == u.name) {
                return Err(self.err(&at("name"), format!("user {:?} is defined twice", u.name)));
            }
            let hash = u.password_hash.trim();
            let ok =
                argon2::PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str() == "argon2id");
            if !ok {
                return Err(self.err(
                    &at("password_hash"),
                    "must be an argon2id PHC string ($argon2id$v=19$m=...); `linemark plc passwd` prints one",
                ));
            }
            users.push(OpcUaUser {
                name: u.name.clone(),
                password_hash: hash.to_string(),
            });
        }
        if users.is_empty() && !o.allow_anonymous {
            return Err(self.err(
                &[K("plc"), K("opcua")],
                "has no [[plc.opcua.user]] and allow_anonymous is false, so no PLC could connect: add a user (`linemark plc passwd` prints its password_hash), or set allow_anonymous = true on an isolated cell network",
            ));
        }
        let certificate = match (&o.certificate, &o.private_key) {
            (Some(c), Some(k)) => Some((self.path(c), self.path(k))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.err(
                    &at("certificate"),
                    "needs private_key too (the PEM key of this certificate)",
                ))
            }
            (None, Some(_)) => {
                return Err(self.err(
                    &at("private_key"),
                    "needs certificate too (the DER certificate of this key)",
                ))
            }
        };
        Ok(OpcUa {
            listen,
            allow_anonymous: o.allow_anonymous,
            certificate,
            users,
        })
    }
}
