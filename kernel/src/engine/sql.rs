//! SQL blocks without `data_provider`: Mage's template rendering (spec 5.2) with minijinja, then
//! polars SQL over the upstream outputs. Blocks with a `data_provider` are refused, loudly.

use std::sync::Arc;

use anyhow::Context as _;
use minijinja::{Environment, UndefinedBehavior};
use polars::prelude::{DataFrame, IntoLazy, LazyFrame, PlRefPath, ScanArgsParquet};
use polars::sql::SQLContext;

use super::store::{Output, Value, clean_name};

/// An upstream block as SQL sees it: its uuid, its outputs, the table a query reads and the
/// value `block_output('uuid')` renders.
pub struct SqlInput {
    pub uuid: String,
    /// The outputs in memory (a Postgres block uploads them); empty for [`SqlInput::stored`].
    pub outputs: Arc<Vec<Output>>,
    /// The table registered for this parent (its only output, when that is a frame).
    table: Option<LazyFrame>,
    /// The value Python code would receive (`L[0]` or `L`), as JSON: a frame is its table name.
    value: serde_json::Value,
}

impl SqlInput {
    /// Outputs held in memory.
    pub fn new(uuid: String, outputs: Arc<Vec<Output>>) -> SqlInput {
        let table = match outputs.first().map(|it| &it.value) {
            Some(Value::Frame(df)) if outputs.len() == 1 => Some(df.clone().lazy()),
            _ => None,
        };
        let one = |output: &Output| match &output.value {
            Value::Json(value) => value.clone(),
            Value::Frame(_) => serde_json::Value::String(clean_name(&uuid)),
            Value::Opaque { repr } => serde_json::Value::String(repr.clone()),
        };
        let value = if outputs.len() == 1 { one(&outputs[0]) } else { serde_json::Value::Array(outputs.iter().map(one).collect()) };
        SqlInput { uuid, outputs, table, value }
    }

    /// Outputs in the variables dir, frames scanned lazily: a query reads only the columns and
    /// row groups it needs, and a block whose output it does not mention costs nothing.
    pub fn stored(uuid: String, dir: &std::path::Path, n: usize) -> anyhow::Result<SqlInput> {
        let mut values = Vec::new();
        let mut table = None;
        for idx in 0..n {
            let out_dir = dir.join(format!("output_{idx}"));
            let parquet = out_dir.join("data.parquet");
            if parquet.is_file() {
                if n == 1 {
                    let path = PlRefPath::try_from_path(&parquet)?;
                    table = Some(LazyFrame::scan_parquet(path, ScanArgsParquet::default())?);
                }
                values.push(serde_json::Value::String(clean_name(&uuid)));
            } else {
                let data = std::fs::read(out_dir.join("data.json"))
                    .with_context(|| format!("{} holds no data Wand can read", out_dir.display()))?;
                values.push(serde_json::from_slice(&data).with_context(|| format!("cannot read {}/data.json", out_dir.display()))?);
            }
        }
        let value = if n == 1 { values.remove(0) } else { serde_json::Value::Array(values) };
        Ok(SqlInput { uuid, outputs: Arc::new(Vec::new()), table, value })
    }
}

/// Fails for SQL blocks that need a database.
pub fn check_supported(block_uuid: &str, configuration: &serde_json::Value) -> anyhow::Result<()> {
    let provider = configuration.get("data_provider").and_then(serde_json::Value::as_str).map(str::trim).filter(|it| !it.is_empty());
    if let Some(provider) = provider {
        anyhow::bail!(
            "not supported yet: data_provider {provider} (block {block_uuid}); Wand runs SQL blocks without data_provider on polars"
        );
    }
    Ok(())
}

/// Renders a SQL block's template: `{{ df_N }}` is the N-th upstream block's table,
/// `block_output('uuid')`, `variables('x')`, `env_var('X', default)` and every global variable
/// as a bare name. Unknown names are errors (Mage's second render is strict).
pub fn render(template: &str, inputs: &[SqlInput], globals: &serde_json::Map<String, serde_json::Value>) -> anyhow::Result<String> {
    if !["{{", "{%", "{#"].iter().any(|open| template.contains(open)) {
        return Ok(template.to_owned()); // no template syntax: the text renders as itself
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let variables = globals.clone();
    env.add_function("variables", move |name: String| -> minijinja::Value {
        variables.get(&name).map(minijinja::Value::from_serialize).unwrap_or(minijinja::Value::from(()))
    });
    env.add_function("env_var", |name: String, default: Option<minijinja::Value>| -> minijinja::Value {
        match std::env::var(&name) {
            Ok(value) => minijinja::Value::from(value),
            Err(_) => default.unwrap_or(minijinja::Value::from(())),
        }
    });
    let outputs: Vec<(String, serde_json::Value)> = inputs.iter().map(|input| (input.uuid.clone(), input.value.clone())).collect();
    env.add_function("block_output", move |uuid: String| -> Result<minijinja::Value, minijinja::Error> {
        outputs.iter().find(|(it, _)| *it == uuid).map(|(_, value)| minijinja::Value::from_serialize(value)).ok_or_else(|| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("block_output('{uuid}'): `{uuid}` is not an upstream block"),
            )
        })
    });
    let mut context: serde_json::Map<String, serde_json::Value> = globals.clone();
    for (idx, input) in inputs.iter().enumerate() {
        context.insert(format!("df_{}", idx + 1), serde_json::Value::String(clean_name(&input.uuid)));
    }
    env.render_str(template, serde_json::Value::Object(context))
        .map_err(|err| anyhow::format_err!("cannot render the SQL template: {err:#}"))
}

/// Runs a SQL block on polars: upstream frames are tables named by their clean uuid and
/// `df_1..df_N`; the block's output is the query result.
pub fn run(
    block_uuid: &str,
    configuration: &serde_json::Value,
    text: &str,
    inputs: &[SqlInput],
    globals: &serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<DataFrame> {
    check_supported(block_uuid, configuration)?;
    let query = render(text, inputs, globals)?;
    let mut ctx = SQLContext::new();
    for (idx, input) in inputs.iter().enumerate() {
        if let Some(table) = &input.table {
            ctx.register(&clean_name(&input.uuid), table.clone());
            ctx.register(&format!("df_{}", idx + 1), table.clone());
        }
    }
    let query = query.trim().trim_end_matches(';').trim();
    ctx.execute(query).and_then(LazyFrame::collect).with_context(|| format!("polars SQL failed in block {block_uuid}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::store::Pending;
    use polars::df;

    fn input(uuid: &str, df: DataFrame) -> SqlInput {
        SqlInput::new(uuid.into(), Arc::new(vec![Output { value: Value::Frame(df), mage_type: Some("dataframe".into()) }]))
    }

    #[test]
    fn renders_mage_template_functions() {
        let inputs = [input("load/raw", df!("a" => [1i64]).unwrap())];
        let mut globals = serde_json::Map::new();
        globals.insert("limit".into(), serde_json::json!(5));
        let text = "SELECT * FROM {{df_1}} JOIN {{ block_output('load/raw') }} LIMIT {{ variables('limit') }} -- {{ limit }} {{ env_var('WAND_SURELY_UNSET_X', 'dflt') }}";
        assert_eq!(render(text, &inputs, &globals).unwrap(), "SELECT * FROM load_raw JOIN load_raw LIMIT 5 -- 5 dflt");
        assert!(render("{{ nope }}", &inputs, &globals).is_err());
        assert_eq!(render("SELECT '}}' AS x\n", &inputs, &globals).unwrap(), "SELECT '}}' AS x\n");
    }

    #[test]
    fn runs_on_polars_and_refuses_data_providers() {
        let inputs = [input("trips", df!("day" => ["a", "a", "b"], "x" => [1i64, 2, 3]).unwrap())];
        let df = run(
            "per_day",
            &serde_json::json!({}),
            "-- sum per day\nSELECT day, SUM(x) AS total FROM {{ df_1 }} GROUP BY day ORDER BY day;",
            &inputs,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(df.shape(), (2, 2));
        let err = run("per_day", &serde_json::json!({"data_provider": "postgres"}), "SELECT 1", &inputs, &Default::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not supported yet: data_provider postgres (block per_day); Wand runs SQL blocks without data_provider on polars"
        );
    }

    #[test]
    fn stored_outputs_are_scanned_from_the_variables_dir() {
        let dir = tempfile::tempdir().unwrap();
        let frame = Output { value: Value::Frame(df!("x" => [1i64, 2, 3]).unwrap()), mage_type: Some("dataframe".into()) };
        let json = Output { value: Value::Json(serde_json::json!({"rows": 3})), mage_type: None };
        super::super::store::write_outputs(&dir.path().join("trips"), &[Pending::Value(frame)]).unwrap();
        super::super::store::write_outputs(&dir.path().join("meta"), &[Pending::Value(json)]).unwrap();
        let inputs = [
            SqlInput::stored("trips".into(), &dir.path().join("trips"), 1).unwrap(),
            SqlInput::stored("meta".into(), &dir.path().join("meta"), 1).unwrap(),
        ];
        let text = "SELECT SUM(x) AS total, '{{ block_output('meta')['rows'] }}' AS rows FROM {{ df_1 }} JOIN {{ block_output('trips') }} USING (x)";
        let df = run("cell", &serde_json::json!({}), text, &inputs, &Default::default()).unwrap();
        assert_eq!(df.column("total").unwrap().i64().unwrap().get(0), Some(6));
        assert_eq!(df.column("rows").unwrap().str().unwrap().get(0), Some("3"));
        assert!(SqlInput::stored("gone".into(), &dir.path().join("gone"), 1).is_err());
    }
}
