//! `io_config.yaml` profiles (spec 1.4, 1.5): the whole file rendered with minijinja
//! (`env_var`, `json_value`, `mage_secret_var`), parsed as PyYAML would, then one profile read
//! in the standard (`POSTGRES_HOST: ...`) or the legacy verbose (`PostgreSQL: {host: ...}`)
//! format.
//!
//! Secrets never leave this module in text meant for people: [`Secret`] prints as `***`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use minijinja::Environment;
use serde_json::Value as Json;

/// A value that must not appear in logs, errors, run records or cell output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One rendered profile: its keys (standard names, e.g. `POSTGRES_HOST`) as text.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub file: PathBuf,
    pub values: BTreeMap<String, String>,
}

impl Profile {
    /// A key's value; `None` when missing, empty, or Mage's rendering of a missing variable
    /// (`None`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|it| !it.is_empty() && *it != "None")
    }
}

/// Sections of the legacy verbose format and the standard key each of their keys stands for.
const VERBOSE: &[(&str, &[(&str, &str)])] = &[(
    "PostgreSQL",
    &[
        ("database", "POSTGRES_DBNAME"),
        ("dbname", "POSTGRES_DBNAME"),
        ("host", "POSTGRES_HOST"),
        ("password", "POSTGRES_PASSWORD"),
        ("port", "POSTGRES_PORT"),
        ("schema", "POSTGRES_SCHEMA"),
        ("user", "POSTGRES_USER"),
        ("username", "POSTGRES_USER"),
        ("connect_timeout", "POSTGRES_CONNECT_TIMEOUT"),
        ("connection_method", "POSTGRES_CONNECTION_METHOD"),
    ],
)];

const SECRET_MARK: &str = "__wand_unresolved_mage_secret__";

/// Reads `profile` from the io_config file at `file` (usually `<project>/io_config.yaml`).
/// `project` is where `mage_secret_var` looks for a `.env` file.
pub fn load_profile(file: &Path, profile: &str, project: &Path) -> anyhow::Result<Profile> {
    let text =
        std::fs::read_to_string(file).map_err(|err| anyhow::format_err!("cannot read {} (profile `{profile}`): {err}", file.display()))?;
    let rendered = render(&text, project).map_err(|err| anyhow::format_err!("cannot render {}: {err:#}", file.display()))?;
    let (node, error) = pipeline::yaml::parse(&rendered);
    if let Some(error) = error {
        anyhow::bail!("{} is not valid YAML after rendering: {} (at byte {})", file.display(), error.message, error.offset);
    }
    let root = node.map(|it| it.to_json()).unwrap_or(Json::Null);
    let Some(section) = root.get(profile) else {
        let known: Vec<&str> =
            root.as_object().map(|it| it.keys().map(String::as_str).filter(|key| *key != "version").collect()).unwrap_or_default();
        anyhow::bail!("no profile `{profile}` in {} (profiles: {})", file.display(), known.join(", "));
    };
    let Some(section) = section.as_object() else {
        anyhow::bail!("profile `{profile}` in {} is not a mapping", file.display());
    };
    let mut values = BTreeMap::new();
    for (key, value) in section {
        if let Some((_, keys)) = VERBOSE.iter().find(|(name, _)| name == key) {
            if let Some(inner) = value.as_object() {
                for (inner_key, inner_value) in inner {
                    let standard =
                        keys.iter().find(|(verbose, _)| verbose == inner_key).map_or(inner_key.as_str(), |(_, standard)| standard);
                    values.insert(standard.to_owned(), scalar(inner_value));
                }
            }
            continue;
        }
        values.insert(key.clone(), scalar(value));
    }
    for (key, value) in &values {
        if let Some(start) = value.find(SECRET_MARK) {
            let name = value[start + SECRET_MARK.len()..].split(SECRET_MARK).next().unwrap_or_default();
            anyhow::bail!(
                "profile `{profile}` of {}: {key} uses mage_secret_var('{name}'), which cannot be resolved: Mage keeps secrets in its \
                 own database; set the environment variable {name} or add `{name}=...` to {}",
                file.display(),
                project.join(".env").display()
            );
        }
    }
    Ok(Profile { name: profile.to_owned(), file: file.to_path_buf(), values })
}

fn scalar(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        Json::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

/// Renders io_config text with Mage's template functions (spec 1.5).
pub fn render(text: &str, project: &Path) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    add_template_functions(&mut env, project);
    env.render_str(text, ()).map_err(|err| anyhow::format_err!("{err:#}"))
}

/// Adds Mage's `env_var(name, default)`, `json_value(json, key_path)` and
/// `mage_secret_var(name)` (from the environment, else `<project>/.env`) to a minijinja
/// environment; SQL block templates can use them too (spec 5.2 step 3). An unresolved secret
/// renders as a marker that [`load_profile`] reports with the profile's name.
pub fn add_template_functions(env: &mut Environment<'_>, project: &Path) {
    env.add_function("env_var", |name: String, default: Option<minijinja::Value>| -> minijinja::Value {
        match std::env::var(&name) {
            Ok(value) => minijinja::Value::from(value),
            Err(_) => default.unwrap_or(minijinja::Value::from("None")),
        }
    });
    env.add_function("json_value", |json: String, path: String| -> minijinja::Value {
        let Ok(mut value) = serde_json::from_str::<Json>(&json) else { return minijinja::Value::from("None") };
        for key in path.split('.').filter(|it| !it.is_empty()) {
            value = match value {
                Json::Object(mut map) => map.remove(key).unwrap_or(Json::Null),
                Json::Array(mut items) => {
                    key.parse::<usize>().ok().filter(|idx| *idx < items.len()).map(|idx| items.swap_remove(idx)).unwrap_or(Json::Null)
                }
                _ => Json::Null,
            };
        }
        match value {
            Json::Null => minijinja::Value::from("None"),
            Json::String(text) => minijinja::Value::from(text),
            other => minijinja::Value::from(other.to_string()),
        }
    });
    let dotenv = Arc::new(Mutex::new(None::<BTreeMap<String, String>>));
    let dotenv_path = project.join(".env");
    env.add_function("mage_secret_var", move |name: String| -> minijinja::Value {
        if let Ok(value) = std::env::var(&name) {
            return minijinja::Value::from(value);
        }
        let mut cache = dotenv.lock().unwrap();
        let values = cache.get_or_insert_with(|| read_dotenv(&dotenv_path));
        match values.get(&name) {
            Some(value) => minijinja::Value::from(value.clone()),
            // Reported by `load_profile` only when the chosen profile uses it.
            None => minijinja::Value::from(format!("{SECRET_MARK}{name}{SECRET_MARK}")),
        }
    });
}

/// `KEY=value` lines of a `.env` file (`export`, quotes and comments allowed).
fn read_dotenv(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else { return BTreeMap::new() };
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"')) || (value.starts_with('\'') && value.ends_with('\'')))
        {
            &value[1..value.len() - 1]
        } else {
            value.split(" #").next().unwrap_or(value).trim()
        };
        values.insert(key.trim().to_owned(), value.to_owned());
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_verbose_and_template_functions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "# comment\nexport WAND_T_SECRET_IN_FILE='from file'\n").unwrap();
        let file = dir.path().join("io_config.yaml");
        std::fs::write(
            &file,
            "version: 0.1.1\n\
             default:\n  POSTGRES_HOST: \"{{ env_var('WAND_T_SURELY_UNSET', 'localhost') }}\"\n  POSTGRES_PORT: 5433\n  POSTGRES_USER: \"{{ env_var('WAND_T_SURELY_UNSET') }}\"\n  \
             POSTGRES_DBNAME: \"{{ json_value('{\\\"a\\\": {\\\"b\\\": \\\"db\\\"}}', 'a.b') }}\"\n  POSTGRES_PASSWORD: \"{{ mage_secret_var('WAND_T_SECRET_IN_FILE') }}\"\n\
             legacy:\n  PostgreSQL:\n    database: d\n    host: h\n    password: p\n    port: 1\n    schema: s\n    user: u\n    connect_timeout: 3\n\
             broken:\n  POSTGRES_PASSWORD: \"{{ mage_secret_var('wand_t_missing_secret') }}\"\n",
        )
        .unwrap();
        let profile = load_profile(&file, "default", dir.path()).unwrap();
        assert_eq!(profile.get("POSTGRES_HOST"), Some("localhost"));
        assert_eq!(profile.get("POSTGRES_PORT"), Some("5433"));
        assert_eq!(profile.get("POSTGRES_USER"), None, "a missing variable renders as None");
        assert_eq!(profile.get("POSTGRES_DBNAME"), Some("db"));
        assert_eq!(profile.get("POSTGRES_PASSWORD"), Some("from file"));
        let legacy = load_profile(&file, "legacy", dir.path()).unwrap();
        let keys: Vec<(&str, &str)> = legacy.values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            keys,
            [
                ("POSTGRES_CONNECT_TIMEOUT", "3"),
                ("POSTGRES_DBNAME", "d"),
                ("POSTGRES_HOST", "h"),
                ("POSTGRES_PASSWORD", "p"),
                ("POSTGRES_PORT", "1"),
                ("POSTGRES_SCHEMA", "s"),
                ("POSTGRES_USER", "u")
            ]
        );
        let err = load_profile(&file, "broken", dir.path()).unwrap_err().to_string();
        assert!(err.contains("profile `broken`") && err.contains("mage_secret_var('wand_t_missing_secret')"), "{err}");
        let err = load_profile(&file, "nope", dir.path()).unwrap_err().to_string();
        assert!(err.contains("no profile `nope`") && err.contains("default") && err.contains("legacy"), "{err}");
        assert_eq!(format!("{:?} {}", Secret::new("hunter2"), Secret::new("hunter2")), "*** ***");
    }
}
