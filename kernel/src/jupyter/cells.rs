//! What a notebook cell is: a block cell (`%%block`, `%%transformer ...`), a SQL scratch cell,
//! line magics, or plain Python for the scratch namespace. Pure.

use pipeline::{BlockType, Language};

/// The block types a cell may create.
pub const CELL_TYPES: &[BlockType] =
    &[BlockType::DataLoader, BlockType::Transformer, BlockType::DataExporter, BlockType::Custom, BlockType::Sensor];

pub const MAGICS: &[(&str, &str)] = &[
    ("%pipeline", "%pipeline UUID [--create]: bind this notebook to a pipeline (--create makes a new one)"),
    ("%%block", "%%block UUID: the body is block UUID's code; running the cell saves it and runs the block"),
    ("%%data_loader", "%%data_loader UUID [--upstream A B] [--sql|--lang sql|python] [--profile P]: create or change a block"),
    ("%%transformer", "%%transformer UUID [--upstream A B] [--sql] [--profile P]: create or change a block"),
    ("%%data_exporter", "%%data_exporter UUID [--upstream A B] [--sql] [--profile P]: create or change a block"),
    ("%%custom", "%%custom UUID [--upstream A B]: create or change a block"),
    ("%%sensor", "%%sensor UUID [--upstream A B]: create or change a block"),
    ("%%sql", "%%sql: polars SQL over block outputs (tables named by block uuid)"),
    ("%status", "%status: every block with its state (fresh, stale, never run)"),
    ("%dag", "%dag: the pipeline's DAG as SVG, coloured by state"),
    ("%run", "%run [--changed]: run the whole pipeline (or only stale blocks)"),
    ("%reactive", "%reactive on|off: re-run stale descendants at once (on) or only mark them (off)"),
    ("%vars", "%vars: the pipeline's variables and the block outputs in the scratch namespace"),
    ("%help", "%help: this list"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCell {
    pub uuid: String,
    /// `None` for `%%block UUID` (an existing block, unchanged).
    pub block_type: Option<BlockType>,
    /// `--upstream A B`; `None` when not given (keep the current edges).
    pub upstream: Option<Vec<String>>,
    pub language: Option<Language>,
    pub profile: Option<String>,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Magic {
    Pipeline { uuid: String, create: bool },
    Status,
    Dag,
    Run { changed: bool },
    Reactive(Option<bool>),
    Vars,
    Help,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Block(BlockCell),
    Sql(String),
    /// Line magics at the top of a cell, then Python (possibly empty).
    Code {
        magics: Vec<Magic>,
        python: String,
    },
}

/// Splits a cell; `Err` says what is wrong with a magic line.
pub fn parse(code: &str) -> Result<Cell, String> {
    let trimmed = code.trim_start_matches(['\n', '\r', ' ', '\t']);
    if let Some(rest) = trimmed.strip_prefix("%%") {
        let (first, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let words: Vec<&str> = first.split_whitespace().collect();
        let Some((&name, args)) = words.split_first() else { return Err("a cell magic needs a name, e.g. %%block UUID".into()) };
        if name == "sql" {
            return Ok(Cell::Sql(body.to_owned()));
        }
        let block_type = match name {
            "block" => None,
            other => match BlockType::parse(other).filter(|it| CELL_TYPES.contains(it)) {
                Some(it) => Some(it),
                None => return Err(format!("unknown cell magic %%{other}; see %help")),
            },
        };
        return parse_block(block_type, args, body).map(Cell::Block);
    }
    let mut magics = Vec::new();
    let mut lines = code.lines().peekable();
    let mut consumed = 0;
    while let Some(line) = lines.peek() {
        let line = line.trim();
        if line.is_empty() && magics.is_empty() {
            consumed += 1;
            lines.next();
            continue;
        }
        let Some(magic) = line.strip_prefix('%') else { break };
        magics.push(parse_line_magic(magic)?);
        consumed += 1;
        lines.next();
    }
    let python: Vec<&str> = code.lines().skip(consumed).collect();
    Ok(Cell::Code { magics, python: python.join("\n") })
}

fn parse_line_magic(text: &str) -> Result<Magic, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else { return Err("`%` alone is not a magic; see %help".into()) };
    let flags = |allowed: &[&str]| -> Result<(), String> {
        match args.iter().find(|arg| arg.starts_with("--") && !allowed.contains(arg)) {
            Some(bad) => Err(format!("%{name} has no option {bad}")),
            None => Ok(()),
        }
    };
    match name {
        "pipeline" => {
            flags(&["--create"])?;
            let uuid = args.iter().find(|arg| !arg.starts_with("--")).ok_or("usage: %pipeline UUID [--create]")?;
            Ok(Magic::Pipeline { uuid: (*uuid).to_owned(), create: args.contains(&"--create") })
        }
        "status" => Ok(Magic::Status),
        "dag" => Ok(Magic::Dag),
        "run" => {
            flags(&["--changed"])?;
            Ok(Magic::Run { changed: args.contains(&"--changed") })
        }
        "reactive" => match args.first().copied() {
            None => Ok(Magic::Reactive(None)),
            Some("on") => Ok(Magic::Reactive(Some(true))),
            Some("off") => Ok(Magic::Reactive(Some(false))),
            Some(other) => Err(format!("usage: %reactive on|off (not `{other}`)")),
        },
        "vars" => Ok(Magic::Vars),
        "help" | "lsmagic" => Ok(Magic::Help),
        other => Err(format!("unknown magic %{other}; see %help")),
    }
}

fn parse_block(block_type: Option<BlockType>, args: &[&str], body: &str) -> Result<BlockCell, String> {
    let mut cell = BlockCell { uuid: String::new(), block_type, upstream: None, language: None, profile: None, body: body.to_owned() };
    let mut idx = 0;
    while idx < args.len() {
        match args[idx] {
            "--upstream" => {
                let mut ups = Vec::new();
                while idx + 1 < args.len() && !args[idx + 1].starts_with("--") {
                    idx += 1;
                    ups.push(args[idx].trim_matches(',').to_owned());
                }
                cell.upstream = Some(ups.into_iter().filter(|it| !it.is_empty()).collect());
            }
            "--sql" => cell.language = Some(Language::Sql),
            "--lang" => {
                idx += 1;
                cell.language = Some(match args.get(idx).copied() {
                    Some("sql") => Language::Sql,
                    Some("python") => Language::Python,
                    other => return Err(format!("--lang takes sql or python, not {}", other.unwrap_or("nothing"))),
                });
            }
            "--profile" => {
                idx += 1;
                cell.profile = Some(args.get(idx).ok_or("--profile needs a name")?.to_string());
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            uuid if cell.uuid.is_empty() => cell.uuid = uuid.to_owned(),
            extra => return Err(format!("unexpected `{extra}` after the block uuid (use --upstream A B)")),
        }
        idx += 1;
    }
    if cell.uuid.is_empty() {
        return Err("the block cell needs a block uuid, e.g. %%transformer clean --upstream load".into());
    }
    if cell.block_type.is_none() && (cell.upstream.is_some() || cell.language.is_some() || cell.profile.is_some()) {
        return Err(format!("%%block takes only a uuid; to change the block, write its type: %%transformer {} --upstream ...", cell.uuid));
    }
    Ok(cell)
}

/// The first line of the cell for a block (what `wand notebook` writes).
pub fn block_header(uuid: &str) -> String {
    format!("%%block {uuid}")
}

/// Python's `is_complete` heuristic: open brackets, a trailing `:` or `\` mean more lines follow.
pub fn is_complete(code: &str) -> &'static str {
    if code.trim_start().starts_with("%%") {
        return "complete";
    }
    let mut depth = 0i32;
    let mut in_string: Option<char> = None;
    let mut chars = code.chars().peekable();
    while let Some(ch) = chars.next() {
        match in_string {
            Some(quote) => {
                if ch == '\\' {
                    chars.next();
                } else if ch == quote {
                    in_string = None;
                }
            }
            None => match ch {
                '#' => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '\'' | '"' => in_string = Some(ch),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            },
        }
    }
    if depth < 0 {
        return "invalid";
    }
    let last = code.trim_end_matches([' ', '\t']).lines().last().unwrap_or("").trim_end();
    if depth > 0 || in_string.is_some() || last.ends_with(':') || last.ends_with('\\') {
        return "incomplete";
    }
    // An indented block is complete only after an empty line.
    if code.lines().count() > 1 && code.lines().last().is_some_and(|line| line.starts_with([' ', '\t'])) && !code.ends_with("\n\n") {
        return "incomplete";
    }
    "complete"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_cells() {
        let cell = parse("%%transformer clean --upstream load other --sql --profile dev\nSELECT 1").unwrap();
        assert_eq!(
            cell,
            Cell::Block(BlockCell {
                uuid: "clean".into(),
                block_type: Some(BlockType::Transformer),
                upstream: Some(vec!["load".into(), "other".into()]),
                language: Some(Language::Sql),
                profile: Some("dev".into()),
                body: "SELECT 1".into(),
            })
        );
        assert!(matches!(parse("%%block load\nx = 1").unwrap(), Cell::Block(BlockCell { block_type: None, .. })));
        assert!(parse("%%block").is_err());
        assert!(parse("%%block a --upstream b").is_err());
        assert!(parse("%%chart x").is_err());
        assert_eq!(parse("%%sql\nSELECT 1").unwrap(), Cell::Sql("SELECT 1".into()));
    }

    #[test]
    fn line_magics_then_python() {
        assert_eq!(
            parse("%pipeline etl --create\n%reactive off\nx = 1\ny").unwrap(),
            Cell::Code {
                magics: vec![Magic::Pipeline { uuid: "etl".into(), create: true }, Magic::Reactive(Some(false))],
                python: "x = 1\ny".into()
            }
        );
        assert_eq!(parse("1 + 1").unwrap(), Cell::Code { magics: vec![], python: "1 + 1".into() });
        assert!(parse("%nope").is_err());
        assert_eq!(parse("%run --changed").unwrap(), Cell::Code { magics: vec![Magic::Run { changed: true }], python: String::new() });
    }

    #[test]
    fn completeness() {
        assert_eq!(is_complete("x = 1"), "complete");
        assert_eq!(is_complete("def f():"), "incomplete");
        assert_eq!(is_complete("f(1,"), "incomplete");
        assert_eq!(is_complete("x = ')'"), "complete");
        assert_eq!(is_complete("def f():\n    return 1"), "incomplete");
        assert_eq!(is_complete(")"), "invalid");
    }
}
