//! The EPCIS 2.0 export validates against GS1's JSON Schema, carries every
//! mapped event, and its epcList entries are Digital Links we can read.

use crate::helper::{connect, ok, station_toml, stderr, Line};
use linemark::daemon::Daemon;

const VERBS: &[&str] = &[
    "ALLOC", "FINAL", "SCRAP", "BIND", "SHIP", "REPLACE", "RESULT",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epcis_export_validates_against_the_gs1_schema() {
    let mut extra = station_toml("t", "tcp://127.0.0.1:0", VERBS, None, "optional");
    extra += "\n[[product]]\nkey = \"BMS\"\ngtin = \"09506000134369\"\nlevel = \"item\"\ntemplate = \"device-25x15\"\n";
    let line = Line::with_config(&extra);
    {
        let j = line.open();
        line.grant_into(&j, "b1", 0, 1000);
    }
    let d = Daemon::start(line.config()).await.unwrap();
    let mut c = connect(&d, "t", "t").await;
    let mut pass = Vec::new();
    for _ in 0..5 {
        let u = c
            .request("ALLOC", &[("product", "BMS"), ("lot", "L/7")])
            .await
            .unwrap()
            .get("unit")
            .unwrap()
            .to_string();
        c.request("BIND", &[("unit", &u), ("fw", "2.1.0")])
            .await
            .unwrap();
        ok(&mut c, "FINAL", &[("unit", &u), ("status", "PASS")]).await;
        pass.push(u);
    }
    c.request(
        "BIND",
        &[("unit", &pass[0]), ("child", &pass[1]), ("child", &pass[2])],
    )
    .await
    .unwrap();
    ok(
        &mut c,
        "REPLACE",
        &[
            ("unit", &pass[0]),
            ("old", &pass[1]),
            ("new", &pass[3]),
            ("reason", "rework"),
        ],
    )
    .await;
    c.request("SCRAP", &[("unit", &pass[4]), ("reason", "dropped")])
        .await
        .unwrap();
    for u in &pass[..2] {
        ok(&mut c, "SHIP", &[("unit", u), ("shipment", "SH-1")]).await;
    }
    d.shutdown().await;

    let out = line.path().join("events.jsonld");
    let r = line.cli(&["export", "epcis", "--out", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/EPCIS-JSON-Schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
    // The validator does reject a broken event (this test can fail).
    let mut broken = doc.clone();
    broken["epcisBody"]["eventList"][0]["action"] = serde_json::json!("MAYBE");
    assert!(
        validator.iter_errors(&broken).next().is_some(),
        "the schema accepted action MAYBE"
    );
    let mut broken = doc.clone();
    broken["epcisBody"]["eventList"][0]["eventTimeZoneOffset"] = serde_json::json!("CET");
    assert!(
        validator.iter_errors(&broken).next().is_some(),
        "the schema accepted offset CET"
    );

    let events = doc["epcisBody"]["eventList"].as_array().unwrap();
    let count = |ty: &str, action: &str, step: &str| {
        events
            .iter()
            .filter(|e| e["type"] == ty && e["action"] == action && e["bizStep"] == step)
            .count()
    };
    assert_eq!(count("ObjectEvent", "ADD", "commissioning"), 5);
    assert_eq!(count("AggregationEvent", "ADD", "assembling"), 1);
    assert_eq!(count("AggregationEvent", "DELETE", "replacing"), 1);
    assert_eq!(count("AggregationEvent", "ADD", "replacing"), 1);
    assert_eq!(count("ObjectEvent", "DELETE", "destroying"), 1);
    assert_eq!(count("ObjectEvent", "OBSERVE", "shipping"), 2);
    for e in events {
        for uri in e["epcList"].as_array().into_iter().flatten() {
            let (_, id) = linemark::gs1::parse_uri(uri.as_str().unwrap()).unwrap();
            assert_eq!(id.lot.as_deref(), Some("L/7"));
        }
        assert!(
            e["eventTimeZoneOffset"] == "+01:00" || e["eventTimeZoneOffset"] == "+02:00",
            "Europe/Berlin offset"
        );
    }
    let commissioning = events
        .iter()
        .find(|e| e["bizStep"] == "commissioning")
        .unwrap();
    assert_eq!(commissioning["ilmd"]["linemark:firmware"], "2.1.0");
    assert_eq!(commissioning["ilmd"]["linemark:line"], "P1-L03");

    // Event IDs are deterministic: a second export gives the same IDs.
    let out2 = line.path().join("again.jsonld");
    assert_eq!(
        line.cli(&["export", "epcis", "--out", out2.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let doc2: serde_json::Value = serde_json::from_slice(&std::fs::read(&out2).unwrap()).unwrap();
    let ids = |d: &serde_json::Value| {
        d["epcisBody"]["eventList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventID"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&doc), ids(&doc2));
    // A range: from a seq, and a bad bound is refused.
    let r = line.cli(&[
        "export",
        "epcis",
        "--from",
        "9999",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0));
    let empty: serde_json::Value = serde_json::from_slice(&std::fs::read(&out2).unwrap()).unwrap();
    assert_eq!(empty["epcisBody"]["eventList"].as_array().unwrap().len(), 0);
    let r = line.cli(&[
        "export",
        "epcis",
        "--from",
        "yesterday",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
}
