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

/// Loads and checks `dir/name.toml` (or the built-in template of that name
/// when the file does not exist).
pub fn load_template(
    dir: &Path,
    name: &str,
    resolver: &str,
) -> Result<crate::label::Template, String> {
    let path = dir.join(format!("{name}.toml"));
    let (text, source) = match std::fs::read_to_string(&path) {
        Ok(t) => (t, path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match BUILTIN_TEMPLATES.iter().find(|(n, _)| *n == name) {
                Some((_, t)) => (t.to_string(), format!("<built-in {name}>")),
                None => {
                    return Err(format!(
                        "no template {} (and no built-in template {name:?})",
                        path.display()
                    ))
                }
            }
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let t = crate::label::Template::parse(&text, &source).map_err(|e| e.to_string())?;
    if t.name != name {
        return Err(format!(
            "{source} says name = {:?}, but products refer to it as {name:?}",
            t.name
        ));
    }
    t.check_codes(&source, resolver)
        .map_err(|e| e.to_string())?;
    Ok(t)
}
