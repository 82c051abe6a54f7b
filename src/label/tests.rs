use super::render;
use super::*;

fn template(name: &str) -> Template {
    let path = format!("{}/label-templates/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let t = Template::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    t.check_codes(&path, "https://id.example.com").unwrap();
    t
}

fn data(lot: Option<&str>) -> LabelData {
    LabelData {
        resolver: "https://id.example.com".into(),
        gtin: Gtin::parse("09506000134352").unwrap(),
        level: Level::Item,
        lot: lot.map(str::to_string),
        unit: "V700QW11S6PJ4".into(),
        product: "PACK-48V".into(),
        line: "P1-L03".into(),
        date: "2026-11-20".into(),
    }
}

/// Decodes every QR code in a PNG with an independent decoder.
pub(crate) fn decode_qr_png(png_bytes: &[u8]) -> Vec<String> {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::One);
    let (w, h) = (info.width as usize, info.height as usize);
    let stride = info.line_size;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if buf[y * stride + x / 8] & (0x80 >> (x % 8)) != 0 {
            255
        } else {
            0
        }
    });
    img.detect_grids()
        .into_iter()
        .map(|g| g.decode().map(|(_, s)| s).unwrap())
        .collect()
}

#[test]
fn every_qr_in_both_templates_decodes_to_exactly_the_uri() {
    for name in ["pack-50x30", "device-25x15"] {
        let t = template(name);
        for lot in [
            None,
            Some("L2026-11"),
            Some("AB/7%"),
            Some("!\"%&'()*+,-./:;<=>?_"),
            Some("////////////////////"),
        ] {
            let d = data(lot);
            let png = render::png(&layout(&t, &d).unwrap()).unwrap();
            assert_eq!(decode_qr_png(&png), vec![d.uri()], "{name}, lot {lot:?}");
        }
    }
}

#[test]
fn the_datamatrix_carries_the_element_string_with_fnc1() {
    let t = template("pack-50x30");
    let l = layout(&t, &data(Some("L1"))).unwrap();
    let dm = l
        .items
        .iter()
        .find_map(|i| match i {
            Item::Code {
                kind: CodeKind::DataMatrix,
                matrix,
                data,
                ..
            } => Some((matrix.clone(), data.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(dm.1, "010950600013435210L1\u{1d}21V700QW11S6PJ4");
    let decoded = datamatrix::DataMatrix::decode(&dm.0.bits, dm.0.width).unwrap();
    // FNC1 in first position decodes as a leading GS (ASCII 232 -> 29).
    let text = String::from_utf8_lossy(&decoded).into_owned();
    assert!(
        text.ends_with("010950600013435210L1\u{1d}21V700QW11S6PJ4"),
        "{text:?}"
    );
}

#[test]
fn zpl_code_bitmaps_are_dot_for_dot_the_png() {
    let t = template("pack-50x30");
    let l = layout(&t, &data(Some("L1"))).unwrap();
    let full = render::raster(&l);
    for item in &l.items {
        if let Item::Code {
            x,
            y,
            module,
            matrix,
            ..
        } = item
        {
            let bm = render::code_bitmap(matrix, *module);
            for yy in 0..bm.height {
                for xx in 0..bm.width {
                    assert_eq!(bm.get(xx, yy), full.get(x + xx, y + yy), "dot ({xx}, {yy})");
                }
            }
        }
    }
    let zpl = String::from_utf8(render::zpl(&l)).unwrap();
    assert!(zpl.starts_with("^XA\n^CI28\n^PW590\n^LL354\n"), "{zpl}");
    assert!(zpl.trim_end().ends_with("^XZ"));
    assert_eq!(zpl.matches("^GFA,").count(), 2);
}

#[test]
fn zpl_field_data_escapes_command_characters() {
    assert_eq!(render::zpl_field("A^B~C_D"), "A_5EB_7EC_5FD");
    assert_eq!(render::zpl_field("Lot ä"), "Lot _C3_A4");
    let mut d = data(Some("L1"));
    d.product = "X^XZ".into();
    let zpl =
        String::from_utf8(render::zpl(&layout(&template("pack-50x30"), &d).unwrap())).unwrap();
    assert!(
        zpl.contains("^FDX_5EXZ^FS"),
        "a product name cannot end the label early"
    );
    assert_eq!(zpl.matches("^XZ").count(), 1);
}

#[test]
fn png_is_1_bit_at_the_printers_resolution() {
    let t = template("device-25x15");
    let png = render::png(&layout(&t, &data(None)).unwrap()).unwrap();
    let dec = png::Decoder::new(std::io::Cursor::new(&png));
    let reader = dec.read_info().unwrap();
    let info = reader.info();
    assert_eq!((info.width, info.height), (295, 177));
    assert_eq!(info.bit_depth, png::BitDepth::One);
    let dims = info.pixel_dims.unwrap();
    assert_eq!(dims.xppu, 11811, "300 dpi in pixels per metre");
}

#[test]
fn pdf_page_is_the_label_size() {
    let t = template("pack-50x30");
    let pdf = render::pdf(&layout(&t, &data(Some("L1"))).unwrap()).unwrap();
    let doc = lopdf::Document::load_mem(&pdf).unwrap();
    let pages = doc.get_pages();
    assert_eq!(pages.len(), 1);
    let page = doc
        .get_object(*pages.get(&1).unwrap())
        .unwrap()
        .as_dict()
        .unwrap();
    let mb: Vec<f32> = page
        .get(b"MediaBox")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_float().unwrap())
        .collect();
    // 50 x 30 mm = 141.73 x 85.04 pt; printpdf writes whole points.
    assert!(
        (mb[2] - 141.73).abs() <= 0.5 && (mb[3] - 85.04).abs() <= 0.5,
        "{mb:?}"
    );
    let content = doc.get_page_content(*pages.get(&1).unwrap()).unwrap();
    let ops = lopdf::content::Content::decode(&content)
        .unwrap()
        .operations;
    assert!(
        ops.iter()
            .filter(|o| o.operator == "re" || o.operator == "f" || o.operator == "l")
            .count()
            > 100,
        "codes drawn as vector shapes"
    );
    assert!(
        ops.iter().any(|o| o.operator == "Tj" || o.operator == "TJ"),
        "text is real text"
    );
}

/// Golden files: regenerate with `LINEMARK_UPDATE_GOLDEN=1 cargo test golden`.
fn golden(name: &str, bytes: &[u8]) {
    let path = format!("{}/tests/data/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("LINEMARK_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{path} missing: run with LINEMARK_UPDATE_GOLDEN=1"));
    assert!(want == bytes, "{name} differs from its golden file; if the change is intended, regenerate with LINEMARK_UPDATE_GOLDEN=1");
}

#[test]
fn golden_zpl_and_png_for_both_templates() {
    for name in ["pack-50x30", "device-25x15"] {
        let l = layout(&template(name), &data(Some("L2026/11"))).unwrap();
        golden(&format!("{name}.zpl"), &render::zpl(&l));
        golden(&format!("{name}.png"), &render::png(&l).unwrap());
    }
}

fn bad(text: &str) -> LabelError {
    let r = Template::parse(text, "bad.toml")
        .and_then(|t| t.check_codes("bad.toml", "https://id.example.com"));
    r.unwrap_err()
}

const HEAD: &str = "name = \"t\"\nwidth_mm = 50.0\nheight_mm = 30.0\ndpi = 300\n";

#[test]
fn bad_templates_are_refused_naming_the_file_and_the_element() {
    let cases = [
        ("[[element]]\nkind = \"qr\"\nx_mm = 30.0\ny_mm = 1.0\nsize_mm = 25.0\nec = \"M\"\n", "element[0] (qr)", "outside"),
        ("[[element]]\nkind = \"qr\"\nx_mm = 1.0\ny_mm = 1.0\nsize_mm = 12.0\nec = \"M\"\n", "element[0] (qr)", "at least 0.25 mm"),
        ("[[element]]\nkind = \"text\"\nx_mm = 1.0\ny_mm = 1.0\nheight_mm = 2.0\ntext = \"{serial}\"\n", "element[0] (text)", "unknown placeholder {serial}"),
        ("[[element]]\nkind = \"datamatrix\"\nx_mm = 45.0\ny_mm = 1.0\nsize_mm = 8.0\n", "element[0] (datamatrix)", "outside"),
        ("[[element]]\nkind = \"datamatrix\"\nx_mm = 1.0\ny_mm = 1.0\nsize_mm = 5.0\n", "element[0] (datamatrix)", "at least 0.25 mm"),
        ("[[element]]\nkind = \"line\"\nx1_mm = 1.0\ny1_mm = 1.0\nx2_mm = 5.0\ny2_mm = 5.0\nthickness_mm = 0.3\n", "element[0] (line)", "horizontal or vertical"),
    ];
    for (el, element, problem) in cases {
        let e = bad(&format!("{HEAD}{el}"));
        let s = e.to_string();
        assert!(s.starts_with("template bad.toml"), "{s}");
        assert!(s.contains(element), "{s}");
        assert!(s.contains(problem), "{problem:?} not in {s}");
    }
    // A 2D code cannot be given other data.
    let e = bad(&format!("{HEAD}[[element]]\nkind = \"qr\"\nx_mm = 1.0\ny_mm = 1.0\nsize_mm = 25.0\nec = \"M\"\ndata = \"http://evil\"\n"));
    assert!(e.to_string().contains("unknown field `data`"), "{e}");
    let e = bad("name = \"t\"\nwidth_mm = 50.0\nheight_mm = 30.0\ndpi = 250\n[[element]]\nkind = \"box\"\nx_mm = 1.0\ny_mm = 1.0\nwidth_mm = 5.0\nheight_mm = 5.0\nthickness_mm = 0.2\n");
    assert!(e.to_string().contains("dpi = 250"), "{e}");
}

#[test]
fn placeholders_are_filled() {
    let d = data(Some("L1"));
    assert_eq!(
        d.fill("{unit} {gtin} {lot} {product} {line} {date}"),
        "V700QW11S6PJ4 09506000134352 L1 PACK-48V P1-L03 2026-11-20"
    );
    assert_eq!(
        d.fill("{hri}"),
        "(01) 09506000134352 (10) L1 (21) V700QW11S6PJ4"
    );
}
