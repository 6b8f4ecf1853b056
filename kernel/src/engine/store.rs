//! Block outputs in Mage's variables dir (spec 7.2) and Wand's provenance sidecars. IO.
//!
//! `<vars>/pipelines/<pipeline>/.variables/<clean uuid>/output_<i>/{data.parquet,type.json}` for
//! frames, `output_<i>/data.json` for JSON values (no `type.json`, as Mage), and
//! `.variables/<clean uuid>/wand.json` with the [`Provenance`] of those outputs.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use polars::prelude::{
    DataFrame, IpcStreamReader, IpcStreamWriter, ParquetCompression, ParquetReader, ParquetWriter, SerReader, SerWriter,
};

use polars_parquet::write::ZstdLevel;

use super::freshness::{DataVersion, Provenance};

/// A value a block produced.
#[derive(Clone, Debug)]
pub enum Value {
    Frame(DataFrame),
    Json(serde_json::Value),
    /// A Python object that only lives in the worker.
    Opaque {
        repr: String,
    },
}

#[derive(Clone, Debug)]
pub struct Output {
    pub value: Value,
    /// Mage's variable type for `type.json` (`None`: plain JSON value, no `type.json`).
    pub mage_type: Option<String>,
}

impl Output {
    pub fn shape(&self) -> Option<(u64, u64)> {
        match &self.value {
            Value::Frame(df) => Some((df.height() as u64, df.width() as u64)),
            _ => None,
        }
    }
}

/// Mage's `clean_name` without `/` (spec 3.2, 7.2): non-word characters become `_`, a leading
/// digit gets a letter prefix, lower case.
pub fn clean_name(uuid: &str) -> String {
    let trimmed: String = uuid.chars().filter(|ch| !matches!(ch, '\u{feff}' | '"' | '$' | '\n' | '\r' | '\t')).collect();
    let mut name: String = trimmed.chars().map(|ch| if ch.is_alphanumeric() || ch == '_' { ch } else { '_' }).collect();
    if name.starts_with(|ch: char| ch.is_ascii_digit()) {
        name = format!("letter_{name}");
    }
    name.to_lowercase()
}

pub fn block_dir(variables_dir: &Path, pipeline_uuid: &str, block_uuid: &str) -> PathBuf {
    variables_dir.join("pipelines").join(pipeline_uuid).join(".variables").join(clean_name(block_uuid))
}

/// Parquet as outputs are stored: zstd level 1 (about the size of the default level, 25% less
/// CPU) on one thread, so storing an output in the background leaves the other cores to the
/// blocks that run meanwhile.
pub fn frame_to_parquet(df: &DataFrame) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    let level = ZstdLevel::try_new(1).context("zstd level")?;
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(Some(level)))
        .set_parallel(false)
        .finish(&mut df)
        .context("cannot write parquet")?;
    Ok(buf)
}

pub fn frame_to_ipc_stream(df: &DataFrame) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    IpcStreamWriter::new(&mut buf).finish(&mut df).context("cannot write an Arrow stream")?;
    Ok(buf)
}

pub fn frame_from_ipc_stream(bytes: &[u8]) -> anyhow::Result<DataFrame> {
    IpcStreamReader::new(Cursor::new(bytes)).finish().context("cannot read the Arrow stream of an output")
}

/// An output on its way into the variables dir.
pub enum Pending {
    /// A value in memory, encoded here.
    Value(Output),
    /// A frame the Python worker already wrote as Parquet (into [`staging_dir`]): moved into
    /// place, never loaded.
    File { path: PathBuf, mage_type: Option<String>, rows: u64, columns: u64 },
}

impl Pending {
    pub fn shape(&self) -> Option<(u64, u64)> {
        match self {
            Pending::Value(output) => output.shape(),
            Pending::File { rows, columns, .. } => Some((*rows, *columns)),
        }
    }
}

/// Where the worker writes the frames of a block of run `run_id` before they are moved into
/// the variables dir (beside the run records, out of Mage's `.variables`).
pub fn staging_dir(variables_dir: &Path, pipeline_uuid: &str, run_id: &str, block_uuid: &str) -> PathBuf {
    staging_root(variables_dir, pipeline_uuid).join(run_id).join(clean_name(block_uuid))
}

fn staging_root(variables_dir: &Path, pipeline_uuid: &str) -> PathBuf {
    variables_dir.join("pipelines").join(pipeline_uuid).join(".wand").join("staging")
}

/// Deletes the staging folder of run `run_id`, and those left by runs that were killed (not
/// touched for more than a day).
pub fn clean_staging(variables_dir: &Path, pipeline_uuid: &str, run_id: &str) {
    let root = staging_root(variables_dir, pipeline_uuid);
    let _ = std::fs::remove_dir_all(root.join(run_id));
    let Ok(entries) = std::fs::read_dir(&root) else { return };
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let old = entry.metadata().and_then(|it| it.modified()).ok().and_then(|it| it.elapsed().ok()).is_some_and(|age| age > day);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes a block's outputs (moving those the worker already wrote), deleting the previous ones
/// first. Returns their data version (`freshness::DataVersion`).
pub fn write_outputs(dir: &Path, outputs: &[Pending]) -> anyhow::Result<String> {
    remove_outputs(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut version = DataVersion::new();
    for (idx, output) in outputs.iter().enumerate() {
        let out_dir = dir.join(format!("output_{idx}"));
        std::fs::create_dir_all(&out_dir)?;
        let mage_type = match output {
            Pending::File { path, mage_type, .. } => {
                let dest = out_dir.join("data.parquet");
                std::fs::rename(path, &dest).with_context(|| format!("cannot move {} to {}", path.display(), dest.display()))?;
                add_file(&mut version, &dest).with_context(|| format!("cannot read {}", dest.display()))?;
                mage_type
            }
            Pending::Value(Output { value: Value::Frame(df), mage_type }) => {
                let bytes = frame_to_parquet(df)?;
                std::fs::write(out_dir.join("data.parquet"), &bytes)?;
                version.add_bytes(&bytes);
                mage_type
            }
            Pending::Value(Output { value: Value::Json(value), mage_type }) => {
                let bytes = serde_json::to_vec(value)?;
                std::fs::write(out_dir.join("data.json"), &bytes)?;
                version.add_bytes(&bytes);
                mage_type
            }
            Pending::Value(Output { value: Value::Opaque { repr }, mage_type }) => {
                version.add_bytes(repr.as_bytes());
                mage_type
            }
        };
        if let Some(mage_type) = mage_type {
            std::fs::write(out_dir.join("type.json"), serde_json::json!({ "type": mage_type }).to_string())?;
        }
    }
    Ok(version.finish())
}

/// A stored file's bytes into `version`, hashed from a memory map on every core: reading a
/// 32 MB Parquet file into memory and hashing it on one core took about 25 ms at the end of a
/// run.
fn add_file(version: &mut DataVersion, path: &Path) -> std::io::Result<()> {
    let len = std::fs::metadata(path)?.len();
    version.add_with(len, |hasher| hasher.update_mmap_rayon(path).map(|_| ()))
}

/// Deletes `output_*` folders and the provenance of a block.
pub fn remove_outputs(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("output_") {
            std::fs::remove_dir_all(entry.path()).with_context(|| format!("cannot delete {}", entry.path().display()))?;
        }
    }
    let _ = std::fs::remove_file(dir.join("wand.json"));
    Ok(())
}

/// Reads `n` outputs back.
pub fn read_outputs(dir: &Path, n: usize) -> anyhow::Result<Vec<Output>> {
    let mut outputs = Vec::new();
    for idx in 0..n {
        let out_dir = dir.join(format!("output_{idx}"));
        let mage_type = std::fs::read_to_string(out_dir.join("type.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|value| value.get("type")?.as_str().map(str::to_owned));
        let value = if out_dir.join("data.parquet").is_file() {
            let file = std::fs::File::open(out_dir.join("data.parquet"))?;
            Value::Frame(ParquetReader::new(file).finish().with_context(|| format!("cannot read {}", out_dir.display()))?)
        } else if out_dir.join("data.json").is_file() {
            Value::Json(serde_json::from_slice(&std::fs::read(out_dir.join("data.json"))?)?)
        } else {
            anyhow::bail!("{} holds no data Wand can read (a Python object kept only in the worker)", out_dir.display());
        };
        outputs.push(Output { value, mage_type });
    }
    Ok(outputs)
}

pub fn read_provenance(dir: &Path) -> Option<Provenance> {
    let text = std::fs::read_to_string(dir.join("wand.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The provenance of a block whose stored outputs are all in place (what freshness is decided
/// on): `None` when there is none, or an output it names is missing.
pub fn stored_provenance(dir: &Path) -> Option<Provenance> {
    read_provenance(dir).filter(|it| outputs_exist(dir, it))
}

/// Whether the outputs named by a provenance are on disk and readable without the worker.
fn outputs_exist(dir: &Path, provenance: &Provenance) -> bool {
    (0..provenance.n_outputs).all(|idx| {
        let out_dir = dir.join(format!("output_{idx}"));
        out_dir.join("data.parquet").is_file() || out_dir.join("data.json").is_file()
    })
}

pub fn write_provenance(dir: &Path, provenance: &Provenance) -> anyhow::Result<()> {
    write_atomic(&dir.join("wand.json"), serde_json::to_string_pretty(provenance)?.as_bytes())
}

/// Writes a file through a temporary file and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("no parent folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;

    #[test]
    fn clean_names_like_mage() {
        assert_eq!(clean_name("retrain/sklearn"), "retrain_sklearn");
        assert_eq!(clean_name("Load Data"), "load_data");
        assert_eq!(clean_name("1st"), "letter_1st");
    }

    #[test]
    fn outputs_round_trip_and_old_ones_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        let df = df!("a" => [1i64, 2, 3], "b" => ["x", "y", "z"]).unwrap();
        let outputs = vec![
            Pending::Value(Output { value: Value::Frame(df.clone()), mage_type: Some("dataframe".into()) }),
            Pending::Value(Output { value: Value::Json(serde_json::json!({"k": [1, 2]})), mage_type: None }),
        ];
        write_outputs(&dir, &outputs).unwrap();
        assert!(dir.join("output_1/data.json").is_file());
        assert_eq!(std::fs::read_to_string(dir.join("output_0/type.json")).unwrap(), r#"{"type":"dataframe"}"#);
        let back = read_outputs(&dir, 2).unwrap();
        match &back[0].value {
            Value::Frame(read) => assert!(read.equals(&df)),
            other => panic!("{other:?}"),
        }
        write_outputs(&dir, &outputs[..1]).unwrap();
        assert!(!dir.join("output_1").exists());
        // A file the worker wrote is moved into place, and its bytes are what was stored.
        let staged = staging_dir(tmp.path(), "p", "run", "b").join("output_0/data.parquet");
        std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
        std::fs::write(&staged, frame_to_parquet(&df).unwrap()).unwrap();
        let file = Pending::File { path: staged.clone(), mage_type: Some("dataframe".into()), rows: 3, columns: 2 };
        assert_eq!(file.shape(), Some((3, 2)));
        let version = write_outputs(&dir, &[file]).unwrap();
        assert!(!staged.exists());
        let mut expected = DataVersion::new();
        expected.add_bytes(&std::fs::read(dir.join("output_0/data.parquet")).unwrap());
        assert_eq!(version, expected.finish());
        match &read_outputs(&dir, 1).unwrap()[0].value {
            Value::Frame(read) => assert!(read.equals(&df)),
            other => panic!("{other:?}"),
        }
        let ipc = frame_to_ipc_stream(&df).unwrap();
        assert!(frame_from_ipc_stream(&ipc).unwrap().equals(&df));
    }

    #[test]
    fn a_file_and_its_bytes_give_the_same_data_version() {
        let tmp = tempfile::tempdir().unwrap();
        // Large enough for the memory map and the threads (blake3 maps files above 16 KiB).
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(tmp.path().join("big"), &big).unwrap();
        let mut from_file = DataVersion::new();
        add_file(&mut from_file, &tmp.path().join("big")).unwrap();
        from_file.add_bytes(b"tail");
        let mut from_bytes = DataVersion::new();
        from_bytes.add_bytes(&big);
        from_bytes.add_bytes(b"tail");
        assert_eq!(from_file.finish(), from_bytes.finish());
        assert!(add_file(&mut from_file, &tmp.path().join("missing")).is_err());
    }
}
