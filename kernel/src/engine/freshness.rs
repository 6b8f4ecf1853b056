//! Fingerprints and freshness (salsa's and Dagster's vocabulary, style.md 6.3). Pure.
//!
//! * `code_version` = hash of what the block is: type, language, configuration, file text and
//!   the global variables it sees;
//! * `fingerprint` = hash of the code version and the data versions of its upstream outputs in
//!   `upstream_blocks` order (Mage passes them positionally, so no sorting);
//! * `data_version` = hash of the stored output. A re-run that leaves it unchanged leaves the
//!   fingerprints of the descendants unchanged: early cutoff.

use serde::{Deserialize, Serialize};

/// Stored beside a block's outputs (`.variables/<block>/wand.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub version: u32,
    pub code_version: String,
    /// `(upstream uuid, its data version)` in `upstream_blocks` order.
    pub input_versions: Vec<(String, String)>,
    pub fingerprint: String,
    pub data_version: String,
    pub run_id: String,
    pub finished_at: String,
    /// Number of outputs written (`output_0..`).
    pub n_outputs: usize,
    /// Shape of the first output when it is a frame.
    #[serde(default)]
    pub rows: Option<u64>,
    #[serde(default)]
    pub columns: Option<u64>,
}

pub const PROVENANCE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freshness {
    Missing,
    Stale(Vec<StaleCause>),
    Fresh,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StaleCause {
    CodeChanged,
    UpstreamChanged(String),
    EdgesChanged,
    UpstreamMissing(String),
}

impl std::fmt::Display for StaleCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaleCause::CodeChanged => f.write_str("code or configuration changed"),
            StaleCause::UpstreamChanged(uuid) => write!(f, "output of upstream block `{uuid}` changed"),
            StaleCause::EdgesChanged => f.write_str("upstream blocks changed"),
            StaleCause::UpstreamMissing(uuid) => write!(f, "upstream block `{uuid}` has no stored output"),
        }
    }
}

fn hash_parts(domain: &str, parts: &[&[u8]]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain.as_bytes());
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_hex()[..32].to_owned()
}

/// What a block is. `configuration` and `globals` are JSON (serde_json keeps keys sorted).
pub fn code_version(
    block_type: &str,
    language: &str,
    configuration: &serde_json::Value,
    text: &str,
    globals: &serde_json::Value,
) -> String {
    let configuration = configuration.to_string();
    let globals = globals.to_string();
    hash_parts("wand-code-v1", &[block_type.as_bytes(), language.as_bytes(), configuration.as_bytes(), text.as_bytes(), globals.as_bytes()])
}

pub fn fingerprint(code_version: &str, inputs: &[(String, String)]) -> String {
    let mut parts: Vec<&[u8]> = vec![code_version.as_bytes()];
    for (uuid, version) in inputs {
        parts.push(uuid.as_bytes());
        parts.push(version.as_bytes());
    }
    hash_parts("wand-fingerprint-v1", &parts)
}

/// Content hash of a block's outputs: the bytes of each stored output, in order, fed one
/// output at a time, in memory or from the file that holds them (`store` reads the files).
/// Either way the value is `hash_parts("wand-data-v1", outputs)`.
pub struct DataVersion(blake3::Hasher);

impl DataVersion {
    pub fn new() -> DataVersion {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"wand-data-v1");
        DataVersion(hasher)
    }

    pub fn add_bytes(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// An output of `len` bytes that `feed` gives the hasher (exactly those bytes).
    pub fn add_with<E>(&mut self, len: u64, feed: impl FnOnce(&mut blake3::Hasher) -> Result<(), E>) -> Result<(), E> {
        self.0.update(&len.to_le_bytes());
        feed(&mut self.0)
    }

    pub fn finish(&self) -> String {
        self.0.finalize().to_hex()[..32].to_owned()
    }
}

impl Default for DataVersion {
    fn default() -> Self {
        DataVersion::new()
    }
}

/// Compares what was stored with what the block is now. `inputs` holds the current data
/// version of each upstream block (`None` when that block has no stored output).
pub fn freshness(stored: Option<&Provenance>, code_version: &str, inputs: &[(String, Option<String>)]) -> Freshness {
    let Some(stored) = stored else { return Freshness::Missing };
    let mut causes = Vec::new();
    if stored.code_version != code_version {
        causes.push(StaleCause::CodeChanged);
    }
    let same_edges = stored.input_versions.len() == inputs.len() && stored.input_versions.iter().zip(inputs).all(|((a, _), (b, _))| a == b);
    if !same_edges {
        causes.push(StaleCause::EdgesChanged);
    }
    for (uuid, version) in inputs {
        match version {
            None => causes.push(StaleCause::UpstreamMissing(uuid.clone())),
            Some(version) => {
                let old = stored.input_versions.iter().find(|(old, _)| old == uuid).map(|(_, v)| v);
                if same_edges && old != Some(version) {
                    causes.push(StaleCause::UpstreamChanged(uuid.clone()));
                }
            }
        }
    }
    if causes.is_empty() { Freshness::Fresh } else { Freshness::Stale(causes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prov(code: &str, inputs: &[(&str, &str)]) -> Provenance {
        let input_versions: Vec<(String, String)> = inputs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Provenance {
            version: PROVENANCE_VERSION,
            code_version: code.into(),
            fingerprint: fingerprint(code, &input_versions),
            input_versions,
            data_version: "d".into(),
            run_id: "r".into(),
            finished_at: "t".into(),
            n_outputs: 1,
            rows: None,
            columns: None,
        }
    }

    #[test]
    fn hashes_are_stable() {
        // A stable hash: the same value on every machine and release.
        let version = code_version("transformer", "python", &serde_json::json!({}), "x = 1\n", &serde_json::json!({"a": 1}));
        assert_eq!(version.len(), 32);
        assert_eq!(version, code_version("transformer", "python", &serde_json::json!({}), "x = 1\n", &serde_json::json!({"a": 1})));
        assert_ne!(version, code_version("transformer", "python", &serde_json::json!({}), "x = 2\n", &serde_json::json!({"a": 1})));
        assert_ne!(fingerprint("c", &[("a".into(), "1".into())]), fingerprint("c", &[("a".into(), "2".into())]));
    }

    #[test]
    fn freshness_names_causes() {
        let stored = prov("c1", &[("load", "v1")]);
        assert_eq!(freshness(None, "c1", &[]), Freshness::Missing);
        assert_eq!(freshness(Some(&stored), "c1", &[("load".into(), Some("v1".into()))]), Freshness::Fresh);
        assert_eq!(freshness(Some(&stored), "c2", &[("load".into(), Some("v1".into()))]), Freshness::Stale(vec![StaleCause::CodeChanged]));
        assert_eq!(
            freshness(Some(&stored), "c1", &[("load".into(), Some("v2".into()))]),
            Freshness::Stale(vec![StaleCause::UpstreamChanged("load".into())])
        );
        assert_eq!(
            freshness(Some(&stored), "c1", &[("other".into(), Some("v1".into()))]),
            Freshness::Stale(vec![StaleCause::EdgesChanged])
        );
        assert_eq!(
            freshness(Some(&stored), "c1", &[("load".into(), None)]),
            Freshness::Stale(vec![StaleCause::UpstreamMissing("load".into())])
        );
    }

    #[test]
    fn a_data_version_is_the_hash_of_its_outputs_in_order() {
        let (big, small) = (vec![7u8; 100_000], b"{\"k\": 1}".to_vec());
        let mut fed = DataVersion::new();
        fed.add_with(big.len() as u64, |hasher| {
            hasher.update(&big);
            Ok::<(), ()>(())
        })
        .unwrap();
        fed.add_bytes(&small);
        // Stored provenance keeps its meaning: the value is the one hash_parts gives.
        assert_eq!(fed.finish(), hash_parts("wand-data-v1", &[&big, &small]));
        let mut other = DataVersion::new();
        other.add_bytes(&small);
        other.add_bytes(&big);
        assert_ne!(other.finish(), fed.finish(), "the order of the outputs counts");
    }
}
