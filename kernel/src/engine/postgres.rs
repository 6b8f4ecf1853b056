//! PostgreSQL: profiles from io_config.yaml, frames in and out with binary COPY, SQL blocks with
//! `data_provider: postgres` (spec 5.2, 5.3), and the `io_request`s of the `mage_ai.io.postgres`
//! shim (the Python side never talks to the database: it ships frames here).
//!
//! Safety rules: identifiers are always quoted ([`quote_ident`]); `replace` builds a new table
//! and swaps it in within one transaction, `append` is one transaction, so an error or a killed
//! run leaves the target as it was; the password is a [`Secret`] and never printed.
//!
//! Type mapping (polars -> PostgreSQL): Boolean -> boolean, Int8/Int16/UInt8 -> smallint,
//! Int32/UInt16 -> integer, Int64/UInt32 -> bigint, UInt64 -> numeric(20,0), Float32 -> real,
//! Float64 -> double precision, Decimal(p,s) -> numeric(p,s), String/Categorical/Enum -> text,
//! Binary -> bytea, Date -> date, Datetime(tz none) -> timestamp, Datetime(tz) -> timestamptz,
//! Time -> time, Duration -> interval, Null -> text (all null). Anything else (List, Array,
//! Struct, Object, Int128...) is refused with the column's name and dtype. Reading back maps the
//! same types the other way (timestamptz as UTC, numeric with a declared scale as Decimal,
//! numeric without one as Decimal(38, largest scale) or Float64 when that does not fit, interval
//! as Duration with a month counted as 30 days) and any other
//! PostgreSQL type as text.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use polars::prelude::*;
use serde_json::{Map, Value as Json, json};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, NoTls, Transaction};

use super::io_config::{self, Profile, Secret};
use super::sql::SqlInput;
use super::store::{self, Value, clean_name};

/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_DAYS: i64 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * 86_400_000_000;
/// COPY data is sent in chunks of about this size.
const CHUNK: usize = 1 << 20;

/// Connection settings of one profile.
#[derive(Clone, Debug)]
pub struct PgConfig {
    pub profile: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Secret,
    pub schema: Option<String>,
    pub connect_timeout: Option<Duration>,
}

impl PgConfig {
    pub fn from_profile(profile: &Profile) -> anyhow::Result<PgConfig> {
        let name = &profile.name;
        let port = match profile.get("POSTGRES_PORT") {
            Some(port) => {
                port.trim().parse().map_err(|_| anyhow::format_err!("profile `{name}`: POSTGRES_PORT `{port}` is not a port number"))?
            }
            None => 5432,
        };
        let connect_timeout =
            match profile.get("POSTGRES_CONNECT_TIMEOUT") {
                Some(secs) => Some(Duration::from_secs_f64(secs.trim().parse::<f64>().ok().filter(|it| *it >= 0.0).ok_or_else(|| {
                    anyhow::format_err!("profile `{name}`: POSTGRES_CONNECT_TIMEOUT `{secs}` is not a number of seconds")
                })?)),
                None => None,
            };
        if let Some(method) = profile.get("POSTGRES_CONNECTION_METHOD").filter(|it| *it != "direct") {
            anyhow::bail!("profile `{name}`: POSTGRES_CONNECTION_METHOD `{method}` is not supported yet (only `direct`)");
        }
        Ok(PgConfig {
            profile: name.clone(),
            host: profile.get("POSTGRES_HOST").unwrap_or("localhost").to_owned(),
            port,
            dbname: profile.get("POSTGRES_DBNAME").unwrap_or("postgres").to_owned(),
            user: profile.get("POSTGRES_USER").unwrap_or("postgres").to_owned(),
            password: Secret::new(profile.get("POSTGRES_PASSWORD").unwrap_or_default()),
            schema: profile.get("POSTGRES_SCHEMA").map(str::to_owned),
            connect_timeout,
        })
    }

    /// Reads `profile` of the io_config file (its folder is where `.env` is looked for).
    pub fn load(config_path: &Path, profile: &str) -> anyhow::Result<PgConfig> {
        let project = config_path.parent().unwrap_or(Path::new("."));
        PgConfig::from_profile(&io_config::load_profile(config_path, profile, project)?)
    }

    /// Who we connect as, for messages (never the password).
    pub fn describe(&self) -> String {
        format!("profile `{}` ({}@{}:{}/{})", self.profile, self.user, self.host, self.port, self.dbname)
    }

    pub fn default_schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }
}

/// `"name"` with embedded quotes doubled: the only way names reach SQL text.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// A string literal, for catalog lookups.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `if_exists` / `export_write_policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePolicy {
    Append,
    Replace,
    Fail,
}

impl WritePolicy {
    pub fn parse(text: &str) -> anyhow::Result<WritePolicy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "append" => Ok(WritePolicy::Append),
            "replace" => Ok(WritePolicy::Replace),
            "fail" => Ok(WritePolicy::Fail),
            other => anyhow::bail!("unknown write policy `{other}` (append, replace or fail)"),
        }
    }
}

fn pg_error(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_of(source);
    }
    text
}

fn cause_of<'a>(err: Option<&'a (dyn std::error::Error + 'static)>) -> Option<&'a (dyn std::error::Error + 'static)> {
    err.and_then(std::error::Error::source)
}

trait PgResult<T> {
    fn pg(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T> PgResult<T> for Result<T, tokio_postgres::Error> {
    fn pg(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|err| anyhow::format_err!("{}: {}", what(), pg_error(&err)))
    }
}

/// An open connection with the runtime that drives it (the engine is synchronous).
pub struct Conn {
    rt: tokio::runtime::Runtime,
    client: Client,
    pub config: PgConfig,
    /// Set it to abandon the running operation: its transaction is rolled back.
    pub cancel: Arc<AtomicBool>,
}

/// Runs `work` to its end or until `cancel` is set; a cancelled operation's futures (and so
/// its open transaction) are dropped without a commit.
fn block_on<T>(rt: &tokio::runtime::Runtime, cancel: &AtomicBool, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    rt.block_on(async {
        tokio::select! {
            result = work => result,
            _ = async {
                while !cancel.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            } => Err(anyhow::format_err!("cancelled; the PostgreSQL transaction was rolled back")),
        }
    })
}

/// Calls `work` with a flag that follows `cancel` (borrowed) while it runs.
fn following<T>(cancel: &AtomicBool, work: impl FnOnce(Arc<AtomicBool>) -> T) -> T {
    let flag = Arc::new(AtomicBool::new(cancel.load(Ordering::SeqCst)));
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if cancel.load(Ordering::SeqCst) {
                    flag.store(true, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let result = work(flag.clone());
        done.store(true, Ordering::SeqCst);
        result
    })
}

pub fn connect(config: &PgConfig) -> anyhow::Result<Conn> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.host).port(config.port).dbname(&config.dbname).user(&config.user).application_name("wand");
    if !config.password.expose().is_empty() {
        pg.password(config.password.expose());
    }
    if let Some(timeout) = config.connect_timeout.filter(|it| !it.is_zero()) {
        pg.connect_timeout(timeout);
    }
    let connecting = pg.connect(NoTls);
    let overall = config.connect_timeout.filter(|it| !it.is_zero()).unwrap_or(Duration::from_secs(60)) + Duration::from_secs(1);
    let (client, connection) = rt
        .block_on(async { tokio::time::timeout(overall, connecting).await })
        .map_err(|_| anyhow::format_err!("cannot connect to PostgreSQL with {}: timed out", config.describe()))?
        .pg(|| format!("cannot connect to PostgreSQL with {}", config.describe()))?;
    rt.spawn(async move {
        let _ = connection.await;
    });
    Ok(Conn { rt, client, config: config.clone(), cancel: Arc::new(AtomicBool::new(false)) })
}

// ------------------------------------------------------------------------------- writing

/// One column ready for binary COPY.
enum Enc {
    Bool(BooleanChunked),
    I16(Int16Chunked),
    I32(Int32Chunked),
    I64(Int64Chunked),
    F32(Float32Chunked),
    F64(Float64Chunked),
    Text(StringChunked),
    Bytes(BinaryChunked),
    /// Days since 1970.
    Date(Int32Chunked),
    /// Micros since 1970 = value * mul / div (floored).
    Micros(Int64Chunked, i64, i64),
    /// Time of day: nanoseconds.
    Time(Int64Chunked),
    /// Duration: micros = value * mul / div.
    Interval(Int64Chunked, i64, i64),
    Numeric(Int128Chunked, u16),
    Null,
}

/// A polars column's PostgreSQL type (`CREATE TABLE` text and the COPY type) and encoder.
struct Planned {
    name: String,
    sql_type: String,
    pg_type: Type,
    enc: Enc,
}

fn units(unit: TimeUnit) -> (i64, i64) {
    match unit {
        TimeUnit::Nanoseconds => (1, 1000),
        TimeUnit::Microseconds => (1, 1),
        TimeUnit::Milliseconds => (1000, 1),
    }
}

/// The PostgreSQL column type for a polars dtype, or `None` when it has none.
pub fn pg_type_name(dtype: &DataType) -> Option<String> {
    Some(match dtype {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20,0)".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal(p, s) => format!("numeric({p},{s})"),
        DataType::String | DataType::Categorical(..) | DataType::Enum(..) | DataType::Null => "text".into(),
        DataType::Binary => "bytea".into(),
        DataType::Date => "date".into(),
        DataType::Datetime(_, None) => "timestamp".into(),
        DataType::Datetime(_, Some(_)) => "timestamptz".into(),
        DataType::Time => "time".into(),
        DataType::Duration(_) => "interval".into(),
        _ => return None,
    })
}

fn plan(df: &DataFrame) -> anyhow::Result<Vec<Planned>> {
    let mut refused = Vec::new();
    let mut planned = Vec::new();
    for column in df.columns() {
        let name = column.name().to_string();
        let series = column.as_materialized_series().rechunk();
        let dtype = series.dtype().clone();
        let Some(sql_type) = pg_type_name(&dtype) else {
            refused.push(format!("`{name}` ({dtype})"));
            continue;
        };
        let cast =
            |to: &DataType| anyhow::Context::with_context(series.cast(to), || format!("cannot convert column `{name}` ({dtype}) to {to}"));
        let (pg_type, enc) = match &dtype {
            DataType::Boolean => (Type::BOOL, Enc::Bool(series.bool()?.clone())),
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => (Type::INT2, Enc::I16(cast(&DataType::Int16)?.i16()?.clone())),
            DataType::Int32 | DataType::UInt16 => (Type::INT4, Enc::I32(cast(&DataType::Int32)?.i32()?.clone())),
            DataType::Int64 | DataType::UInt32 => (Type::INT8, Enc::I64(cast(&DataType::Int64)?.i64()?.clone())),
            DataType::UInt64 => (Type::NUMERIC, Enc::Numeric(cast(&DataType::Int128)?.i128()?.clone(), 0)),
            DataType::Float32 => (Type::FLOAT4, Enc::F32(series.f32()?.clone())),
            DataType::Float64 => (Type::FLOAT8, Enc::F64(series.f64()?.clone())),
            DataType::Decimal(_, scale) => {
                let physical = series.to_physical_repr().into_owned();
                (Type::NUMERIC, Enc::Numeric(physical.i128()?.clone(), *scale as u16))
            }
            DataType::String => (Type::TEXT, Enc::Text(series.str()?.clone())),
            DataType::Categorical(..) | DataType::Enum(..) => (Type::TEXT, Enc::Text(cast(&DataType::String)?.str()?.clone())),
            DataType::Null => (Type::TEXT, Enc::Null),
            DataType::Binary => (Type::BYTEA, Enc::Bytes(series.binary()?.clone())),
            DataType::Date => (Type::DATE, Enc::Date(series.to_physical_repr().i32()?.clone())),
            DataType::Datetime(unit, tz) => {
                let (mul, div) = units(*unit);
                let pg_type = if tz.is_some() { Type::TIMESTAMPTZ } else { Type::TIMESTAMP };
                (pg_type, Enc::Micros(series.to_physical_repr().i64()?.clone(), mul, div))
            }
            DataType::Time => (Type::TIME, Enc::Time(series.to_physical_repr().i64()?.clone())),
            DataType::Duration(unit) => {
                let (mul, div) = units(*unit);
                (Type::INTERVAL, Enc::Interval(series.to_physical_repr().i64()?.clone(), mul, div))
            }
            _ => unreachable!("pg_type_name covers the types above"),
        };
        planned.push(Planned { name, sql_type, pg_type, enc });
    }
    if !refused.is_empty() {
        anyhow::bail!(
            "cannot map these columns to PostgreSQL types: {} (supported: integers, floats, decimals, strings, booleans, binary, dates, datetimes, times, durations)",
            refused.join(", ")
        );
    }
    Ok(planned)
}

/// PostgreSQL's binary numeric for `mantissa * 10^-scale`.
fn put_numeric(buf: &mut BytesMut, mantissa: i128, scale: u16) {
    let negative = mantissa < 0;
    let mut value = mantissa.unsigned_abs();
    // Base-10000 digits need the scale padded to a multiple of 4.
    let pad = (4 - scale % 4) % 4;
    for _ in 0..pad {
        value *= 10;
    }
    let frac_groups = (scale + pad) / 4;
    let mut groups = Vec::new();
    while value > 0 {
        groups.push((value % 10_000) as i16);
        value /= 10_000;
    }
    // groups[0] is the least significant; weight of the most significant group:
    let n = groups.len() as i32;
    let mut weight = n - 1 - frac_groups as i32;
    groups.reverse();
    // Drop trailing zero groups (PostgreSQL strips them) and leading zeros are impossible.
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let start = buf.len();
    buf.put_i32(0);
    buf.put_i16(groups.len() as i16);
    buf.put_i16(weight as i16);
    buf.put_u16(if negative && !groups.is_empty() { 0x4000 } else { 0 });
    buf.put_u16(scale);
    for group in groups {
        buf.put_i16(group);
    }
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_field(buf: &mut BytesMut, enc: &Enc, row: usize) {
    macro_rules! fixed {
        ($value:expr, $len:expr, $put:expr) => {
            match $value {
                Some(value) => {
                    buf.put_i32($len);
                    #[allow(clippy::redundant_closure_call)]
                    ($put)(buf, value);
                }
                None => buf.put_i32(-1),
            }
        };
    }
    match enc {
        Enc::Bool(ca) => fixed!(ca.get(row), 1, |buf: &mut BytesMut, v: bool| buf.put_u8(v as u8)),
        Enc::I16(ca) => fixed!(ca.get(row), 2, |buf: &mut BytesMut, v| buf.put_i16(v)),
        Enc::I32(ca) => fixed!(ca.get(row), 4, |buf: &mut BytesMut, v| buf.put_i32(v)),
        Enc::I64(ca) => fixed!(ca.get(row), 8, |buf: &mut BytesMut, v| buf.put_i64(v)),
        Enc::F32(ca) => fixed!(ca.get(row), 4, |buf: &mut BytesMut, v| buf.put_f32(v)),
        Enc::F64(ca) => fixed!(ca.get(row), 8, |buf: &mut BytesMut, v| buf.put_f64(v)),
        Enc::Date(ca) => fixed!(ca.get(row), 4, |buf: &mut BytesMut, v: i32| buf.put_i32((v as i64 - PG_EPOCH_DAYS) as i32)),
        Enc::Micros(ca, mul, div) => {
            fixed!(ca.get(row), 8, |buf: &mut BytesMut, v: i64| buf.put_i64((v * mul).div_euclid(*div) - PG_EPOCH_MICROS))
        }
        Enc::Time(ca) => fixed!(ca.get(row), 8, |buf: &mut BytesMut, v: i64| buf.put_i64(v.div_euclid(1000))),
        Enc::Interval(ca, mul, div) => fixed!(ca.get(row), 16, |buf: &mut BytesMut, v: i64| {
            buf.put_i64((v * mul).div_euclid(*div));
            buf.put_i32(0);
            buf.put_i32(0);
        }),
        Enc::Text(ca) => match ca.get(row) {
            Some(text) => {
                buf.put_i32(text.len() as i32);
                buf.put_slice(text.as_bytes());
            }
            None => buf.put_i32(-1),
        },
        Enc::Bytes(ca) => match ca.get(row) {
            Some(bytes) => {
                buf.put_i32(bytes.len() as i32);
                buf.put_slice(bytes);
            }
            None => buf.put_i32(-1),
        },
        Enc::Numeric(ca, scale) => match ca.get(row) {
            Some(value) => put_numeric(buf, value, *scale),
            None => buf.put_i32(-1),
        },
        Enc::Null => buf.put_i32(-1),
    }
}

/// COPYs `df` into `target` (already quoted; `columns` quoted and in frame order).
async fn copy_in(client: &Transaction<'_>, target: &str, planned: &[Planned], height: usize) -> anyhow::Result<u64> {
    let columns: Vec<String> = planned.iter().map(|it| quote_ident(&it.name)).collect();
    let statement = format!("COPY {target} ({}) FROM STDIN (FORMAT binary)", columns.join(", "));
    let sink = client.copy_in::<_, Bytes>(statement.as_str()).await.pg(|| format!("cannot start COPY into {target}"))?;
    futures_util::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(CHUNK + 4096);
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
    for row in 0..height {
        buf.put_i16(planned.len() as i16);
        for column in planned {
            put_field(&mut buf, &column.enc, row);
        }
        if buf.len() >= CHUNK {
            sink.send(buf.split().freeze()).await.pg(|| format!("COPY into {target} failed"))?;
        }
    }
    buf.put_i16(-1);
    sink.send(buf.split().freeze()).await.pg(|| format!("COPY into {target} failed"))?;
    sink.as_mut().finish().await.pg(|| format!("COPY into {target} failed"))
}

async fn table_exists<C: GenericClient>(client: &C, schema: &str, table: &str) -> anyhow::Result<bool> {
    let query = format!("SELECT to_regclass({}) IS NOT NULL", quote_literal(&qualified(schema, table)));
    let row = client.query_one(query.as_str(), &[]).await.pg(|| format!("cannot look up {}", qualified(schema, table)))?;
    Ok(row.get(0))
}

async fn ensure_schema<C: GenericClient>(client: &C, schema: &str) -> anyhow::Result<()> {
    let query = format!("SELECT count(*) FROM pg_namespace WHERE nspname = {}", quote_literal(schema));
    let row = client.query_one(query.as_str(), &[]).await.pg(|| format!("cannot look up schema {}", quote_ident(schema)))?;
    if row.get::<_, i64>(0) == 0 {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema)))
            .await
            .pg(|| format!("cannot create schema {}", quote_ident(schema)))?;
    }
    Ok(())
}

/// A name for the table a `replace` builds, within PostgreSQL's 63 bytes.
fn staging_name(table: &str) -> String {
    let suffix = format!("__wand_new_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut base = table.to_owned();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    format!("{base}{suffix}")
}

fn create_table_sql(target: &str, planned: &[Planned]) -> String {
    let columns: Vec<String> = planned.iter().map(|it| format!("{} {}", quote_ident(&it.name), it.sql_type)).collect();
    format!("CREATE TABLE {target} ({})", columns.join(", "))
}

impl Conn {
    /// Writes `df` into `schema.table` following `policy`; returns the rows written.
    pub fn export(&mut self, df: &DataFrame, schema: &str, table: &str, policy: WritePolicy) -> anyhow::Result<u64> {
        let planned = plan(df)?;
        let height = df.height();
        let client = &mut self.client;
        block_on(&self.rt, &self.cancel, async {
            let tx = client.transaction().await.pg(|| "cannot begin a transaction".to_owned())?;
            ensure_schema(&tx, schema).await?;
            let target = qualified(schema, table);
            let exists = table_exists(&tx, schema, table).await?;
            let rows = match policy {
                WritePolicy::Fail if exists => anyhow::bail!("table {target} already exists and the write policy is `fail`"),
                WritePolicy::Replace => {
                    let staging = staging_name(table);
                    let staged = qualified(schema, &staging);
                    tx.batch_execute(&create_table_sql(&staged, &planned)).await.pg(|| format!("cannot create {staged}"))?;
                    let rows = copy_in(&tx, &staged, &planned, height).await?;
                    if exists {
                        tx.batch_execute(&format!("DROP TABLE {target}")).await.pg(|| format!("cannot drop {target}"))?;
                    }
                    tx.batch_execute(&format!("ALTER TABLE {staged} RENAME TO {}", quote_ident(table)))
                        .await
                        .pg(|| format!("cannot rename {staged}"))?;
                    rows
                }
                WritePolicy::Append | WritePolicy::Fail if !exists => {
                    tx.batch_execute(&create_table_sql(&target, &planned)).await.pg(|| format!("cannot create {target}"))?;
                    copy_in(&tx, &target, &planned, height).await?
                }
                _ => {
                    // Append to an existing table: straight COPY when every column has the
                    // type we send, else through a temporary table and PostgreSQL's casts.
                    let probe = format!("SELECT * FROM {target} LIMIT 0");
                    let statement = tx.prepare(&probe).await.pg(|| format!("cannot read the columns of {target}"))?;
                    let existing: Vec<(&str, &Type)> = statement.columns().iter().map(|it| (it.name(), it.type_())).collect();
                    let mut same = true;
                    for column in &planned {
                        match existing.iter().find(|(name, _)| *name == column.name) {
                            Some((_, ty)) => same &= **ty == column.pg_type,
                            None => anyhow::bail!(
                                "table {target} has no column {} (columns: {})",
                                quote_ident(&column.name),
                                existing.iter().map(|it| it.0).collect::<Vec<_>>().join(", ")
                            ),
                        }
                    }
                    if same {
                        copy_in(&tx, &target, &planned, height).await?
                    } else {
                        let temp = quote_ident(&staging_name("wand_append"));
                        tx.batch_execute(&format!(
                            "{} ON COMMIT DROP",
                            create_table_sql(&temp, &planned).replacen("CREATE TABLE", "CREATE TEMP TABLE", 1)
                        ))
                        .await
                        .pg(|| "cannot create a temporary table".to_owned())?;
                        let rows = copy_in(&tx, &temp, &planned, height).await?;
                        let columns: Vec<String> = planned.iter().map(|it| quote_ident(&it.name)).collect();
                        let columns = columns.join(", ");
                        tx.batch_execute(&format!("INSERT INTO {target} ({columns}) SELECT {columns} FROM {temp}"))
                            .await
                            .pg(|| format!("cannot append to {target}"))?;
                        rows
                    }
                }
            };
            tx.commit().await.pg(|| format!("cannot commit the write to {target}"))?;
            Ok(rows)
        })
    }

    /// Runs SQL statements (no result).
    pub fn execute(&mut self, sql: &str) -> anyhow::Result<()> {
        let client = &self.client;
        block_on(&self.rt, &self.cancel, async { client.batch_execute(sql).await.pg(|| "the SQL failed".to_owned()) })
    }

    /// Runs a query and reads its result into a frame with binary COPY.
    pub fn query_frame(&mut self, query: &str) -> anyhow::Result<DataFrame> {
        let client = &mut self.client;
        block_on(&self.rt, &self.cancel, async {
            let tx = client.transaction().await.pg(|| "cannot begin a transaction".to_owned())?;
            let df = read_query(&tx, query).await?;
            tx.commit().await.pg(|| "cannot end the transaction".to_owned())?;
            Ok(df)
        })
    }
}

// ------------------------------------------------------------------------------- reading

enum Dec {
    Bool(Vec<Option<bool>>),
    I16(Vec<Option<i16>>),
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F32(Vec<Option<f32>>),
    F64(Vec<Option<f64>>),
    Text(StringChunkedBuilder),
    Bytes(BinaryChunkedBuilder),
    Date(Vec<Option<i32>>),
    Timestamp(Vec<Option<i64>>, bool),
    Time(Vec<Option<i64>>),
    Interval(Vec<Option<i64>>),
    Decimal(Vec<Option<i128>>, usize, usize),
    /// numeric without a declared scale: raw fields, decided at the end.
    NumericAny(Vec<Option<Vec<u8>>>),
}

/// How a PostgreSQL column is read: a decoder, or `None` to cast it to text in SQL.
fn decoder(ty: &Type, typmod: i32, name: &str) -> Option<Dec> {
    Some(match *ty {
        Type::BOOL => Dec::Bool(Vec::new()),
        Type::INT2 => Dec::I16(Vec::new()),
        Type::INT4 => Dec::I32(Vec::new()),
        Type::INT8 => Dec::I64(Vec::new()),
        Type::FLOAT4 => Dec::F32(Vec::new()),
        Type::FLOAT8 => Dec::F64(Vec::new()),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Dec::Text(StringChunkedBuilder::new(name.into(), 0)),
        Type::BYTEA => Dec::Bytes(BinaryChunkedBuilder::new(name.into(), 0)),
        Type::DATE => Dec::Date(Vec::new()),
        Type::TIMESTAMP => Dec::Timestamp(Vec::new(), false),
        Type::TIMESTAMPTZ => Dec::Timestamp(Vec::new(), true),
        Type::TIME => Dec::Time(Vec::new()),
        Type::INTERVAL => Dec::Interval(Vec::new()),
        Type::NUMERIC => {
            // typmod = ((precision << 16) | scale) + 4 when declared.
            if typmod >= 4 {
                let precision = ((typmod - 4) >> 16) as usize;
                let scale = ((typmod - 4) & 0xffff) as usize;
                if (1..=38).contains(&precision) && scale <= precision {
                    return Some(Dec::Decimal(Vec::new(), precision, scale));
                }
            }
            Dec::NumericAny(Vec::new())
        }
        _ => return None,
    })
}

fn tail(bytes: &[u8], from: usize) -> &[u8] {
    bytes.get(from..).unwrap_or_default()
}

fn be<const N: usize>(bytes: &[u8]) -> anyhow::Result<[u8; N]> {
    bytes.get(..N).and_then(|it| it.try_into().ok()).ok_or_else(|| anyhow::format_err!("truncated binary COPY field"))
}

/// A binary numeric's parts: digits base 10000, weight, negative, dscale.
type NumericParts = (Vec<i16>, i16, bool, u16);

/// Binary numeric -> its parts; NaN/inf -> None.
fn numeric_parts(field: &[u8]) -> anyhow::Result<Option<NumericParts>> {
    let ndigits = i16::from_be_bytes(be(field)?) as usize;
    let weight = i16::from_be_bytes(be(tail(field, 2))?);
    let sign = u16::from_be_bytes(be(tail(field, 4))?);
    let dscale = u16::from_be_bytes(be(tail(field, 6))?);
    if sign == 0xC000 || sign == 0xD000 || sign == 0xF000 {
        return Ok(None);
    }
    let mut digits = Vec::with_capacity(ndigits);
    for idx in 0..ndigits {
        digits.push(i16::from_be_bytes(be(tail(field, 8 + 2 * idx))?));
    }
    Ok(Some((digits, weight, sign == 0x4000, dscale)))
}

fn numeric_to_i128(field: &[u8], scale: usize) -> anyhow::Result<Option<i128>> {
    let Some((digits, weight, negative, _)) = numeric_parts(field)? else { anyhow::bail!("NaN or infinite numeric cannot be a Decimal") };
    // value = sum(d_i * 10000^(weight - i)); we want value * 10^scale.
    let mut acc: i128 = 0;
    let mut exp10: i64 = 0; // acc is value * 10^(exp10)...
    // Build the integer of all digits, then shift.
    for digit in &digits {
        acc = acc
            .checked_mul(10_000)
            .and_then(|it| it.checked_add(*digit as i128))
            .ok_or_else(|| anyhow::format_err!("numeric too large"))?;
    }
    // acc = value * 10000^(ndigits - 1 - weight)
    let frac_groups = digits.len() as i64 - 1 - weight as i64;
    exp10 += 4 * frac_groups;
    let shift = scale as i64 - exp10;
    if shift >= 0 {
        for _ in 0..shift {
            acc = acc.checked_mul(10).ok_or_else(|| anyhow::format_err!("numeric too large"))?;
        }
    } else {
        for _ in 0..(-shift) {
            acc /= 10;
        }
    }
    Ok(Some(if negative { -acc } else { acc }))
}

fn numeric_to_f64(field: &[u8]) -> anyhow::Result<f64> {
    let Some((digits, weight, negative, _)) = numeric_parts(field)? else {
        let sign = u16::from_be_bytes(be(tail(field, 4))?);
        return Ok(match sign {
            0xD000 => f64::INFINITY,
            0xF000 => f64::NEG_INFINITY,
            _ => f64::NAN,
        });
    };
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    for digit in &digits {
        text.push_str(&format!("{digit:04}"));
    }
    if text.is_empty() || text == "-" {
        text.push('0');
    }
    let exponent = 4 * (weight as i64 + 1 - digits.len() as i64);
    Ok(format!("{text}e{exponent}").parse().unwrap_or(f64::NAN))
}

impl Dec {
    fn push(&mut self, field: Option<&[u8]>) -> anyhow::Result<()> {
        match self {
            Dec::Bool(v) => v.push(field.map(|f| f.first().is_some_and(|b| *b != 0))),
            Dec::I16(v) => v.push(field.map(|f| be(f).map(i16::from_be_bytes)).transpose()?),
            Dec::I32(v) => v.push(field.map(|f| be(f).map(i32::from_be_bytes)).transpose()?),
            Dec::I64(v) => v.push(field.map(|f| be(f).map(i64::from_be_bytes)).transpose()?),
            Dec::F32(v) => v.push(field.map(|f| be(f).map(f32::from_be_bytes)).transpose()?),
            Dec::F64(v) => v.push(field.map(|f| be(f).map(f64::from_be_bytes)).transpose()?),
            Dec::Text(b) => b.append_option(field.map(|f| String::from_utf8_lossy(f).into_owned())),
            Dec::Bytes(b) => b.append_option(field),
            Dec::Date(v) => v.push(field.map(|f| be(f).map(|it| (i32::from_be_bytes(it) as i64 + PG_EPOCH_DAYS) as i32)).transpose()?),
            Dec::Timestamp(v, _) => {
                v.push(field.map(|f| be(f).map(|it| i64::from_be_bytes(it).saturating_add(PG_EPOCH_MICROS))).transpose()?)
            }
            Dec::Time(v) => v.push(field.map(|f| be(f).map(|it| i64::from_be_bytes(it) * 1000)).transpose()?),
            Dec::Interval(v) => v.push(
                field
                    .map(|f| -> anyhow::Result<i64> {
                        let micros = i64::from_be_bytes(be(f)?);
                        let days = i32::from_be_bytes(be(tail(f, 8))?) as i64;
                        let months = i32::from_be_bytes(be(tail(f, 12))?) as i64;
                        Ok(micros + days * 86_400_000_000 + months * 30 * 86_400_000_000)
                    })
                    .transpose()?,
            ),
            Dec::Decimal(v, _, scale) => v.push(match field {
                Some(f) => numeric_to_i128(f, *scale)?,
                None => None,
            }),
            Dec::NumericAny(v) => v.push(field.map(<[u8]>::to_vec)),
        }
        Ok(())
    }

    fn finish(self, name: &str) -> anyhow::Result<Column> {
        let name: PlSmallStr = name.into();
        Ok(match self {
            Dec::Bool(v) => Column::new(name, v),
            Dec::I16(v) => Column::new(name, v),
            Dec::I32(v) => Column::new(name, v),
            Dec::I64(v) => Column::new(name, v),
            Dec::F32(v) => Column::new(name, v),
            Dec::F64(v) => Column::new(name, v),
            Dec::NumericAny(v) => numeric_column(name, v)?,
            Dec::Text(b) => b.finish().into_series().into_column(),
            Dec::Bytes(b) => b.finish().into_series().into_column(),
            Dec::Date(v) => Int32Chunked::from_iter_options(name, v.into_iter()).into_date().into_series().into_column(),
            Dec::Timestamp(v, tz) => Int64Chunked::from_iter_options(name, v.into_iter())
                .into_datetime(TimeUnit::Microseconds, tz.then_some(TimeZone::UTC))
                .into_series()
                .into_column(),
            Dec::Time(v) => Int64Chunked::from_iter_options(name, v.into_iter()).into_time().into_series().into_column(),
            Dec::Interval(v) => {
                Int64Chunked::from_iter_options(name, v.into_iter()).into_duration(TimeUnit::Microseconds).into_series().into_column()
            }
            Dec::Decimal(v, precision, scale) => {
                Int128Chunked::from_iter_options(name, v.into_iter()).into_decimal(precision, scale)?.into_series().into_column()
            }
        })
    }
}

/// A numeric column without a declared scale: Decimal(38, largest scale seen) when every value
/// fits (PostgreSQL's numeric is exact, and Mage's psycopg2 gives Decimals too), else Float64.
fn numeric_column(name: PlSmallStr, fields: Vec<Option<Vec<u8>>>) -> anyhow::Result<Column> {
    let mut scale = 0usize;
    for field in fields.iter().flatten() {
        match numeric_parts(field)? {
            Some((_, _, _, dscale)) => scale = scale.max(dscale as usize),
            None => scale = usize::MAX,
        }
    }
    if scale <= 38 {
        let limit = 10i128.pow(38);
        let values: anyhow::Result<Vec<Option<i128>>> = fields
            .iter()
            .map(|field| {
                field
                    .as_deref()
                    .map(|f| numeric_to_i128(f, scale).map(|it| it.filter(|v| v.abs() < limit)))
                    .transpose()
                    .map(Option::flatten)
            })
            .collect();
        let nulls = fields.iter().filter(|it| it.is_none()).count();
        if let Some(values) = values.ok().filter(|values| values.iter().filter(|it| it.is_none()).count() == nulls) {
            return Ok(Int128Chunked::from_iter_options(name, values.into_iter()).into_decimal(38, scale)?.into_series().into_column());
        }
    }
    let values: Vec<Option<f64>> =
        fields.iter().map(|field| field.as_deref().map(numeric_to_f64).transpose()).collect::<anyhow::Result<_>>()?;
    Ok(Column::new(name, values))
}

async fn read_query(client: &Transaction<'_>, query: &str) -> anyhow::Result<DataFrame> {
    let query = query.trim().trim_end_matches(';').trim();
    let statement = client.prepare(query).await.pg(|| "the query failed".to_owned())?;
    let columns = statement.columns();
    let mut decoders = Vec::with_capacity(columns.len());
    let mut select = Vec::with_capacity(columns.len());
    let mut cast_any = false;
    for column in columns {
        match decoder(column.type_(), column.type_modifier(), column.name()) {
            Some(dec) => {
                decoders.push(dec);
                select.push(format!("q.{}", quote_ident(column.name())));
            }
            None => {
                cast_any = true;
                decoders.push(Dec::Text(StringChunkedBuilder::new(column.name().into(), 0)));
                select.push(format!("q.{}::text", quote_ident(column.name())));
            }
        }
    }
    let names: Vec<String> = columns.iter().map(|it| it.name().to_owned()).collect();
    if columns.is_empty() {
        return Ok(DataFrame::empty());
    }
    let inner = if cast_any {
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = names.iter().find(|name| !seen.insert(name.as_str())) {
            anyhow::bail!("the query returns the column `{dup}` twice; give the columns distinct names");
        }
        format!("SELECT {} FROM ({query}) AS q", select.join(", "))
    } else {
        query.to_owned()
    };
    let copy = format!("COPY ({inner}) TO STDOUT (FORMAT binary)");
    let stream = client.copy_out(copy.as_str()).await.pg(|| "the query failed".to_owned())?;
    futures_util::pin_mut!(stream);
    let mut data = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk.pg(|| "reading the query result failed".to_owned())?);
    }
    let data = data.freeze();
    let mut pos = 11;
    anyhow::ensure!(data.len() >= 19 && &data[..11] == b"PGCOPY\n\xff\r\n\0", "not a binary COPY stream");
    pos += 4;
    let ext = u32::from_be_bytes(be(tail(&data, pos))?) as usize;
    pos += 4 + ext;
    let mut height = 0usize;
    loop {
        let count = i16::from_be_bytes(be(tail(&data, pos))?);
        pos += 2;
        if count == -1 {
            break;
        }
        anyhow::ensure!(count as usize == decoders.len(), "binary COPY row has {count} fields, expected {}", decoders.len());
        for dec in &mut decoders {
            let len = i32::from_be_bytes(be(tail(&data, pos))?);
            pos += 4;
            if len < 0 {
                dec.push(None)?;
            } else {
                let end = pos + len as usize;
                anyhow::ensure!(end <= data.len(), "truncated binary COPY field");
                dec.push(Some(&data[pos..end]))?;
                pos = end;
            }
        }
        height += 1;
    }
    let columns: Vec<Column> = decoders.into_iter().zip(&names).map(|(dec, name)| dec.finish(name)).collect::<anyhow::Result<_>>()?;
    Ok(DataFrame::new(height, columns)?)
}

// ------------------------------------------------------------------------------- SQL blocks

/// Whether a SQL block runs in PostgreSQL.
pub fn is_postgres(configuration: &Json) -> bool {
    configuration.get("data_provider").and_then(Json::as_str).is_some_and(|it| matches!(it.trim(), "postgres" | "postgresql"))
}

/// Mage's `Block.table_name` (spec 5.3).
pub fn mage_table_name(pipeline: &str, block_uuid: &str, configuration: &Json, env: &str) -> String {
    if let Some(table) = configuration.get("data_provider_table").and_then(Json::as_str).filter(|it| !it.trim().is_empty()) {
        return table.trim().to_owned();
    }
    let name = format!("{pipeline}_{}_v1", clean_name(block_uuid));
    match env {
        "dev" => format!("dev_{name}"),
        "test" => format!("test_{name}"),
        _ => name,
    }
}

/// A SQL block with `data_provider: postgres`, as the scheduler hands it over.
pub struct SqlBlock<'a> {
    pub root: &'a Path,
    pub pipeline: &'a str,
    pub uuid: &'a str,
    pub configuration: &'a Json,
    pub text: &'a str,
    pub inputs: &'a [SqlInput],
    pub globals: &'a Map<String, Json>,
    /// The run's cancel flag: a cancelled block's transaction is rolled back.
    pub cancel: Arc<AtomicBool>,
}

/// What an upstream block is for a PostgreSQL SQL block.
struct Parent {
    configuration: Json,
    is_pg_sql: bool,
}

fn parents(block: &SqlBlock<'_>) -> Vec<Parent> {
    let project = pipeline::load::load_project(&pipeline::vfs::DiskVfs, block.root);
    let pipeline = project.pipelines.get(block.pipeline);
    block
        .inputs
        .iter()
        .map(|input| {
            let parent = pipeline.and_then(|it| it.block(&input.uuid));
            let configuration = parent.and_then(|it| it.configuration.as_ref()).map(|it| it.to_json()).unwrap_or(Json::Null);
            let is_sql = parent.is_some_and(|it| it.language == Some(pipeline::Language::Sql));
            Parent { is_pg_sql: is_sql && is_postgres(&configuration), configuration }
        })
        .collect()
}

/// Replaces `{{ df_N }}` (spaces optional) with `names[N-1]`.
fn replace_df_refs(text: &str, names: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        let inner = rest[start + 2..start + len].trim();
        let idx = inner.strip_prefix("df_").and_then(|n| n.parse::<usize>().ok()).filter(|n| (1..=names.len()).contains(n));
        out.push_str(&rest[..start]);
        match idx {
            Some(n) => out.push_str(&names[n - 1]),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Splits SQL text on `;` outside quotes and comments.
fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let (mut single, mut double, mut line_comment, mut block_comment) = (false, false, false, false);
    while let Some(ch) = chars.next() {
        current.push(ch);
        if line_comment {
            line_comment = ch != '\n';
        } else if block_comment {
            if ch == '*' && chars.peek() == Some(&'/') {
                current.push(chars.next().unwrap());
                block_comment = false;
            }
        } else if single {
            single = ch != '\'';
        } else if double {
            double = ch != '"';
        } else {
            match ch {
                '\'' => single = true,
                '"' => double = true,
                '-' if chars.peek() == Some(&'-') => line_comment = true,
                '/' if chars.peek() == Some(&'*') => block_comment = true,
                ';' => {
                    current.pop();
                    out.push(std::mem::take(&mut current));
                }
                _ => {}
            }
        }
    }
    out.push(current);
    out.into_iter().filter(|it| !strip_comments(it).trim().is_empty()).map(|it| it.trim().to_owned()).collect()
}

fn strip_comments(text: &str) -> String {
    text.lines().map(|line| line.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The table a `CREATE TABLE` / `INSERT INTO` / `UPDATE` statement writes, as written.
fn written_table(statement: &str) -> Option<String> {
    let text = strip_comments(statement);
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|it| it.to_ascii_lowercase()).collect();
    let at = |idx: usize| lower.get(idx).map(String::as_str);
    let mut idx = match (at(0), at(1)) {
        (Some("insert"), Some("into")) => 2,
        (Some("update"), _) => 1,
        (Some("create"), _) => {
            let mut idx = 1;
            while matches!(at(idx), Some("or" | "replace" | "temp" | "temporary" | "unlogged")) {
                idx += 1;
            }
            if at(idx) != Some("table") {
                return None;
            }
            idx + 1
        }
        _ => return None,
    };
    if at(idx) == Some("if") && at(idx + 1) == Some("not") && at(idx + 2) == Some("exists") {
        idx += 3;
    }
    if at(idx) == Some("only") {
        idx += 1;
    }
    let name = words.get(idx)?.split('(').next()?.trim_end_matches(';');
    (!name.is_empty()).then(|| name.to_owned())
}

fn returns_rows(statement: &str) -> bool {
    let head = strip_comments(statement).trim_start().trim_start_matches('(').to_ascii_lowercase();
    ["select", "with", "values", "table", "show"].iter().any(|kw| head.starts_with(kw))
}

/// Runs a SQL block in PostgreSQL. Returns the block's output frame and lines to print.
pub fn run_sql_block(block: &SqlBlock<'_>) -> anyhow::Result<(DataFrame, Vec<String>)> {
    let config = block.configuration;
    let get = |key: &str| config.get(key).and_then(Json::as_str).map(str::trim).filter(|it| !it.is_empty());
    let profile = get("data_provider_profile").unwrap_or("default");
    let profile = super::sql::render(profile, &[], block.globals)?;
    let config_path = block.root.join("io_config.yaml");
    let pg = PgConfig::from_profile(&io_config::load_profile(&config_path, profile.trim(), block.root)?)?;
    let schema = get("data_provider_schema").map(str::to_owned).unwrap_or_else(|| pg.default_schema().to_owned());
    let env = block.globals.get("env").and_then(Json::as_str).unwrap_or("dev").to_owned();
    let mut messages = Vec::new();

    // Upstream tables: SQL parents on PostgreSQL are referenced, other parents the query
    // refers to are uploaded (replace) under their Mage table names.
    let parents = parents(block);
    let upstream_config = config.get("upstream_block_configuration").cloned().unwrap_or(Json::Null);
    let mut names = Vec::new();
    let mut uploads = Vec::new();
    for (idx, (input, parent)) in block.inputs.iter().zip(&parents).enumerate() {
        let own_table = upstream_config.get(&input.uuid).and_then(|it| it.get("table_name")).and_then(Json::as_str).map(str::to_owned);
        let (parent_schema, table) = if parent.is_pg_sql {
            let parent_schema = parent
                .configuration
                .get("data_provider_schema")
                .and_then(Json::as_str)
                .filter(|it| !it.trim().is_empty())
                .unwrap_or(&schema)
                .to_owned();
            (parent_schema, mage_table_name(block.pipeline, &input.uuid, &parent.configuration, &env))
        } else {
            (schema.clone(), own_table.unwrap_or_else(|| mage_table_name(block.pipeline, &input.uuid, &parent.configuration, &env)))
        };
        let referenced = {
            let compact: String = block.text.chars().filter(|ch| !ch.is_whitespace()).collect();
            compact.contains(&format!("{{{{df_{}}}}}", idx + 1)) || block.text.contains(&input.uuid)
        };
        if !parent.is_pg_sql && referenced {
            match input.outputs.first().map(|it| &it.value) {
                Some(Value::Frame(df)) => uploads.push((input.uuid.clone(), parent_schema.clone(), table.clone(), df.clone())),
                _ => messages.push(format!("No data in upstream block {}.", input.uuid)),
            }
        }
        names.push(qualified(&parent_schema, &table));
    }
    let query = replace_df_refs(block.text, &names);
    let query = super::sql::render(&query, block.inputs, block.globals)?;

    let mut conn = connect(&pg)?;
    conn.cancel = block.cancel.clone();
    for (uuid, parent_schema, table, df) in uploads {
        messages.push(format!("Exporting data from upstream block {uuid} to {parent_schema}.{table}."));
        conn.export(&df, &parent_schema, &table, WritePolicy::Replace).with_context(|| format!("cannot upload the output of {uuid}"))?;
    }

    let limit = config.get("limit_in_pipeline_run").or_else(|| config.get("limit")).and_then(Json::as_u64);
    let use_raw_sql = config.get("use_raw_sql").and_then(Json::as_bool).unwrap_or(false);
    if use_raw_sql {
        let statements = split_statements(&query);
        let Some((last, before)) = statements.split_last() else { return Ok((DataFrame::empty(), messages)) };
        let client = &mut conn.client;
        let df = block_on(&conn.rt, &conn.cancel, async {
            let tx = client.transaction().await.pg(|| "cannot begin a transaction".to_owned())?;
            for statement in before {
                tx.batch_execute(statement).await.pg(|| format!("block {} failed", block.uuid))?;
            }
            let df = if returns_rows(last) {
                let last = match limit {
                    Some(limit) => format!("SELECT * FROM ({last}) AS wand_q LIMIT {limit}"),
                    None => last.clone(),
                };
                read_query(&tx, &last).await.with_context(|| format!("block {} failed", block.uuid))?
            } else {
                tx.batch_execute(last).await.pg(|| format!("block {} failed", block.uuid))?;
                // Mage previews the table a CREATE/INSERT/UPDATE wrote.
                match written_table(last) {
                    Some(table) => {
                        read_query(&tx, &format!("SELECT * FROM {table} LIMIT {}", limit.unwrap_or(1000))).await.unwrap_or_default()
                    }
                    None => DataFrame::empty(),
                }
            };
            tx.commit().await.pg(|| "cannot commit".to_owned())?;
            anyhow::Ok(df)
        })?;
        return Ok((df, messages));
    }

    let table = mage_table_name(block.pipeline, block.uuid, config, &env);
    let policy = WritePolicy::parse(get("export_write_policy").unwrap_or("append"))?;
    let select = query.trim().trim_end_matches(';').trim().to_owned();
    let target = qualified(&schema, &table);
    let client = &mut conn.client;
    block_on(&conn.rt, &conn.cancel, async {
        let tx = client.transaction().await.pg(|| "cannot begin a transaction".to_owned())?;
        ensure_schema(&tx, &schema).await?;
        let exists = table_exists(&tx, &schema, &table).await?;
        let failed = || format!("block {} failed", block.uuid);
        match policy {
            WritePolicy::Fail if exists => anyhow::bail!("table {target} already exists and export_write_policy is `fail`"),
            WritePolicy::Replace => {
                let staged = qualified(&schema, &staging_name(&table));
                tx.batch_execute(&format!("CREATE TABLE {staged} AS {select}")).await.pg(failed)?;
                if exists {
                    tx.batch_execute(&format!("DROP TABLE {target}")).await.pg(|| format!("cannot drop {target}"))?;
                }
                tx.batch_execute(&format!("ALTER TABLE {staged} RENAME TO {}", quote_ident(&table)))
                    .await
                    .pg(|| format!("cannot rename {staged}"))?;
            }
            WritePolicy::Append if exists => tx.batch_execute(&format!("INSERT INTO {target} {select}")).await.pg(failed)?,
            _ => tx.batch_execute(&format!("CREATE TABLE {target} AS {select}")).await.pg(failed)?,
        }
        tx.commit().await.pg(|| format!("cannot commit the write to {target}"))
    })?;
    messages.push(format!("Wrote the result of {} to {schema}.{table} ({policy:?}).", block.uuid));
    let read = match limit {
        Some(limit) => format!("SELECT * FROM {target} LIMIT {limit}"),
        None => format!("SELECT * FROM {target}"),
    };
    let df = conn.query_frame(&read)?;
    Ok((df, messages))
}

// ------------------------------------------------------------------------------- io_request

/// Answers an `io_request` of the `mage_ai.io.postgres` shim (PROTOCOL.md §6.14): returns the
/// `io_reply` header and payload. Never fails: errors are replies.
/// Setting `cancel` (the run's cancel flag or timeout) abandons the work and rolls it back.
pub fn handle_io_request(header: &Json, payload: &[u8], cancel: &AtomicBool) -> (Json, Vec<u8>) {
    let mut reply = json!({"type": "io_reply", "id": header["id"], "io_id": header["io_id"]});
    match following(cancel, |flag| io_request(header, payload, flag)) {
        Ok((fields, payload)) => {
            reply["status"] = json!("ok");
            if let Json::Object(fields) = fields {
                reply.as_object_mut().unwrap().extend(fields);
            }
            (reply, payload)
        }
        Err(err) => {
            reply["status"] = json!("error");
            reply["message"] = json!(format!("{err:#}"));
            (reply, Vec::new())
        }
    }
}

fn io_request(header: &Json, payload: &[u8], cancel: Arc<AtomicBool>) -> anyhow::Result<(Json, Vec<u8>)> {
    let connect = |pg: &PgConfig| -> anyhow::Result<Conn> {
        let mut conn = connect(pg)?;
        conn.cancel = cancel.clone();
        Ok(conn)
    };
    let field = |key: &str| header.get(key).and_then(Json::as_str).filter(|it| !it.is_empty());
    let pg = match (field("config_path"), header.get("config").filter(|it| it.is_object())) {
        (_, Some(Json::Object(inline))) => {
            let values =
                inline.iter().map(|(key, value)| (key.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_owned))).collect();
            PgConfig::from_profile(&Profile { name: field("profile").unwrap_or("inline").to_owned(), file: PathBuf::new(), values })?
        }
        (Some(path), _) => PgConfig::load(Path::new(path), field("profile").unwrap_or("default"))?,
        (None, _) => anyhow::bail!("io_request without config_path or config"),
    };
    let schema = field("schema").map(str::to_owned).unwrap_or_else(|| pg.default_schema().to_owned());
    match field("op") {
        Some("export") => {
            let table = field("table").ok_or_else(|| anyhow::format_err!("export needs a table name"))?;
            let policy = WritePolicy::parse(field("if_exists").unwrap_or("replace"))?;
            let df = store::frame_from_ipc_stream(payload)?;
            let rows = connect(&pg)?
                .export(&df, &schema, table, policy)
                .with_context(|| format!("cannot export to {}.{table} with {}", schema, pg.describe()))?;
            Ok((json!({"rows": rows}), Vec::new()))
        }
        Some("load") => {
            let query = field("query").ok_or_else(|| anyhow::format_err!("load needs a query"))?;
            let df = connect(&pg)?.query_frame(query)?;
            let bytes = store::frame_to_ipc_stream(&df)?;
            Ok((json!({"encoding": "arrow", "rows": df.height()}), bytes))
        }
        Some("execute") => {
            let query = field("query").ok_or_else(|| anyhow::format_err!("execute needs SQL"))?;
            connect(&pg)?.execute(query)?;
            Ok((json!({}), Vec::new()))
        }
        Some("ping") => {
            connect(&pg)?.execute("SELECT 1")?;
            Ok((json!({}), Vec::new()))
        }
        other => anyhow::bail!("unknown io_request op {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_names() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("public", "t; DROP TABLE x"), "\"public\".\"t; DROP TABLE x\"");
        assert_eq!(mage_table_name("etl", "load data", &json!({}), "dev"), "dev_etl_load_data_v1");
        assert_eq!(mage_table_name("etl", "x", &json!({}), "prod"), "etl_x_v1");
        assert_eq!(mage_table_name("etl", "x", &json!({"data_provider_table": "t"}), "dev"), "t");
        assert!(staging_name(&"x".repeat(80)).len() <= 63);
        assert_eq!(
            replace_df_refs("SELECT * FROM {{df_1}} JOIN {{ df_2 }} {{ df_3 }} {{ x }}", &["a".into(), "b".into()]),
            "SELECT * FROM a JOIN b {{ df_3 }} {{ x }}"
        );
        assert_eq!(written_table("CREATE TABLE IF NOT EXISTS s.t(a int)").as_deref(), Some("s.t"));
        assert_eq!(written_table("insert into \"T\" values (1)").as_deref(), Some("\"T\""));
        assert_eq!(written_table("UPDATE ONLY t SET a = 1").as_deref(), Some("t"));
        assert_eq!(written_table("DROP TABLE t"), None);
        assert_eq!(
            split_statements("CREATE TABLE t (a text); -- c;\nINSERT INTO t VALUES ('x;y');\n"),
            ["CREATE TABLE t (a text)", "-- c;\nINSERT INTO t VALUES ('x;y')"]
        );
    }

    #[test]
    fn numeric_round_trips() {
        for (mantissa, scale) in
            [(0i128, 2u16), (12345, 2), (-12345, 2), (1, 0), (10_000, 0), (123_456_789_012_345_678, 6), (-5, 5), (99_990_000, 4)]
        {
            let mut buf = BytesMut::new();
            put_numeric(&mut buf, mantissa, scale);
            let field = &buf[4..];
            assert_eq!(numeric_to_i128(field, scale as usize).unwrap(), Some(mantissa), "{mantissa} e-{scale}");
            let expected = mantissa as f64 / 10f64.powi(scale as i32);
            assert!((numeric_to_f64(field).unwrap() - expected).abs() <= expected.abs() * 1e-12, "{mantissa} e-{scale}");
        }
    }

    #[test]
    fn unmappable_columns_are_named() {
        let list = Series::new("tags".into(), [Series::new("".into(), [1i64, 2])]);
        let df = DataFrame::new(1, vec![Column::new("ok".into(), [1i64]), list.into_column()]).unwrap();
        let err = plan(&df).err().unwrap().to_string();
        assert!(err.contains("`tags` (list[i64])"), "{err}");
        assert!(!err.contains("`ok`"), "{err}");
    }
}
