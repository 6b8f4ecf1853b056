//! PostgreSQL tests against a real, throwaway server (`tests/pg/start.sh`): one server per test
//! binary, one database per test; a watchdog stops the server when this process ends, also
//! after a failure. Python: `WAND_PYTHON`, else `<workspace>/.venv/bin/python`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pipeline::runrecord::{BlockStatus, RunRecord};
use pipeline::vfs::DiskVfs;
use polars::prelude::*;
use wand_kernel::engine::io_config::Secret;
use wand_kernel::engine::postgres::{self, PgConfig, WritePolicy};
use wand_kernel::engine::{self, EngineEvent, RunOptions};

mod common;
use common::{B, copy_dir, pipeline_yaml, python};

/// The `wand` role's password: it must never show up in any output.
const PASSWORD: &str = "Pw-wand-7f3c9e1d-secret";

struct Pg {
    port: u16,
    socket: String,
}

fn pg() -> &'static Pg {
    static PG: OnceLock<Pg> = OnceLock::new();
    PG.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pg/start.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args(["--watch", &std::process::id().to_string(), "--password", PASSWORD])
            .output()
            .expect("cannot run tests/pg/start.sh");
        assert!(out.status.success(), "tests/pg/start.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let get = |key: &str| {
            text.lines().find_map(|line| line.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key} in {text}")).to_owned()
        };
        Pg { port: get("PGPORT").parse().unwrap(), socket: get("PGSOCKET") }
    })
}

impl Pg {
    /// Runs SQL as the `postgres` superuser over the socket; returns unaligned output.
    fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-h", &self.socket, "-p", &self.port.to_string(), "-U", "postgres", "-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A fresh database for one test.
    fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("DROP DATABASE IF EXISTS {name}"));
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER wand"));
        name.to_owned()
    }

    fn config(&self, db: &str) -> PgConfig {
        PgConfig {
            profile: "test".into(),
            host: "127.0.0.1".into(),
            port: self.port,
            dbname: db.into(),
            user: "wand".into(),
            password: Secret::new(PASSWORD),
            schema: None,
            connect_timeout: Some(Duration::from_secs(10)),
        }
    }

    fn count(&self, db: &str, table: &str) -> i64 {
        self.psql(db, &format!("SELECT count(*) FROM {table}")).parse().unwrap()
    }
}

/// io_config.yaml: `default` reads the password through mage_secret_var and `.env`; `wrong`
/// has a wrong password; `dead` points at a port nothing listens on.
fn io_config(db: &str) -> String {
    let port = pg().port;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!(
        "version: 0.1.1\n\
         default:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: {port}\n  POSTGRES_DBNAME: {db}\n  POSTGRES_USER: wand\n  \
         POSTGRES_PASSWORD: \"{{{{ mage_secret_var('wand_pg_password') }}}}\"\n  POSTGRES_SCHEMA: public\n  POSTGRES_CONNECT_TIMEOUT: 10\n\
         legacy:\n  PostgreSQL:\n    host: 127.0.0.1\n    port: {port}\n    database: {db}\n    user: wand\n    password: \"{{{{ mage_secret_var('wand_pg_password') }}}}\"\n    schema: legacy_schema\n\
         wrong:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: {port}\n  POSTGRES_DBNAME: {db}\n  POSTGRES_USER: wand\n  POSTGRES_PASSWORD: not-{PASSWORD}\n\
         dead:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: {dead}\n  POSTGRES_DBNAME: {db}\n  POSTGRES_USER: wand\n  POSTGRES_PASSWORD: \"{{{{ mage_secret_var('wand_pg_password') }}}}\"\n  POSTGRES_CONNECT_TIMEOUT: 3\n"
    )
}

struct TestProject {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl TestProject {
    fn new(db: &str, blocks: &[B<'_>]) -> TestProject {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        std::fs::create_dir_all(root.join("pipelines/p")).unwrap();
        std::fs::write(root.join("metadata.yaml"), "variables_dir: .mage_data\n").unwrap();
        std::fs::write(root.join("io_config.yaml"), io_config(db)).unwrap();
        std::fs::write(root.join(".env"), format!("wand_pg_password={PASSWORD}\n")).unwrap();
        std::fs::write(root.join("pipelines/p/metadata.yaml"), pipeline_yaml(blocks, "")).unwrap();
        TestProject { _dir: dir, root }
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn run(&self) -> (RunRecord, Vec<EngineEvent>) {
        let project = pipeline::load::load_project(&DiskVfs, &self.root);
        let mut events = Vec::new();
        let options = RunOptions { python: Some(python()), ..RunOptions::default() };
        let record = engine::run(&project, "p", &options, &mut |event| events.push(event.clone())).unwrap();
        (record, events)
    }

    fn json_output(&self, block: &str) -> serde_json::Value {
        let path = self.root.join(".mage_data/pipelines/p/.variables").join(block).join("output_0/data.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every file the run left in the variables dir, as text (lossy), to look for secrets.
    fn all_written_text(&self) -> String {
        fn walk(dir: &Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()));
                }
            }
        }
        let mut out = String::new();
        walk(&self.root.join(".mage_data"), &mut out);
        out
    }
}

fn block<'a>(record: &'a RunRecord, uuid: &str) -> &'a pipeline::runrecord::BlockRun {
    record.blocks.iter().find(|block| block.uuid == uuid).unwrap_or_else(|| panic!("no block {uuid} in {record:#?}"))
}

fn assert_succeeded(record: &RunRecord, events: &[EngineEvent]) {
    for run in &record.blocks {
        assert_eq!(run.status, BlockStatus::Succeeded, "{}: {:#?}\n{events:#?}", run.uuid, run.error);
    }
}

fn stdout_of(events: &[EngineEvent], uuid: &str) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            EngineEvent::Stream { block, text, .. } if block == uuid => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "the password appears in {what}:\n{text}");
}

const LOADER: &str =
    "import pandas as pd\n\n@data_loader\ndef load(*args, **kwargs):\n    return pd.DataFrame({'g': ['a', 'a', 'b'], 'x': [1, 2, 3]})\n";

#[test]
fn python_exporter_append_replace_fail_load_and_execute() {
    let db = pg().database("policies");
    let p = TestProject::new(&db, &[B("load", "data_loader", "python", &[], ""), B("export", "data_exporter", "python", &["load"], "")]);
    p.write("data_loaders/load.py", LOADER);
    p.write(
        "data_exporters/export.py",
        r#"from os import path
from mage_ai.io.base import ExportWritePolicy
from mage_ai.io.config import ConfigFileLoader
from mage_ai.io.postgres import Postgres
from mage_ai.settings.repo import get_repo_path


@data_exporter
def export(df, **kwargs):
    config = ConfigFileLoader(path.join(get_repo_path(), 'io_config.yaml'), 'default')
    with Postgres.with_config(config) as loader:
        loader.export(df, 'sales', 'facts', index=False, if_exists='replace')
        loader.export(df, 'sales', 'facts', index=False, if_exists='append')
        loader.export(df, 'sales', 'facts', if_exists=ExportWritePolicy.APPEND)
        try:
            loader.export(df, 'sales', 'facts', if_exists='fail')
        except Exception as e:
            print('fail refused:', e)
        loader.execute('CREATE TABLE sales.log (n int); INSERT INTO sales.log VALUES (42)')
        back = loader.load('SELECT g, x FROM sales.facts ORDER BY x, g')
        log = loader.load('SELECT n FROM sales.log')
    # Legacy verbose profile: its schema is the default one.
    Postgres.with_config(ConfigFileLoader(path.join(get_repo_path(), 'io_config.yaml'), 'legacy')).export(df, None, 'from_legacy')
    return {'rows': len(back), 'x': back['x'].tolist(), 'log': int(log['n'][0]), 'type': type(back).__name__}
"#,
    );
    let (record, events) = p.run();
    assert_succeeded(&record, &events);
    let out = stdout_of(&events, "export");
    assert!(out.contains("fail refused:") && out.contains("\"sales\".\"facts\" already exists"), "{out}");
    assert_eq!(p.json_output("export"), serde_json::json!({"rows": 9, "x": [1, 1, 1, 2, 2, 2, 3, 3, 3], "log": 42, "type": "DataFrame"}));
    assert_eq!(pg().count(&db, "sales.facts"), 9);
    assert_eq!(pg().count(&db, "legacy_schema.from_legacy"), 3);

    // A second run: replace starts again from 3 rows, then two appends.
    pg().psql(&db, "DROP TABLE sales.log");
    let (record, events) = p.run();
    assert_succeeded(&record, &events);
    assert_eq!(pg().count(&db, "sales.facts"), 9);
    assert_eq!(pg().psql(&db, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%wand_new%'"), "0", "no staging table left");
    assert_no_secret("the events", &format!("{events:?}"));
    assert_no_secret("the variables dir", &p.all_written_text());
}

#[test]
fn append_casts_into_an_existing_table_with_other_types() {
    let db = pg().database("append_cast");
    pg().psql(&db, "CREATE TABLE public.t (x integer, g varchar(10), extra text DEFAULT 'd')");
    let mut conn = postgres::connect(&pg().config(&db)).unwrap();
    let df = df!("g" => ["a", "b"], "x" => [1i64, 2]).unwrap();
    assert_eq!(conn.export(&df, "public", "t", WritePolicy::Append).unwrap(), 2);
    assert_eq!(pg().psql(&db, "SELECT string_agg(x || g || extra, ',' ORDER BY x) FROM t"), "1ad,2bd");
    let err = conn.export(&df!("nope" => [1i64]).unwrap(), "public", "t", WritePolicy::Append).unwrap_err().to_string();
    assert!(err.contains("has no column \"nope\""), "{err}");
    assert_eq!(pg().count(&db, "t"), 2);
}

#[test]
fn every_mapped_type_round_trips_with_nulls() {
    let db = pg().database("types");
    let mut conn = postgres::connect(&pg().config(&db)).unwrap();
    let columns = vec![
        Column::new("b".into(), [Some(true), None, Some(false)]),
        Column::new("i8".into(), [Some(-8i8), None, Some(i8::MAX)]),
        Column::new("i16".into(), [Some(-16i16), None, Some(i16::MIN)]),
        Column::new("i32".into(), [Some(32i32), None, Some(i32::MAX)]),
        Column::new("i64".into(), [Some(i64::MIN), None, Some(64)]),
        Column::new("u32".into(), [Some(u32::MAX), None, Some(0)]),
        Column::new("u64".into(), [Some(u64::MAX), None, Some(7)]),
        Column::new("f32".into(), [Some(1.5f32), None, Some(-0.25)]),
        Column::new("f64".into(), [Some(f64::MAX), None, Some(-1e-300)]),
        Int128Chunked::from_iter_options("dec".into(), [Some(12345i128), None, Some(-99_999_999_999)].into_iter())
            .into_decimal(20, 3)
            .unwrap()
            .into_series()
            .into_column(),
        Column::new("s".into(), [Some("héllo \"quoted\" 'x'"), None, Some("")]),
        Column::new("bin".into(), [Some(b"\x00\x01".as_slice()), None, Some(b"".as_slice())]),
        Int32Chunked::from_iter_options("d".into(), [Some(19_000), None, Some(-5)].into_iter()).into_date().into_series().into_column(),
        Int64Chunked::from_iter_options("ts".into(), [Some(1_700_000_000_123_456i64), None, Some(-1)].into_iter())
            .into_datetime(TimeUnit::Microseconds, None)
            .into_series()
            .into_column(),
        Int64Chunked::from_iter_options("tstz".into(), [Some(1_700_000_000_000_001i64), None, Some(0)].into_iter())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_series()
            .into_column(),
        Int64Chunked::from_iter_options("t".into(), [Some(3_600_000_000_000i64 + 1000), None, Some(0)].into_iter())
            .into_time()
            .into_series()
            .into_column(),
        Int64Chunked::from_iter_options("dur".into(), [Some(90_000_000i64), None, Some(-1)].into_iter())
            .into_duration(TimeUnit::Microseconds)
            .into_series()
            .into_column(),
    ];
    let df = DataFrame::new(3, columns).unwrap();
    assert_eq!(conn.export(&df, "rt", "types", WritePolicy::Replace).unwrap(), 3);
    let types = pg().psql(&db, "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'types'");
    assert_eq!(
        types,
        "b:boolean,i8:smallint,i16:smallint,i32:integer,i64:bigint,u32:bigint,u64:numeric,f32:real,f64:double precision,dec:numeric,\
         s:text,bin:bytea,d:date,ts:timestamp without time zone,tstz:timestamp with time zone,t:time without time zone,dur:interval"
    );
    assert_eq!(
        pg().psql(&db, "SELECT dec::text || ' ' || u64::text || ' ' || d::text || ' ' || ts::text FROM rt.types WHERE i8 = -8"),
        "12.345 18446744073709551615 2022-01-08 2023-11-14 22:13:20.123456"
    );
    let back = conn.query_frame("SELECT * FROM rt.types").unwrap();
    // Widened on the way back: Int8 -> Int16, UInt32 -> Int64, UInt64 -> Decimal(20, 0).
    let expected = df
        .lazy()
        .with_columns([col("i8").cast(DataType::Int16), col("u32").cast(DataType::Int64), col("u64").cast(DataType::Decimal(20, 0))])
        .collect()
        .unwrap();
    assert_eq!(back.schema(), expected.schema());
    assert!(back.equals_missing(&expected), "{back}\n{expected}");

    // A Null column is text; unmappable columns are named with their dtype.
    let nulls = DataFrame::new(2, vec![Column::full_null("n".into(), 2, &DataType::Null)]).unwrap();
    conn.export(&nulls, "rt", "nulls", WritePolicy::Replace).unwrap();
    assert_eq!(pg().psql(&db, "SELECT count(*) FILTER (WHERE n IS NULL) || ' ' || pg_typeof(max(n))::text FROM rt.nulls"), "2 text");
    let list = Series::new("tags".into(), [Series::new("".into(), [1i64])]);
    let err =
        conn.export(&DataFrame::new(1, vec![list.into_column()]).unwrap(), "rt", "bad", WritePolicy::Replace).unwrap_err().to_string();
    assert!(err.contains("`tags` (list[i64])"), "{err}");

    // Other PostgreSQL types come back as text.
    let other = conn.query_frame("SELECT '{\"a\": 1}'::jsonb AS j, 7::oid AS o, '1 month'::interval AS m").unwrap();
    assert_eq!(other.column("j").unwrap().str().unwrap().get(0), Some("{\"a\": 1}"));
    assert_eq!(other.column("o").unwrap().str().unwrap().get(0), Some("7"));
}

#[test]
fn sql_blocks_run_in_postgres_with_uploaded_upstream_frames() {
    let db = pg().database("pushdown");
    let p = TestProject::new(
        &db,
        &[
            B("load", "data_loader", "python", &[], ""),
            B(
                "agg",
                "transformer",
                "sql",
                &["load"],
                "configuration:\n  data_provider: postgres\n  data_provider_profile: default\n  data_provider_schema: analytics",
            ),
            B(
                "top",
                "transformer",
                "sql",
                &["agg"],
                "configuration:\n  data_provider: postgres\n  data_provider_profile: default\n  data_provider_schema: analytics\n  data_provider_table: top_groups\n  export_write_policy: replace\n  limit: 1",
            ),
            B(
                "raw",
                "custom",
                "sql",
                &["load"],
                "configuration:\n  data_provider: postgres\n  data_provider_profile: default\n  use_raw_sql: true\n  upstream_block_configuration:\n    load:\n      table_name: my_load",
            ),
            B(
                "preview",
                "custom",
                "sql",
                &[],
                "configuration:\n  data_provider: postgres\n  data_provider_profile: default\n  use_raw_sql: true",
            ),
            B("check", "data_exporter", "python", &["agg", "top", "raw", "preview"], ""),
        ],
    );
    p.write("data_loaders/load.py", LOADER);
    p.write("transformers/agg.sql", "-- totals per group\nSELECT g, SUM(x) AS total FROM {{df_1}} GROUP BY g ORDER BY g;\n");
    p.write("transformers/top.sql", "SELECT * FROM {{ df_1 }} ORDER BY total DESC\n");
    p.write("custom/raw.sql", "CREATE TABLE public.raw_copy AS SELECT * FROM {{ df_1 }};\nSELECT count(*) AS n FROM public.raw_copy;\n");
    p.write(
        "custom/preview.sql",
        "DROP TABLE IF EXISTS public.pv; CREATE TABLE public.pv (a int); INSERT INTO public.pv VALUES (7), (8)\n",
    );
    p.write(
        "data_exporters/check.py",
        "@data_exporter\ndef check(agg, top, raw, preview):\n    \
         assert str(agg['total'].dtype) == 'object' and type(agg['total'][0]).__name__ == 'Decimal', agg.dtypes\n    \
         ints = lambda df: {'g': df['g'].tolist(), 'total': [int(v) for v in df['total']]}\n    \
         return {'agg': ints(agg), 'top': ints(top), 'raw': int(raw['n'][0]), 'preview': preview['a'].tolist()}\n",
    );
    let (record, events) = p.run();
    assert_succeeded(&record, &events);
    assert_eq!(
        p.json_output("check"),
        serde_json::json!({"agg": {"g": ["a", "b"], "total": [3, 3]}, "top": {"g": ["a"], "total": [3]}, "raw": 3, "preview": [7, 8]})
    );
    assert!(stdout_of(&events, "agg").contains("Exporting data from upstream block load to analytics.dev_p_load_v1."), "{events:#?}");
    assert!(!stdout_of(&events, "top").contains("Exporting"), "a SQL parent in PostgreSQL is referenced, not uploaded");
    assert_eq!(pg().count(&db, "analytics.dev_p_load_v1"), 3);
    assert_eq!(pg().count(&db, "public.my_load"), 3, "upstream_block_configuration names the uploaded table");
    assert_eq!(pg().count(&db, "analytics.dev_p_agg_v1"), 2);
    assert_eq!(pg().count(&db, "analytics.top_groups"), 2, "limit applies to the output, not the table");

    // export_write_policy: append (the default) adds rows; replace does not.
    let (record, events) = p.run();
    assert_eq!(block(&record, "raw").status, BlockStatus::Failed, "raw_copy exists now: {events:#?}");
    assert!(block(&record, "raw").error.as_ref().unwrap().evalue.contains("\"raw_copy\" already exists"));
    assert_eq!(pg().count(&db, "analytics.dev_p_agg_v1"), 4);
    assert_eq!(pg().count(&db, "analytics.top_groups"), 4, "replace with the 4 appended rows");
}

/// Runs `wand run` on a copy of examples/nyc_taxi with the POSTGRES_* variables of `dev`.
fn taxi_command(root: &Path, db: &str, password: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wand"));
    command
        .args(["run", root.to_str().unwrap(), "taxi_etl", "--no-test"])
        .env("WAND_PYTHON", python())
        .env("POSTGRES_HOST", "127.0.0.1")
        .env("POSTGRES_PORT", pg().port.to_string())
        .env("POSTGRES_DBNAME", db)
        .env("POSTGRES_USER", "wand")
        .env("POSTGRES_PASSWORD", password)
        .env("POSTGRES_SCHEMA", "public")
        .env("POSTGRES_CONNECT_TIMEOUT", "10");
    command
}

fn taxi_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nyc_taxi");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nyc_taxi"), &root);
    (dir, root)
}

#[test]
fn nyc_taxi_mage_exporter_runs_unchanged() {
    let db = pg().database("taxi");
    let (_dir, root) = taxi_copy();
    let out = taxi_command(&root, &db, PASSWORD).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(pg().count(&db, "public.yellow_taxi_data"), 9512);
    assert_eq!(
        pg().psql(&db, "SELECT data_type FROM information_schema.columns WHERE table_name = 'yellow_taxi_data' AND column_name IN ('tpep_pickup_datetime', 'tpep_pickup_date', 'vendor_id') ORDER BY column_name"),
        "date\ntimestamp without time zone\nbigint"
    );
    assert_no_secret("wand run's output", &format!("{stdout}{stderr}"));
    let mut written = String::new();
    for path in walk(&root.join(".mage_data")) {
        written.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
    }
    assert_no_secret("the run record and outputs", &written);

    // Wrong password and dead server: the error names the profile, never the password.
    let (_dir, root) = taxi_copy();
    let wrong = format!("{PASSWORD}-wrong");
    let out = taxi_command(&root, &db, &wrong).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(text.contains("profile `dev`") && text.contains("password authentication failed"), "{text}");
    assert!(!text.contains(&wrong) && !text.contains(PASSWORD), "{text}");
    let record: String = walk(&root.join(".mage_data")).iter().map(|path| std::fs::read_to_string(path).unwrap_or_default()).collect();
    assert!(record.contains("profile `dev`") && !record.contains(&wrong), "{record}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn connection_errors_name_the_profile_not_the_password() {
    let db = pg().database("errors");
    let p = TestProject::new(&db, &[B("load", "data_loader", "python", &[], ""), B("export", "data_exporter", "python", &["load"], "")]);
    p.write("data_loaders/load.py", LOADER);
    p.write(
        "data_exporters/export.py",
        "from mage_ai.io.config import ConfigFileLoader\nfrom mage_ai.io.postgres import Postgres\n\n\
         @data_exporter\ndef export(df, **kwargs):\n    errors = []\n    for profile in ['wrong', 'dead', 'missing']:\n        \
         try:\n            Postgres.with_config(ConfigFileLoader(kwargs['repo_path'] + '/io_config.yaml', profile)).export(df, 'public', 't')\n        \
         except Exception as e:\n            errors.append(str(e))\n    return {'errors': errors}\n",
    );
    let start = Instant::now();
    let (record, events) = p.run();
    assert_succeeded(&record, &events);
    let errors = p.json_output("export");
    let errors: Vec<&str> = errors["errors"].as_array().unwrap().iter().map(|it| it.as_str().unwrap()).collect();
    assert!(
        errors[0].contains("profile `wrong` (wand@127.0.0.1:") && errors[0].contains("password authentication failed for user \"wand\""),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("profile `dead`") && errors[1].contains("cannot connect"), "{}", errors[1]);
    assert!(errors[2].contains("no profile `missing`"), "{}", errors[2]);
    assert!(start.elapsed() < Duration::from_secs(60));
    for error in &errors {
        assert_no_secret("an error", error);
        assert!(!error.contains(&format!("not-{PASSWORD}")), "{error}");
    }
    assert_no_secret("the events", &format!("{events:?}"));
    // The Rust API: a Debug print of the config hides the password too.
    assert_no_secret("PgConfig's Debug", &format!("{:?}", pg().config(&db)));
    // A secret mage_secret_var cannot find: the error names the profile and the secret.
    std::fs::remove_file(p.root.join(".env")).unwrap();
    let err = PgConfig::load(&p.root.join("io_config.yaml"), "default").unwrap_err().to_string();
    assert!(err.contains("profile `default`") && err.contains("mage_secret_var('wand_pg_password')"), "{err}");
}

/// Starts `wand run` exporting a big frame, sends it `signal` (KILL, or INT as Ctrl-C does)
/// while COPY runs, and checks that the target table is exactly as before.
fn killed_export_leaves_the_table_unchanged(policy: &str, signal: &str) {
    let db = pg().database(&format!("killed_{policy}_{}", signal.to_lowercase()));
    pg().psql(&db, "CREATE TABLE public.big (a bigint, s text); INSERT INTO public.big VALUES (1, 'x'), (2, 'y'), (3, 'z')");
    let p = TestProject::new(&db, &[B("load", "data_loader", "python", &[], ""), B("export", "data_exporter", "python", &["load"], "")]);
    p.write(
        "data_loaders/load.py",
        "import numpy as np\nimport pandas as pd\n\n@data_loader\ndef load(*args, **kwargs):\n    n = 3_000_000\n    \
         return pd.DataFrame({'a': np.arange(n, dtype='int64'), 's': np.where(np.arange(n) % 2 == 0, 'even', 'odd')})\n",
    );
    p.write(
        "data_exporters/export.py",
        &format!(
            "from mage_ai.io.config import ConfigFileLoader\nfrom mage_ai.io.postgres import Postgres\n\n\
             @data_exporter\ndef export(df, **kwargs):\n    Postgres.with_config(ConfigFileLoader(kwargs['repo_path'] + '/io_config.yaml')).export(df, 'public', 'big', if_exists='{policy}')\n"
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_wand"))
        .args(["run", p.root.to_str().unwrap(), "p", "--no-test"])
        .env("WAND_PYTHON", python())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let copying = pg().psql(&db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY %big%FROM STDIN%'");
        if copying != "0" {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("wand run ended ({status}) before the COPY was seen");
        }
        assert!(Instant::now() < deadline, "no COPY seen within 180 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    Command::new("kill").args(["-s", signal, &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    if signal == "INT" {
        assert_eq!(status.code(), Some(130), "a cancelled run exits with 130");
        assert!(signalled.elapsed() < Duration::from_secs(15), "Ctrl-C abandons the COPY instead of finishing it");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg().psql(&db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wand'") != "0" {
        assert!(Instant::now() < deadline, "the killed run's connection is still there");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pg().psql(&db, "SELECT string_agg(a || s, ',' ORDER BY a) FROM public.big"), "1x,2y,3z");
    assert_eq!(pg().psql(&db, "SELECT count(*) FROM pg_class WHERE relname LIKE 'big%wand_new%'"), "0");
}

#[test]
fn killed_replace_export_leaves_the_table_unchanged() {
    killed_export_leaves_the_table_unchanged("replace", "KILL");
}

#[test]
fn killed_append_export_leaves_the_table_unchanged() {
    killed_export_leaves_the_table_unchanged("append", "KILL");
}

#[test]
fn ctrl_c_during_an_export_rolls_it_back() {
    killed_export_leaves_the_table_unchanged("replace", "INT");
}

#[test]
fn file_io_round_trips_csv_gz_parquet_json() {
    let p = TestProject::new("unused", &[B("files", "data_loader", "python", &[], "")]);
    p.write(
        "data_loaders/files.py",
        "import os\nimport pandas as pd\nfrom mage_ai.io.file import FileIO\n\n@data_loader\ndef load(*args, **kwargs):\n    \
         df = pd.DataFrame({'a': [1, 2], 's': ['x', None]})\n    out = {}\n    \
         for name in ['t.csv', 't.csv.gz', 't.parquet', 't.json']:\n        \
         path = os.path.join(kwargs['repo_path'], 'out', name)\n        FileIO().export(df, path)\n        \
         back = FileIO().load(path)\n        out[name] = [back['a'].tolist(), back['s'].isna().tolist()]\n    return out\n",
    );
    let (record, events) = p.run();
    assert_succeeded(&record, &events);
    let expected = serde_json::json!([[1, 2], [false, true]]);
    assert_eq!(
        p.json_output("files"),
        serde_json::json!({"t.csv": expected, "t.csv.gz": expected, "t.parquet": expected, "t.json": expected})
    );
}
