//! Station behaviour as data: every `tests/data/transcripts/*.txt` runs
//! against a fresh daemon with the station rig of `stations.rs` (three pty
//! stations and a TCP one), one driver for all. A new case is a new file.
//!
//! The format, a line each:
//! - `# ...` and blank lines: comments.
//! - `@ STATION`: the following frames go to this station (default `tcp-1`).
//! - `> FRAME`: sent with its checksum; `{name}` is replaced by a value an
//!   earlier answer captured (`{name:lower}`: in lower case).
//! - `< OK k=v ...` / `< ERR code=E_... k=v ...`: the answer to the last
//!   frame. A value `{name}` captures (or, once captured, must equal),
//!   `*` is anything, `~text` must contain `text`, anything else is exact
//!   (`%XX` escapes as in frames: `~check%20character`).
//!   Every field of the answer must be listed, except `msg`.
//! - `= EVENTS TYPE N`: the journal holds N events of that type now.
//! - `$ ARGS`: runs `linemark ARGS --config <the rig's config>` (with
//!   `{name}` substituted), which must exit 0; `| TEXT` lines after it must
//!   appear in its output, in that order.
//! - `! restart`: the daemon stops and starts again; `tcp-1` reconnects.

use std::collections::BTreeMap;
use std::path::Path;

use linemark::protocol::Response;

fn fields(r: &Response) -> (String, Vec<(String, String)>) {
    match r {
        Response::Ok(f) => ("OK".into(), f.clone()),
        Response::Err { code, extra, msg } => {
            let mut f = vec![("code".to_string(), code.as_str().to_string())];
            f.extend(extra.iter().cloned());
            f.push(("msg".into(), msg.clone()));
            ("ERR".into(), f)
        }
    }
}

/// Checks `answer` against one `<` line; captures into `vars`.
fn check(
    expect: &str,
    answer: &Response,
    vars: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let (head, got) = fields(answer);
    let mut words = expect.split_whitespace();
    let want_head = words.next().unwrap_or_default();
    if want_head != head {
        return Err(format!("expected {want_head}, got {head}"));
    }
    let mut listed = Vec::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("{w:?} is not key=value"))?;
        listed.push(k);
        let have = got
            .iter()
            .find(|(gk, _)| gk == k)
            .map(|(_, gv)| gv.as_str())
            .ok_or_else(|| format!("no {k}= in the answer"))?;
        if v == "*" {
            continue;
        }
        if let Some(part) = v.strip_prefix('~') {
            let part = unescape(part);
            if !have.contains(&part) {
                return Err(format!("{k}={have:?} does not contain {part:?}"));
            }
            continue;
        }
        if let Some(name) = v.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            match vars.get(name) {
                Some(bound) if bound != have => {
                    return Err(format!("{k}={have} but {{{name}}} is {bound}"))
                }
                Some(_) => {}
                None => {
                    vars.insert(name.to_string(), have.to_string());
                }
            }
            continue;
        }
        if have != unescape(v) {
            return Err(format!("{k}={have:?}, expected {v:?}"));
        }
    }
    if let Some((k, _)) = got
        .iter()
        .find(|(k, _)| k != "msg" && !listed.contains(&k.as_str()))
    {
        return Err(format!(
            "the answer has {k}=, which the transcript does not list"
        ));
    }
    Ok(())
}

/// Undoes the frame escapes (`%20`, `%25`, ...) of an expected value.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(x) => {
                out.push(x);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or("unclosed {")? + i;
        let (name, lower) = match rest[i + 1..end].strip_suffix(":lower") {
            Some(n) => (n, true),
            None => (&rest[i + 1..end], false),
        };
        let value = vars
            .get(name)
            .ok_or_else(|| format!("{{{name}}} was never captured"))?;
        out.push_str(&if lower {
            value.to_ascii_lowercase()
        } else {
            value.clone()
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

async fn run(path: &Path) {
    let text = std::fs::read_to_string(path).expect("transcript");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let r = super::stations::rig();
    let mut d = super::stations::start(&r).await;
    let db = r.line.db_path();
    let mut clients: BTreeMap<&str, super::stations::AnyClient> = BTreeMap::new();
    clients.insert(
        "tcp-1",
        super::stations::AnyClient::Tcp(super::stations::tcp(&d).await),
    );
    let (prov, func, fin) = (r.provision, r.functional, r.fin);
    clients.insert(
        "provision-1",
        super::stations::AnyClient::Pty(super::stations::client(prov, "prov")),
    );
    clients.insert(
        "functional-1",
        super::stations::AnyClient::Pty(super::stations::client(func, "func")),
    );
    clients.insert(
        "final-1",
        super::stations::AnyClient::Pty(super::stations::client(fin, "fin")),
    );
    let mut vars = BTreeMap::new();
    let mut station = "tcp-1".to_string();
    let mut last: Option<(usize, String, Response)> = None;
    // The last command's output and how far `|` lines have matched in it.
    let mut output: Option<(String, usize)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = format!("{name}:{}", n + 1);
        let fail = |why: String| -> ! { panic!("{at}: {line}\n  {why}") };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix("@ ") {
            if !clients.contains_key(s) {
                fail(format!("no station {s:?} in the rig"));
            }
            station = s.to_string();
        } else if let Some(frame) = line.strip_prefix("> ") {
            let frame = substitute(frame, &vars).unwrap_or_else(|e| fail(e));
            let bytes = format!(
                "{frame}*{:02X}\r\n",
                linemark::protocol::checksum(frame.as_bytes())
            );
            let c = clients
                .get_mut(station.as_str())
                .unwrap_or_else(|| fail("no station".into()));
            let answer = c
                .send(bytes.as_bytes())
                .await
                .unwrap_or_else(|e| fail(format!("no answer: {e}")));
            last = Some((n + 1, frame, answer));
        } else if let Some(expect) = line.strip_prefix("< ") {
            let Some((_, frame, answer)) = &last else {
                fail("an answer with no frame before it".into())
            };
            if let Err(why) = check(expect, answer, &mut vars) {
                fail(format!("{why}\n  frame:  {frame}\n  answer: {answer:?}"));
            }
        } else if let Some(rest) = line.strip_prefix("= EVENTS ") {
            let mut p = rest.split_whitespace();
            let (Some(kind), Some(want)) = (p.next(), p.next().and_then(|v| v.parse::<i64>().ok()))
            else {
                fail("= EVENTS TYPE N".into())
            };
            let have = crate::helper::count_events(&db, kind);
            if have != want {
                fail(format!("{have} {kind} events, expected {want}"));
            }
        } else if let Some(args) = line.strip_prefix("$ ") {
            let args = substitute(args, &vars).unwrap_or_else(|e| fail(e));
            let args: Vec<&str> = args.split_whitespace().collect();
            let out = r.line.cli(&args);
            let text = crate::helper::stdout(&out);
            if out.status.code() != Some(0) {
                fail(format!(
                    "exit {:?}\n{text}{}",
                    out.status.code(),
                    crate::helper::stderr(&out)
                ));
            }
            output = Some((text, 0));
        } else if let Some(want) = line.strip_prefix("| ") {
            let want = substitute(want, &vars).unwrap_or_else(|e| fail(e));
            match &mut output {
                Some((o, from)) => match o[*from..].find(&want) {
                    Some(i) => *from += i + want.len(),
                    None => fail(format!("not in the output after the lines above:\n{o}")),
                },
                None => fail("`|` with no `$` command before it".into()),
            }
        } else if line == "! restart" {
            d.shutdown().await;
            d = linemark::daemon::Daemon::start(r.line.config())
                .await
                .unwrap_or_else(|e| fail(format!("restart: {e}")));
            clients.insert(
                "tcp-1",
                super::stations::AnyClient::Tcp(super::stations::tcp(&d).await),
            );
        } else {
            fail("not a transcript line (# @ > < = $ | !)".into());
        }
    }
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_station_transcript_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transcripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("transcripts")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    for f in files {
        run(&f).await;
    }
}

#[test]
fn the_driver_matches_captures_wildcards_and_refuses_unlisted_fields() {
    let mut vars = BTreeMap::new();
    let ok = Response::Ok(vec![
        ("unit".into(), "V700QW11S6PJ4".into()),
        ("uri".into(), "https://x".into()),
    ]);
    assert!(check("OK unit={u} uri=*", &ok, &mut vars).is_ok());
    assert_eq!(vars["u"], "V700QW11S6PJ4");
    assert!(
        check("OK unit={u} uri=*", &ok, &mut vars).is_ok(),
        "bound and equal"
    );
    assert!(check("OK unit=OTHER uri=*", &ok, &mut vars).is_err());
    assert!(check("OK unit={u}", &ok, &mut vars)
        .unwrap_err()
        .contains("uri="));
    assert!(check("ERR code=E_ROUTE", &ok, &mut vars).is_err());
    let err = Response::Err {
        code: linemark::protocol::ErrorCode::Route,
        extra: vec![("missing".into(), "a,b".into())],
        msg: "required steps have not passed".into(),
    };
    assert!(check("ERR code=E_ROUTE missing=a,b", &err, &mut vars).is_ok());
    assert!(check("ERR code=E_ROUTE missing=a,b msg=~steps", &err, &mut vars).is_ok());
    assert!(check("ERR code=E_ROUTE missing=a,b msg=~nope", &err, &mut vars).is_err());
    assert!(check(
        "ERR code=E_ROUTE missing=a,b msg=~steps%20have",
        &err,
        &mut vars
    )
    .is_ok());
    assert_eq!(unescape("a%20b%25c%2"), "a b%c%2");
    assert!(
        check("ERR code=E_ROUTE", &err, &mut vars).is_err(),
        "missing= unlisted"
    );
    assert_eq!(
        substitute("FINAL unit={u}", &vars).unwrap(),
        "FINAL unit=V700QW11S6PJ4"
    );
    assert!(substitute("FINAL unit={nope}", &vars).is_err());
    assert_eq!(
        substitute("SCRAP unit={u:lower}", &vars).unwrap(),
        "SCRAP unit=v700qw11s6pj4"
    );
}
