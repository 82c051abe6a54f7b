//! A Modbus TCP client for the tests (tokio-modbus's own), used as a PLC
//! uses a mailbox: write the verb and fields, write the sequence number
//! last, poll `B+200`, read the answer.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_modbus::client::{tcp, Context, Reader, Writer};
use tokio_modbus::ExceptionCode;

/// A connection to one slot's mailbox.
pub struct Mailbox {
    pub ctx: Context,
    pub base: u16,
    pub seq: u16,
    /// Pause between two polls of `B+200` (a PLC's cycle; zero: poll
    /// again at once).
    pub poll: Duration,
}

/// What the line answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub result: u16,
    pub text: String,
}

impl Answer {
    pub fn field(&self, key: &str) -> Option<String> {
        self.text
            .split(' ')
            .find_map(|f| f.strip_prefix(&format!("{key}=")).map(str::to_string))
    }
}

/// ASCII into registers, two characters each, first in the high byte.
pub fn pack(text: &str, regs: usize) -> Vec<u16> {
    let b = text.as_bytes();
    (0..regs)
        .map(|i| {
            u16::from_be_bytes([
                b.get(2 * i).copied().unwrap_or(0),
                b.get(2 * i + 1).copied().unwrap_or(0),
            ])
        })
        .collect()
}

pub fn unpack(regs: &[u16]) -> String {
    let bytes: Vec<u8> = regs
        .iter()
        .flat_map(|r| r.to_be_bytes())
        .take_while(|b| *b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Mailbox {
    pub async fn connect(addr: SocketAddr, slot: u16) -> Mailbox {
        Mailbox {
            ctx: tcp::connect(addr).await.expect("Modbus connect"),
            base: 1000 * slot,
            seq: 0,
            poll: Duration::from_millis(1),
        }
    }

    pub async fn write(&mut self, offset: u16, values: &[u16]) -> Result<(), ExceptionCode> {
        self.ctx
            .write_multiple_registers(self.base + offset, values)
            .await
            .expect("the write is answered")
    }

    pub async fn read(&mut self, offset: u16, n: u16) -> Result<Vec<u16>, ExceptionCode> {
        self.ctx
            .read_holding_registers(self.base + offset, n)
            .await
            .expect("the read is answered")
    }

    /// Writes verb code and fields (two writes: at most 123 registers
    /// each), then `seq`.
    pub async fn send(&mut self, verb: u16, fields: &str, seq: u16) {
        let regs = pack(fields, 128);
        let mut first = vec![verb];
        first.extend_from_slice(&regs[..100]);
        self.write(1, &first).await.expect("verb and fields");
        self.write(102, &regs[100..]).await.expect("fields");
        self.write(0, &[seq]).await.expect("sequence number");
    }

    /// Polls `B+200` until it is `seq`, then reads `B+201 ..`.
    pub async fn wait_answer(&mut self, seq: u16) -> Answer {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.read(200, 1).await.expect("B+200");
            if r[0] == seq {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer to sequence {seq}"
            );
            if self.poll.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(self.poll).await;
            }
        }
        let mut regs = self.read(201, 100).await.expect("answer");
        regs.extend(self.read(301, 29).await.expect("answer"));
        Answer {
            result: regs[0],
            text: unpack(&regs[1..]),
        }
    }

    /// One request with the next sequence number.
    pub async fn request(&mut self, verb: u16, fields: &str) -> Answer {
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        self.send(verb, fields, seq).await;
        self.wait_answer(seq).await
    }

    pub async fn ok(&mut self, verb: u16, fields: &str) -> Answer {
        let a = self.request(verb, fields).await;
        assert_eq!(a.result, 0, "{verb} {fields}: {a:?}");
        a
    }
}
