//! Where a config error points: the line of a key path in the TOML text,
//! and the key path at a byte offset (for toml's own parse errors). Shared
//! by every config file this package reads (`linemark.toml`,
//! `central.toml`), so each error says `file:line: key: problem`.
//!
//! Must not: check values (it reads only the config file itself).

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted key path (`product[1].gtin`) whose key or value covers a byte
/// offset, through toml's spanned parse.
pub fn key_path_at(text: &str, offset: usize) -> Option<String> {
    /// Visits every key, recursing into tables and arrays of tables; keeps
    /// the path whose key or scalar value covers `offset`.
    fn walk(t: &toml::de::DeTable<'_>, offset: usize, prefix: &str, found: &mut Option<String>) {
        for (k, v) in t.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            let vs = v.span();
            let hit = k.span().contains(&offset) || (vs.start..=vs.end).contains(&offset);
            match v.get_ref() {
                toml::de::DeValue::Table(inner) => walk(inner, offset, &path, found),
                toml::de::DeValue::Array(items) => {
                    let mut deeper = false;
                    for (i, item) in items.iter().enumerate() {
                        if let toml::de::DeValue::Table(inner) = item.get_ref() {
                            walk(inner, offset, &format!("{path}[{i}]"), found);
                            deeper = true;
                        } else {
                            let s = item.span();
                            if (s.start..=s.end).contains(&offset) {
                                *found = Some(format!("{path}[{i}]"));
                            }
                        }
                    }
                    if hit && !deeper && found.is_none() {
                        *found = Some(path);
                    }
                }
                _ if hit => *found = Some(path),
                _ => {}
            }
        }
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut found = None;
    walk(doc.get_ref(), offset, "", &mut found);
    found
}

/// One step of a key path: a table key or an array index.
#[derive(Clone, Copy)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub fn display_path(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The 1-based line where the key path `path` is written in `text`.
pub fn line_of_path(text: &str, path: &[Seg<'_>]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = doc.span();
    let mut table = doc.get_ref();
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    for seg in path {
        let next = match (seg, value) {
            (Seg::Key(k), None) => table.get(*k)?,
            (Seg::Key(k), Some(v)) => v.as_table()?.get(*k)?,
            (Seg::Index(i), Some(v)) => v.as_array()?.get(*i)?,
            (Seg::Index(_), None) => return None,
        };
        span = next.span();
        value = Some(next.get_ref());
        if let Some(t) = value.and_then(|v| v.as_table()) {
            table = t;
        }
    }
    Some(line_of(text, span.start))
}

/// A config error at `path` in `text`, read from `origin`.
pub fn error_at(
    text: &str,
    origin: &str,
    path: &[Seg<'_>],
    message: impl Into<String>,
) -> super::ConfigError {
    super::ConfigError {
        file: origin.to_string(),
        line: line_of_path(text, path),
        key: display_path(path),
        message: message.into(),
    }
}

/// toml's own parse error (syntax, a wrong type, an unknown key) as a
/// config error naming the line and the key.
pub fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> super::ConfigError {
    let at = e.span().map(|span| span.start);
    super::ConfigError {
        file: origin.to_string(),
        line: at.map(|o| line_of(text, o)),
        key: at
            .and_then(|o| key_path_at(text, o))
            .unwrap_or_else(|| "(syntax)".into()),
        message: e.message().trim().to_string(),
    }
}

/// Reads a config file: its text, the name errors use, and the folder
/// relative paths are joined to.
pub fn read_config(
    path: &std::path::Path,
) -> Result<(String, String, std::path::PathBuf), super::ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| super::ConfigError {
        file: origin.clone(),
        line: None,
        key: "(file)".into(),
        message: format!("cannot read the config file: {e}"),
    })?;
    let base = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    Ok((text, origin, base))
}
