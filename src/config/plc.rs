//! `[plc]`, checked: the OPC UA server's address, its users and their
//! password hashes, its certificate, and that `port = "plc"` stations and
//! the gateway come together.
//!
//! Owns: the PLC gateway's config rules and their errors. Must not: open
//! the server's port or its certificate store.

use std::net::SocketAddr;

use super::locate::Seg;
use super::raw::{RawOpcUa, RawPlc};
use super::validate::Validator;
use super::{ConfigError, OpcUa, OpcUaUser, Plc, Station, StationPort};

impl Validator<'_> {
    /// `[plc]` against the stations it serves.
    pub(super) fn plc(&self, raw: &RawPlc, stations: &[Station]) -> Result<Plc, ConfigError> {
        use Seg::{Index as I, Key as K};
        let opcua = raw.opcua.as_ref().map(|o| self.opcua(o)).transpose()?;
        let plc_station = stations.iter().position(|s| s.port == StationPort::Plc);
        match (plc_station, &opcua) {
            (Some(i), None) => Err(self.err(
                &[K("station"), I(i), K("port")],
                format!(
                    "station {:?} has port = \"plc\" but there is no [plc.opcua] section: add one so PLCs can reach it",
                    stations[i].name
                ),
            )),
            (None, Some(_)) => Err(self.err(
                &[K("plc"), K("opcua")],
                "no [[station]] has port = \"plc\": every method call would be refused; add a station with port = \"plc\" and the verbs the PLC uses in allow",
            )),
            _ => Ok(Plc { opcua }),
        }
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
