//! Label templates as the config loads them: the built-in ones and files
//! in `templates_dir`.
//!
//! Owns: finding and loading a template by name. Must not: lay out or
//! render labels (that is `label`).

use std::path::Path;

/// Templates shipped inside the binary, used when the templates folder
/// does not have the file (a fresh install, or `linemark demo`).
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    (
        "pack-50x30",
        include_str!("../../label-templates/pack-50x30.toml"),
    ),
    (
        "device-25x15",
        include_str!("../../label-templates/device-25x15.toml"),
    ),
];

/// Why a product's label template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no template {path} (and no built-in template {name:?})")]
    Missing { path: String, name: String },
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    /// The file does not parse, or a code on it cannot hold the worst-case
    /// data.
    #[error(transparent)]
    Invalid(#[from] crate::label::LabelError),
    #[error("{source_name} says name = {found:?}, but products refer to it as {name:?}")]
    WrongName {
        source_name: String,
        found: String,
        name: String,
    },
}

/// Loads and checks `dir/name.toml` (or the built-in template of that name
/// when the file does not exist).
pub fn load_template(
    dir: &Path,
    name: &str,
    resolver: &str,
) -> Result<crate::label::Template, TemplateError> {
    let path = dir.join(format!("{name}.toml"));
    let (text, source) = match std::fs::read_to_string(&path) {
        Ok(t) => (t, path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match BUILTIN_TEMPLATES.iter().find(|(n, _)| *n == name) {
                Some((_, t)) => (t.to_string(), format!("<built-in {name}>")),
                None => {
                    return Err(TemplateError::Missing {
                        path: path.display().to_string(),
                        name: name.to_string(),
                    })
                }
            }
        }
        Err(e) => {
            return Err(TemplateError::Unreadable {
                path: path.display().to_string(),
                source: e,
            })
        }
    };
    let t = crate::label::Template::parse(&text, &source)?;
    if t.name != name {
        return Err(TemplateError::WrongName {
            source_name: source,
            found: t.name,
            name: name.to_string(),
        });
    }
    t.check_codes(&source, resolver)?;
    Ok(t)
}
