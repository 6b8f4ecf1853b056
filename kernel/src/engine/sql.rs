//! SQL blocks without `data_provider`: Mage's template rendering (spec 5.2) with minijinja, then
//! polars SQL over the upstream outputs. Blocks with a `data_provider` are refused, loudly.

use std::sync::Arc;

use anyhow::Context as _;
use minijinja::{Environment, UndefinedBehavior};
use polars::prelude::{DataFrame, IntoLazy, LazyFrame};
use polars::sql::SQLContext;

use super::store::{Output, Value, clean_name};

/// An upstream block as SQL sees it: its uuid and its outputs.
pub struct SqlInput {
    pub uuid: String,
    pub outputs: Arc<Vec<Output>>,
}

impl SqlInput {
    /// The frame registered for this parent (the first output, when it is a frame).
    fn frame(&self) -> Option<&DataFrame> {
        match self.outputs.first().map(|it| &it.value) {
            Some(Value::Frame(df)) if self.outputs.len() == 1 => Some(df),
            _ => None,
        }
    }

    /// The value Python code would receive (`L[0]` or `L`), as JSON, for `block_output`.
    fn json(&self) -> serde_json::Value {
        let one = |output: &Output| match &output.value {
            Value::Json(value) => value.clone(),
            Value::Frame(_) => serde_json::Value::String(clean_name(&self.uuid)),
            Value::Opaque { repr } => serde_json::Value::String(repr.clone()),
        };
        if self.outputs.len() == 1 { one(&self.outputs[0]) } else { serde_json::Value::Array(self.outputs.iter().map(one).collect()) }
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
    let outputs: Vec<(String, serde_json::Value)> = inputs.iter().map(|input| (input.uuid.clone(), input.json())).collect();
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
        if let Some(df) = input.frame() {
            ctx.register(&clean_name(&input.uuid), df.clone().lazy());
            ctx.register(&format!("df_{}", idx + 1), df.clone().lazy());
        }
    }
    let query = query.trim().trim_end_matches(';').trim();
    ctx.execute(query).and_then(LazyFrame::collect).with_context(|| format!("polars SQL failed in block {block_uuid}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;

    fn input(uuid: &str, df: DataFrame) -> SqlInput {
        SqlInput { uuid: uuid.into(), outputs: Arc::new(vec![Output { value: Value::Frame(df), mage_type: Some("dataframe".into()) }]) }
    }

    #[test]
    fn renders_mage_template_functions() {
        let inputs = [input("load/raw", df!("a" => [1i64]).unwrap())];
        let mut globals = serde_json::Map::new();
        globals.insert("limit".into(), serde_json::json!(5));
        let text = "SELECT * FROM {{df_1}} JOIN {{ block_output('load/raw') }} LIMIT {{ variables('limit') }} -- {{ limit }} {{ env_var('WAND_SURELY_UNSET_X', 'dflt') }}";
        assert_eq!(render(text, &inputs, &globals).unwrap(), "SELECT * FROM load_raw JOIN load_raw LIMIT 5 -- 5 dflt");
        assert!(render("{{ nope }}", &inputs, &globals).is_err());
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
}
