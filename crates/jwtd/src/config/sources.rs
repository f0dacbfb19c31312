//! Where settings come from: one raw layer of texts, filled from the TOML file, then the
//! environment, then the flags, each value remembering its source for messages. Names that are
//! no setting are warnings, not errors (SPEC §5). Must not: read the process environment (`main`
//! passes it in), interpret a value (that is the parsers of `values`).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::table::{Setting, SettingsFlags, DATABASE_URL, ENV_PREFIX, SECRET_FILES, SETTINGS};
use super::ConfigError;

/// Where settings come from, lowest priority first after the built-in defaults.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    pub config_file: Option<&'a Path>,
    pub env: HashMap<String, String>,
    pub flags: SettingsFlags,
}

/// A setting's value and where it came from: its variable, its flag, `FILE: key`, or its name
/// for the built-in default.
#[derive(Debug, Clone)]
pub(super) struct Given<T> {
    pub value: T,
    pub source: String,
    pub setting: &'static Setting,
}

impl<T> Given<T> {
    /// An error about this value, prefixed with its source.
    pub fn error(&self, e: impl fmt::Display) -> ConfigError {
        ConfigError(format!("{}: {e}", self.source))
    }
}

#[derive(Debug, Clone)]
struct Text {
    text: String,
    source: String,
}

/// The texts of the settings, by position in [`SETTINGS`]; the last source written wins.
#[derive(Debug)]
pub(super) struct Raw(Vec<Option<Text>>);

impl Default for Raw {
    fn default() -> Self {
        Raw(SETTINGS.iter().map(|_| None).collect())
    }
}

impl Raw {
    fn set(&mut self, index: usize, text: String, source: String) {
        self.0[index] = Some(Text { text, source });
    }

    /// The text of the setting at `index`, when a source gave a non-blank one.
    fn given(&self, index: usize) -> Option<&Text> {
        self.0.get(index).and_then(Option::as_ref).filter(|t| !t.text.trim().is_empty())
    }

    /// The setting at `index` parsed: its text from the highest source, or its default when
    /// none gives it (an empty text counts as not given).
    pub fn read<T>(
        &self,
        setting: &'static Setting,
        index: usize,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Given<T>, ConfigError> {
        let given = self.given(index);
        let (text, source) = match given {
            Some(t) => (t.text.as_str(), t.source.clone()),
            None => (setting.default, setting.name.to_string()),
        };
        let text = if setting.literal { text } else { text.trim() };
        match parse(text) {
            Ok(value) => Ok(Given { value, source, setting }),
            Err(e) => Err(ConfigError(format!("{source}: {e}"))),
        }
    }
}

/// The raw layer of `sources`: default < TOML < env < flags. Names that are no setting (a TOML
/// key, or a variable with the prefix of jwtd's) are added to `warnings`.
pub(super) fn layers(sources: &Sources<'_>, warnings: &mut Vec<String>) -> Result<Raw, ConfigError> {
    let mut raw = Raw::default();
    if let Some(path) = sources.config_file {
        read_toml(path, &mut raw, warnings)?;
    }
    let mut env: Vec<(&String, &String)> = sources.env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    env.sort();
    for (key, value) in env {
        match SETTINGS.iter().position(|s| s.env == key) {
            Some(i) => raw.set(i, value.clone(), key.clone()),
            None => warnings.push(format!("{key}: not a setting of jwtd, ignored")),
        }
    }
    for (i, value) in sources.flags.given().into_iter().enumerate() {
        if let Some(value) = value {
            raw.set(i, value.clone(), SETTINGS[i].flag());
        }
    }
    for (secret, _) in SECRET_FILES {
        if let Some(i) = position(secret) {
            // A database URL is a secret only when it carries a password (`mask_url` hides it).
            let holds_secret = |value: &str| secret.name != DATABASE_URL.name || super::mask_url(value) != value;
            if let Some(text) = raw.given(i).filter(|t| t.source == secret.flag() && holds_secret(&t.text)) {
                warnings.push(format!(
                    "{}: a secret on the command line is visible to every local user (ps, /proc); \
                     use {}{}_FILE or the environment",
                    text.source, ENV_PREFIX, secret.name
                ));
            }
        }
    }
    read_secret_files(&mut raw)?;
    Ok(raw)
}

fn position(setting: &Setting) -> Option<usize> {
    SETTINGS.iter().position(|s| s.name == setting.name)
}

/// Each `NAME_FILE` given becomes `NAME`'s text: the file's content, one trailing newline
/// dropped (what `echo secret > file` adds). Both given is an error naming both.
fn read_secret_files(raw: &mut Raw) -> Result<(), ConfigError> {
    for (secret, file) in SECRET_FILES {
        let (Some(si), Some(fi)) = (position(secret), position(file)) else { continue };
        let Some(path) = raw.given(fi).cloned() else { continue };
        if let Some(both) = raw.given(si) {
            return Err(ConfigError(format!(
                "{}: {} is set too ({}); give one of them",
                path.source, secret.name, both.source
            )));
        }
        let name = path.text.trim();
        let content = std::fs::read_to_string(name)
            .map_err(|e| ConfigError(format!("{}: cannot read {name:?}: {e}", path.source)))?;
        let content = match content.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => &content,
        };
        raw.set(si, content.to_string(), path.source.clone());
    }
    Ok(())
}

fn read_toml(path: &Path, raw: &mut Raw, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let where_ = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError(format!("--config {where_}: cannot read: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError(format!("--config {where_}: not valid TOML: {e}")))?;
    for (key, value) in table {
        let Some(index) = SETTINGS.iter().position(|s| s.key.eq_ignore_ascii_case(&key)) else {
            warnings.push(format!("{where_}: {key}: not a setting of jwtd, ignored"));
            continue;
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => return Err(ConfigError(format!("{where_}: {key}: unsupported value {other}"))),
        };
        raw.set(index, text, format!("{where_}: {key}"));
    }
    Ok(())
}
