//! A station client: speaks the frame protocol over any byte stream (a
//! serial port, a pseudo-terminal, a TCP socket). Used by the tests, the
//! demo's simulated stations and anyone scripting a station.
//!
//! Owns: building checksummed frames, `req` tokens for mutating verbs,
//! reading answers, and re-sending the same frame (same `req`) when an
//! answer does not come in time. Must not: know line rules.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::{self, Decoded, FrameDecoder, Response, Verb};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no answer after {tries} tries of {timeout:?}")]
    Timeout { tries: u32, timeout: Duration },
    #[error("the port closed")]
    Closed,
    #[error("port error: {0}")]
    Io(#[from] std::io::Error),
    #[error("unreadable answer: {0}")]
    BadAnswer(String),
}

/// A station speaking to linemark.
pub struct StationClient<S> {
    stream: S,
    dec: FrameDecoder,
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// How many times a request is sent in all.
    pub tries: u32,
    prefix: String,
    counter: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> StationClient<S> {
    /// `prefix` makes this client's `req` tokens unique (e.g. the station
    /// name and a boot counter).
    pub fn new(stream: S, prefix: &str) -> Self {
        Self {
            stream,
            dec: FrameDecoder::new(),
            timeout: Duration::from_secs(5),
            tries: 3,
            prefix: prefix.to_string(),
            counter: 0,
        }
    }

    /// The next `req` token.
    pub fn next_req(&mut self) -> String {
        self.counter += 1;
        format!("{}-{}", self.prefix, self.counter)
    }

    /// Sends a request and waits for its answer. Mutating verbs get a fresh
    /// `req` unless `fields` has one; a time-out re-sends the same frame.
    pub async fn request(
        &mut self,
        verb: &str,
        fields: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let mut owned: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mutating = Verb::parse(verb).is_some_and(Verb::is_mutating);
        if mutating && !owned.iter().any(|(k, _)| k == "req") {
            let r = self.next_req();
            owned.push(("req".into(), r));
        }
        let refs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send_frame(&protocol::encode_request(verb, &refs))
            .await
    }

    /// Sends raw bytes as one request (tests use this for malformed input)
    /// and waits for an answer, re-sending on time-out.
    pub async fn send_frame(&mut self, frame: &[u8]) -> Result<Response, ClientError> {
        // Answers still buffered belong to earlier, timed-out tries.
        while self.dec.next().is_some() {}
        for _ in 0..self.tries {
            self.stream.write_all(frame).await?;
            self.stream.flush().await?;
            match tokio::time::timeout(self.timeout, self.read_answer()).await {
                Ok(r) => return r,
                Err(_) => continue,
            }
        }
        Err(ClientError::Timeout {
            tries: self.tries,
            timeout: self.timeout,
        })
    }

    /// Writes bytes without waiting for anything.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Reads the next answer frame.
    pub async fn read_answer(&mut self) -> Result<Response, ClientError> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(d) = self.dec.next() {
                match d {
                    Decoded::Frame([]) => continue,
                    Decoded::Frame(f) => {
                        return Response::parse(f)
                            .map_err(|e| ClientError::BadAnswer(e.to_string()))
                    }
                    Decoded::TooLong => {
                        return Err(ClientError::BadAnswer("answer too long".into()))
                    }
                }
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.dec.push(&buf[..n]);
        }
    }

    pub fn into_inner(self) -> S {
        self.stream
    }
}
