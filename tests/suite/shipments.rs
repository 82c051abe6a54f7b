//! SHIP and REPLACE over a real socket, and the per-shipment export.

use crate::helper::{connect, count_events, ok, station_toml, stderr, Line};
use linemark::client::StationClient;
use linemark::daemon::Daemon;
use linemark::protocol::{ErrorCode, Response};

const VERBS: &[&str] = &[
    "ALLOC", "RESULT", "FINAL", "SCRAP", "BIND", "SHIP", "REPLACE",
];

fn line() -> Line {
    let mut extra = station_toml("t", "tcp://127.0.0.1:0", VERBS, None, "optional");
    extra += "\n[[product]]\nkey = \"BMS\"\ngtin = \"09506000134369\"\nlevel = \"item\"\ntemplate = \"device-25x15\"\n";
    let line = Line::with_config(&extra);
    let j = line.open();
    line.grant_into(&j, "b1", 0, 100_000);
    line
}

fn code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Err { code, .. } => Some(*code),
        _ => None,
    }
}

async fn passed(c: &mut StationClient<tokio::net::TcpStream>, product: &str) -> String {
    let u = c
        .request("ALLOC", &[("product", product), ("lot", "L7")])
        .await
        .unwrap()
        .get("unit")
        .unwrap()
        .to_string();
    ok(c, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1000_unit_shipment_exports_complete_and_in_order() {
    let line = line();
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = connect(&d, "t", "t").await;
    let mut order = Vec::new();
    for i in 0..1000 {
        let u = passed(&mut c, "BMS").await;
        let sn = format!("SN-{i:04}");
        c.request(
            "BIND",
            &[
                ("unit", &u),
                ("serial", &sn),
                (
                    "mac",
                    &format!("02:00:00:00:{:02X}:{:02X}", i >> 8, i & 255),
                ),
            ],
        )
        .await
        .unwrap();
        ok(
            &mut c,
            "SHIP",
            &[
                ("unit", &u),
                ("shipment", "SH-BIG"),
                ("to", "=HYPERLINK(\"x\")"),
            ],
        )
        .await;
        order.push(u);
    }
    d.shutdown().await;
    let csv_path = line.path().join("sh.csv");
    let out = line.cli(&[
        "export",
        "shipment",
        "SH-BIG",
        "--format",
        "csv",
        "--out",
        csv_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(&headers[0], "unit");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1000);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[col("unit")], order[i], "row {i} out of order");
        let (_, id) = linemark::gs1::parse_uri(&r[col("uri")]).unwrap();
        assert_eq!(id.serial.as_deref(), Some(&order[i][..]));
        assert_eq!(r[col("serial")], format!("SN-{i:04}"));
        assert!(
            r[col("buyer")].starts_with('\''),
            "formula-looking cells are neutralised for spreadsheets"
        );
        assert!(!r[col("final_pass_at")].is_empty() && !r[col("shipped_at")].is_empty());
    }
    let out = line.cli(&["export", "shipment", "SH-BIG", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["count"], 1000);
    let units = doc["units"].as_array().unwrap();
    assert_eq!(units[999]["unit"], order[999]);
    assert_eq!(units[0]["mac"], "02:00:00:00:00:00");
    let out = line.cli(&["export", "shipment", "NOPE"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no unit was shipped under \"NOPE\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bind_or_replace_makes_a_unit_its_own_ancestor() {
    let line = line();
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = connect(&d, "t", "t").await;
    let mut alloc = async || {
        c.request("ALLOC", &[("product", "BMS")])
            .await
            .unwrap()
            .get("unit")
            .unwrap()
            .to_string()
    };
    let (a, b, cc, dd, p, m) = (
        alloc().await,
        alloc().await,
        alloc().await,
        alloc().await,
        alloc().await,
        alloc().await,
    );
    {
        let ok = |r: Response| assert!(r.is_ok(), "{r:?}");
        ok(c.request("BIND", &[("unit", &a), ("child", &b)])
            .await
            .unwrap());
        ok(c.request("BIND", &[("unit", &b), ("child", &cc)])
            .await
            .unwrap());
        // C inside B inside A: A under C would be a loop of three.
        let r = c
            .request("BIND", &[("unit", &cc), ("child", &a)])
            .await
            .unwrap();
        assert_eq!(code(&r), Some(ErrorCode::Conflict), "{r:?}");
        // D contains M; P contains D; replacing M by P in D would loop.
        ok(c.request("BIND", &[("unit", &dd), ("child", &m)])
            .await
            .unwrap());
        ok(c.request("BIND", &[("unit", &p), ("child", &dd)])
            .await
            .unwrap());
        let r = c
            .request(
                "REPLACE",
                &[
                    ("unit", &dd),
                    ("old", &m),
                    ("new", &p),
                    ("reason", "rework"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(code(&r), Some(ErrorCode::Conflict), "{r:?}");
    }
    // Four good BINDs were journaled; neither loop nor its replacement.
    assert_eq!(count_events(&line.db_path(), "BOUND"), 4);
    assert_eq!(count_events(&line.db_path(), "CHILD_REPLACED"), 0);
    d.shutdown().await;
}
