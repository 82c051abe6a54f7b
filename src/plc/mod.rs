//! The PLC gateway (SPEC section 12): PLCs drive `port = "plc"` stations
//! through the same typed verbs, rules, events, idempotency and answers as
//! the station protocol.
//!
//! `call` reads a method call into a protocol request (pure), `gateway`
//! runs it through the line and keeps what the PLC variables show,
//! `opcua` is the OPC UA server.
//! Must not: decide anything about a verb (that is `line::verb`), or
//! touch the journal except through `line::Line`.

pub mod call;
pub mod gateway;
pub mod opcua;
