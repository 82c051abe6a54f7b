//! The PLC gateway (SPEC section 12): PLCs drive `port = "plc"` stations
//! through the same typed verbs, rules, events, idempotency and answers as
//! the station protocol.
//!
//! `call` reads a method call into a protocol request (pure), `mailbox`
//! the Modbus register map and handshake (pure), `gateway` runs a request
//! through the line and keeps what the PLC variables show, `opcua` and
//! `modbus` are the servers.
//! Must not: decide anything about a verb (that is `line::verb`), or
//! touch the journal except through `line::Line`.

pub mod call;
pub mod gateway;
pub mod mailbox;
pub mod modbus;
pub mod opcua;
