//! The server through a real client connection: temp projects, JSON snapshots of what the
//! client receives.

mod common;

#[allow(unused_imports)]
use common::write;
use common::{Client, Options, apply_edits, pos};
use insta::assert_json_snapshot;
use serde_json::{Value, json};

fn compact(client: &Client, all: &std::collections::BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (uri, diagnostics) in all {
        let file = uri.replace(&client.uri(""), "");
        for diagnostic in diagnostics.as_array().unwrap() {
            let start = &diagnostic["range"]["start"];
            out.push(format!(
                "{file}:{}:{} {}",
                start["line"].as_u64().unwrap() + 1,
                start["character"].as_u64().unwrap() + 1,
                diagnostic["code"].as_str().unwrap()
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_example_publishes_every_expected_diagnostic() {
    let mut client = Client::start(|root| common::copy_dir(&common::example("broken"), root), Options::default()).await;
    let all = client.take_diagnostics();
    // Exactly the table of examples/broken/EXPECTED.md (line:col 1-based).
    assert_json_snapshot!(compact(&client, &all));
    let dag = &all[&client.uri("pipelines/dag_errors/metadata.yaml")];
    let cycle = dag.as_array().unwrap().iter().find(|it| it["code"] == "dependency-cycle").unwrap();
    assert_json_snapshot!(client.redact(cycle));
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_example_has_no_diagnostics() {
    let mut client = Client::start(|root| common::copy_dir(&common::example("nyc_taxi"), root), Options::default()).await;
    let all = client.take_diagnostics();
    assert!(all.values().all(|it| it.as_array().unwrap().is_empty()), "{all:#?}");
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hundred_edits_in_a_burst_apply_in_order() {
    let mut client = Client::start(common::shop, Options::default()).await;
    let rel = "transformers/clean_orders.py";
    let mut text = client.open(rel, "python");
    // 400 single-character edits, sent without waiting: inserts at the end of line 2, then
    // deletions and inserts that only come out right when applied in order.
    for idx in 0..400 {
        let ch = char::from(b'a' + (idx % 26) as u8);
        let line = 2;
        let line_len = text.lines().nth(line).unwrap().chars().map(char::len_utf16).sum::<usize>();
        let (range, new) = if idx % 5 == 4 {
            // delete the previous character
            (json!({"start": {"line": line, "character": line_len - 1}, "end": {"line": line, "character": line_len}}), String::new())
        } else {
            (json!({"start": {"line": line, "character": line_len}, "end": {"line": line, "character": line_len}}), ch.to_string())
        };
        let edit = json!({"range": range, "text": new});
        text = apply_edits(&text, &[json!({"range": edit["range"], "newText": edit["text"]})]);
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": client.uri(rel), "version": idx + 2}, "contentChanges": [edit]}),
        );
    }
    let result = client.request("wand/documentText", json!({"uri": client.uri(rel)})).await;
    assert_eq!(result["version"], 401);
    assert_eq!(result["text"].as_str().unwrap(), text);
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_with_non_ascii_text_in_utf16_and_utf8() {
    for utf8 in [false, true] {
        let mut client = Client::start(common::shop, Options { utf8, ..Default::default() }).await;
        let rel = "transformers/summary.sql";
        client.open(rel, "sql");
        // Line 0 is "-- totals é 😀": replace the emoji (2 UTF-16 units, 4 bytes) with "x".
        let (start, end) = if utf8 { (13, 17) } else { (12, 14) };
        let change = json!({"range": {"start": {"line": 0, "character": start}, "end": {"line": 0, "character": end}}, "text": "x"});
        client
            .notify("textDocument/didChange", json!({"textDocument": {"uri": client.uri(rel), "version": 2}, "contentChanges": [change]}));
        // Then insert "🙂" after "é" (column 11 in UTF-16, 12 in bytes).
        let at = if utf8 { 12 } else { 11 };
        let change = json!({"range": {"start": {"line": 0, "character": at}, "end": {"line": 0, "character": at}}, "text": "🙂"});
        client
            .notify("textDocument/didChange", json!({"textDocument": {"uri": client.uri(rel), "version": 3}, "contentChanges": [change]}));
        let result = client.request("wand/documentText", json!({"uri": client.uri(rel)})).await;
        assert_eq!(result["text"].as_str().unwrap().lines().next().unwrap(), "-- totals é🙂 x", "utf8 = {utf8}");
        // Positions the server sends are in the same encoding: the df_1 reference on line 1.
        let definition = client
            .request("textDocument/definition", json!({"textDocument": {"uri": client.uri(rel)}, "position": {"line": 1, "character": 26}}))
            .await;
        assert_eq!(definition[0]["originSelectionRange"]["start"], json!({"line": 1, "character": 24}));
        client.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_file_change_updates_every_pipeline_that_uses_it() {
    let mut client = Client::start(common::shop, Options::default()).await;
    assert!(client.take_diagnostics().values().all(|it| it.as_array().unwrap().is_empty()));
    let rel = "transformers/clean_orders.py";
    client.open(rel, "python");
    client.diagnostics(rel).await;
    // Two parameters, one upstream block in both pipelines: one diagnostic per pipeline.
    client.change_all(rel, 2, &common::CLEAN.replace("(orders, *args, **kwargs)", "(orders, extra)"));
    let published = client.diagnostics(rel).await;
    assert_eq!(published["version"], 2);
    assert_json_snapshot!(client.redact(&published));
    // Fixed again: the file's diagnostics go away, published as an empty list.
    client.change_all(rel, 3, common::CLEAN);
    let published = client.diagnostics(rel).await;
    assert_eq!(published["diagnostics"], json!([]));
    assert_eq!(published["version"], 3);
    // A pipeline change reaches the block files it uses: without upstream blocks in `report`,
    // clean_orders' function takes one argument too many there.
    let yaml = "pipelines/report/metadata.yaml";
    client.open(yaml, "yaml");
    let text = common::REPORT.replace("  upstream_blocks:\n  - load_orders\n", "  upstream_blocks: []\n");
    client.change_all(yaml, 2, &text);
    let published = client.diagnostics(rel).await;
    let messages: Vec<&str> = published["diagnostics"].as_array().unwrap().iter().map(|it| it["message"].as_str().unwrap()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("has 0 upstream blocks in pipeline `report`"), "{messages:?}");
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_yaml_shows_the_syntax_error_and_keeps_navigation() {
    let mut client = Client::start(common::shop, Options::default()).await;
    let yaml = "pipelines/etl/metadata.yaml";
    client.open(yaml, "yaml");
    client.diagnostics(yaml).await;
    let broken = common::ETL.replace("name: etl\n", "name: etl\nbad: [\n");
    client.change_all(yaml, 2, &broken);
    let published = client.diagnostics(yaml).await;
    let codes: Vec<&str> = published["diagnostics"].as_array().unwrap().iter().map(|it| it["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["yaml-syntax"]);
    // The upstream uuid of clean_orders still leads to the loader's file.
    let definition = client
        .request(
            "textDocument/definition",
            json!({"textDocument": {"uri": client.uri(yaml)}, "position": pos(&broken, "[load_orders]", 0, 2)}),
        )
        .await;
    assert_eq!(definition[0]["targetUri"], client.uri("data_loaders/load_orders.py"));
    client.change_all(yaml, 3, common::ETL);
    assert_eq!(client.diagnostics(yaml).await["diagnostics"], json!([]));
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_before_the_index_is_built_wait_for_it() {
    let mut client = Client::start(common::shop, Options { early: true, ..Options::default() }).await;
    client.open("transformers/clean_orders.py", "python");
    let uri = client.uri("transformers/clean_orders.py");
    let dag = client.request("wand/dag", json!({"uri": uri})).await;
    assert_eq!(dag["pipeline"], "etl", "{dag}");
    let at = json!({"textDocument": {"uri": uri}, "position": pos(common::CLEAN, "orders,", 0, 1)});
    let param = client.request("textDocument/definition", at).await;
    assert_eq!(param[0]["targetUri"], client.uri("data_loaders/load_orders.py"), "{param}");
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_from_yaml_sql_python_and_block_files() {
    let mut client = Client::start(common::shop, Options::default()).await;
    let yaml = "pipelines/etl/metadata.yaml";
    let text = common::ETL;
    let base = client.uri("");
    let at = |rel: &str, position: Value| json!({"textDocument": {"uri": format!("{base}/{rel}")}, "position": position});
    // From an upstream uuid: a LocationLink whose origin is exactly the uuid.
    let from_yaml = client.request("textDocument/definition", at(yaml, pos(text, "[load_orders]", 0, 3))).await;
    assert_json_snapshot!("definition_from_upstream_uuid", client.redact(&from_yaml));
    // From `{{ df_1 }}` and `block_output('clean_orders')` in SQL.
    let sql = std::fs::read_to_string(client.root.join("transformers/summary.sql")).unwrap();
    let df = client.request("textDocument/definition", at("transformers/summary.sql", pos(&sql, "df_1", 0, 1))).await;
    assert_eq!(df[0]["targetUri"], client.uri("transformers/clean_orders.py"));
    let output = client.request("textDocument/definition", at("transformers/summary.sql", pos(&sql, "clean_orders", 0, 0))).await;
    assert_eq!(output[0]["targetUri"], client.uri("transformers/clean_orders.py"));
    // From a Python block function's parameter: the upstream block, in both pipelines (same file).
    let param = client.request("textDocument/definition", at("transformers/clean_orders.py", pos(common::CLEAN, "orders,", 0, 1))).await;
    assert_json_snapshot!("definition_from_parameter", client.redact(&param));
    // From a block file to its entries in the pipelines.
    let entries = client.request("textDocument/definition", at("transformers/clean_orders.py", json!({"line": 2, "character": 4}))).await;
    let targets: Vec<&str> = entries.as_array().unwrap().iter().map(|it| it["targetUri"].as_str().unwrap()).collect();
    assert_eq!(targets, [client.uri("pipelines/etl/metadata.yaml"), client.uri("pipelines/report/metadata.yaml")]);
    // From a data_provider_profile value to the io_config profile.
    let profile = client.request("textDocument/definition", at(yaml, pos(text, "dev", 0, 1))).await;
    assert_eq!(profile[0]["targetUri"], client.uri("io_config.yaml"));
    assert_eq!(profile[0]["targetSelectionRange"]["start"], json!({"line": 3, "character": 0}));
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_and_rename_across_pipelines() {
    let mut client = Client::start(common::shop, Options::default()).await;
    let yaml = "pipelines/etl/metadata.yaml";
    let position = pos(common::ETL, "[clean_orders]", 0, 1);
    let refs = client
        .request(
            "textDocument/references",
            json!({"textDocument": {"uri": client.uri(yaml)}, "position": position, "context": {"includeDeclaration": true}}),
        )
        .await;
    assert_json_snapshot!("references_clean_orders", client.redact(&refs));
    let prepare =
        client.request("textDocument/prepareRename", json!({"textDocument": {"uri": client.uri(yaml)}, "position": position})).await;
    assert_eq!(prepare, json!({"start": {"line": 5, "character": 22}, "end": {"line": 5, "character": 34}}));
    let edit = client
        .request("textDocument/rename", json!({"textDocument": {"uri": client.uri(yaml)}, "position": position, "newName": "tidy_orders"}))
        .await;
    assert_json_snapshot!("rename_clean_orders", client.redact(&edit));
    let taken = client
        .request("textDocument/rename", json!({"textDocument": {"uri": client.uri(yaml)}, "position": position, "newName": "summary"}))
        .await;
    assert!(taken["error"]["message"].as_str().unwrap().contains("already exists"));
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_symbols_and_code_lenses() {
    let mut client = Client::start(common::shop, Options::default()).await;
    let symbols =
        client.request("textDocument/documentSymbol", json!({"textDocument": {"uri": client.uri("pipelines/etl/metadata.yaml")}})).await;
    assert_json_snapshot!("symbols_etl", symbols);
    let lenses =
        client.request("textDocument/codeLens", json!({"textDocument": {"uri": client.uri("transformers/clean_orders.py")}})).await;
    assert_json_snapshot!("code_lens_clean_orders", client.redact(&lenses));
    client.shutdown().await;
}

#[track_caller]
fn labels(completion: &Value) -> Vec<String> {
    let Some(list) = completion.as_array() else { panic!("not a list: {completion}") };
    list.iter().map(|it| it["label"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_of_uuids_values_keys_profiles_and_df() {
    let mut client = Client::start(common::shop, Options::default()).await;
    let yaml = "pipelines/etl/metadata.yaml";
    client.open(yaml, "yaml");
    let complete = |client: &Client, rel: &str, position: Value| json!({"textDocument": {"uri": client.uri(rel)}, "position": position});
    // Upstream of load_orders: neither itself nor its descendants (they would close a cycle).
    let text = common::ETL
        .replace("  upstream_blocks: []\n  downstream_blocks: [clean_orders]", "  upstream_blocks: [\n  downstream_blocks: [clean_orders]");
    client.change_all(yaml, 2, &text);
    let result = client.request("textDocument/completion", complete(&client, yaml, pos(&text, "upstream_blocks: [", 0, 18))).await;
    assert_eq!(labels(&result), Vec::<String>::new());
    // Upstream of summary as a block list item: load_orders only (clean_orders is listed).
    let text = common::ETL.replace("  upstream_blocks: [clean_orders]\n", "  upstream_blocks:\n  - clean_orders\n  - \n");
    client.change_all(yaml, 3, &text);
    let result = client.request("textDocument/completion", complete(&client, yaml, pos(&text, "  - \n", 0, 4))).await;
    assert_eq!(labels(&result), ["load_orders"]);
    // Downstream of summary: nothing upstream of it.
    let result = client.request("textDocument/completion", complete(&client, yaml, pos(&text, "downstream_blocks: []", 0, 20))).await;
    assert_eq!(labels(&result), Vec::<String>::new());
    client.change_all(yaml, 4, common::ETL);
    let result = client.request("textDocument/completion", complete(&client, yaml, pos(common::ETL, "type: transformer", 0, 6))).await;
    assert!(labels(&result).contains(&"data_exporter".to_owned()));
    let result = client.request("textDocument/completion", complete(&client, yaml, pos(common::ETL, "language: sql", 0, 10))).await;
    assert_eq!(labels(&result), ["python", "sql", "r", "yaml", "markdown"]);
    let result =
        client.request("textDocument/completion", complete(&client, yaml, pos(common::ETL, "data_provider_profile: dev", 0, 23))).await;
    assert_eq!(labels(&result), ["default", "dev"]);
    let text = common::ETL.replace("  language: sql\n", "  language: sql\n  exec\n");
    client.change_all(yaml, 5, &text);
    let result = client.request("textDocument/completion", complete(&client, yaml, pos(&text, "  exec\n", 0, 6))).await;
    assert!(labels(&result).contains(&"executor_type".to_owned()));
    // `{{ ` in SQL: df_1 and block_output of the upstream block.
    let sql = "transformers/summary.sql";
    let sql_text = std::fs::read_to_string(client.root.join(sql)).unwrap();
    let result = client.request("textDocument/completion", complete(&client, sql, pos(&sql_text, "df_1", 0, 0))).await;
    assert_eq!(labels(&result), ["df_1", "block_output('clean_orders')"]);
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hover_describes_the_block() {
    let mut client = Client::start(common::shop, Options::default()).await;
    let yaml = "pipelines/etl/metadata.yaml";
    let hover = client
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": client.uri(yaml)}, "position": pos(common::ETL, "[clean_orders]", 0, 2)}),
        )
        .await;
    assert_json_snapshot!("hover_clean_orders", hover);
    client.shutdown().await;
}

/// The first code action whose title starts with `title`, applied to `text`.
fn apply_action(actions: &Value, title: &str, text: &str) -> (String, Value) {
    let action = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["title"].as_str().unwrap().starts_with(title))
        .unwrap_or_else(|| panic!("no `{title}` in {actions:#}"));
    let changes = action["edit"]["documentChanges"].as_array().unwrap();
    let edits: Vec<Value> = changes[changes.len() - 1]["edits"].as_array().unwrap().clone();
    (apply_edits(text, &edits), action.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_actions_fix_edges_files_and_decorators() {
    let mut client = Client::start(|root| common::copy_dir(&common::example("broken"), root), Options::default()).await;
    client.forget_diagnostics();
    let yaml = "pipelines/dag_errors/metadata.yaml";
    let text = client.open(yaml, "yaml");
    client.diagnostics(yaml).await;
    let everything = json!({"start": {"line": 0, "character": 0}, "end": {"line": 200, "character": 0}});
    let request = |client: &Client, rel: &str, range: Value| json!({"textDocument": {"uri": client.uri(rel)}, "range": range, "context": {"diagnostics": []}});
    let actions = client.request("textDocument/codeAction", request(&client, yaml, everything.clone())).await;
    let titles: Vec<&str> = actions.as_array().unwrap().iter().map(|it| it["title"].as_str().unwrap()).collect();
    assert_json_snapshot!("code_action_titles_dag_errors", titles);
    // Agreeing downstream lists: the asymmetric-edge diagnostic goes away, nothing else changes.
    let (fixed, action) = apply_action(&actions, "Make downstream_blocks agree", &text);
    assert_json_snapshot!("code_action_agree_edits", client.redact(&action["edit"]));
    client.change_all(yaml, 2, &fixed);
    let codes = |published: &Value| {
        published["diagnostics"].as_array().unwrap().iter().map(|it| it["code"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let after = codes(&client.diagnostics(yaml).await);
    assert!(!after.contains(&"asymmetric-edge".to_owned()) && after.contains(&"dependency-cycle".to_owned()), "{after:?}");
    // Removing the dangling upstream reference.
    let actions = client.request("textDocument/codeAction", request(&client, yaml, everything.clone())).await;
    let (fixed, _) = apply_action(&actions, "Remove `load_trip`", &fixed);
    client.change_all(yaml, 3, &fixed);
    let after = codes(&client.diagnostics(yaml).await);
    assert!(!after.contains(&"unknown-upstream".to_owned()), "{after:?}");
    // A missing block file, created from a template.
    let files = "pipelines/file_errors/metadata.yaml";
    client.open(files, "yaml");
    let actions = client.request("textDocument/codeAction", request(&client, files, everything.clone())).await;
    let create = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["title"].as_str().unwrap().starts_with("Create `data_loaders/load_missing.py`"))
        .unwrap();
    assert_json_snapshot!("code_action_create_file", client.redact(&create["edit"]));
    // A missing decorator.
    let py = "transformers/transform_no_decorator.py";
    let source = client.open(py, "python");
    let actions = client.request("textDocument/codeAction", request(&client, py, everything)).await;
    let (fixed, _) = apply_action(&actions, "Add `@transformer`", &source);
    client.change_all(py, 2, &fixed);
    loop {
        let published = client.diagnostics(py).await;
        if published["version"] == 2 {
            assert_eq!(published["diagnostics"], json!([]), "{fixed}");
            break;
        }
    }
    client.shutdown().await;
}

fn run_record(client: &Client, clean_status: &str, test_passed: bool) -> Value {
    json!({
        "version": 1, "run_id": "r1", "pipeline_uuid": "etl", "project": client.root, "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:01Z", "status": if clean_status == "failed" { "failed" } else { "succeeded" },
        "blocks": [
            {"uuid": "load_orders", "status": "succeeded", "attempts": 1, "started_at": null, "finished_at": null, "rows": 2, "columns": 1,
             "file": "data_loaders/load_orders.py", "tests": [{"name": "test_output", "passed": true, "message": null, "line": 6, "failed_line": null}], "error": null},
            {"uuid": "clean_orders", "status": clean_status, "attempts": 1, "started_at": null, "finished_at": null, "rows": null, "columns": null,
             "file": "transformers/clean_orders.py",
             "tests": [{"name": "test_not_empty", "passed": test_passed, "message": if test_passed { Value::Null } else { json!("no rows") }, "line": 7, "failed_line": 8}],
             "error": if clean_status == "failed" { json!({"ename": "KeyError", "evalue": "'id'", "traceback": [], "line": 3}) } else { Value::Null }},
            {"uuid": "summary", "status": "skipped", "attempts": 0, "started_at": null, "finished_at": null, "rows": null, "columns": null, "file": null, "tests": [], "error": null}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_records_show_failed_tests_and_blocks_and_the_dag() {
    let mut client = Client::start(common::shop, Options { dynamic_watch: true, ..Default::default() }).await;
    // The watcher is registered dynamically, run records included.
    let registration = client.notification("client/registerCapability").await;
    let globs: Vec<&str> = registration["registrations"][0]["registerOptions"]["watchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["globPattern"].as_str().unwrap())
        .collect();
    assert!(globs.contains(&"**/.wand/runs/latest.json"), "{globs:?}");
    client.forget_diagnostics();
    let latest = client.root.join(".mage_data/pipelines/etl/.wand/runs/latest.json");
    std::fs::create_dir_all(latest.parent().unwrap()).unwrap();
    std::fs::write(&latest, run_record(&client, "failed", false).to_string()).unwrap();
    let latest_uri = format!("file://{}", latest.display());
    client.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": latest_uri, "type": 1}]}));
    let test = client.diagnostics("transformers/clean_orders.py").await;
    assert_json_snapshot!("failed_test_diagnostic", client.redact(&test));
    let block = client.diagnostics("pipelines/etl/metadata.yaml").await;
    assert_json_snapshot!("block_failed_diagnostic", client.redact(&block));
    let dag = client.request("wand/dag", json!({"uri": client.uri("transformers/summary.sql")})).await;
    assert_json_snapshot!("dag_etl", client.redact(&dag));
    let same = client.request("wand/dag", json!({"project": client.uri(""), "pipeline": "etl"})).await;
    assert_eq!(same, dag);
    // The code lens and the hover show the last run too.
    let lenses =
        client.request("textDocument/codeLens", json!({"textDocument": {"uri": client.uri("transformers/clean_orders.py")}})).await;
    assert_eq!(lenses[0]["command"]["title"], "etl: upstream load_orders · downstream summary · last run: failed");
    let hover = client.request("textDocument/hover", json!({"textDocument": {"uri": client.uri("pipelines/etl/metadata.yaml")}, "position": pos(common::ETL, "[clean_orders]", 0, 2)})).await;
    assert!(hover["contents"]["value"].as_str().unwrap().contains("- last run: failed\n  `KeyError: 'id'`"), "{hover}");
    // The next run passes: both are cleared. This time found by polling on save.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&latest, run_record(&client, "succeeded", true).to_string()).unwrap();
    client.open("transformers/clean_orders.py", "python");
    client.notify("textDocument/didSave", json!({"textDocument": {"uri": client.uri("transformers/clean_orders.py")}}));
    loop {
        let test = client.diagnostics("transformers/clean_orders.py").await;
        if test["diagnostics"] == json!([]) {
            break;
        }
    }
    assert_eq!(client.diagnostics("pipelines/etl/metadata.yaml").await["diagnostics"], json!([]));
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_file_events_reload_block_files() {
    let mut client = Client::start(|root| common::copy_dir(&common::example("broken"), root), Options::default()).await;
    let yaml = "pipelines/file_errors/metadata.yaml";
    let before = client.take_diagnostics()[&client.uri(yaml)].clone();
    assert!(before.as_array().unwrap().iter().any(|it| it["code"] == "missing-block-file"));
    // The missing loader appears on disk: its diagnostic goes away.
    common::write(&client.root, "data_loaders/load_missing.py", "@data_loader\ndef load_data(*args, **kwargs):\n    return 1\n");
    client.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": client.uri("data_loaders/load_missing.py"), "type": 1}]}));
    let after = client.diagnostics(yaml).await;
    let codes: Vec<&str> = after["diagnostics"].as_array().unwrap().iter().map(|it| it["code"].as_str().unwrap()).collect();
    assert!(!codes.contains(&"missing-block-file"), "{codes:?}");
    assert_eq!(codes.len(), before.as_array().unwrap().len() - 1);
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_finds_nested_projects_and_platform_sub_projects() {
    let mut client = Client::start(
        |root| {
            common::write(root, "platform/settings.yaml", "projects:\n  sales: {}\n  ops: {}\n");
            common::shop(&root.join("platform/sales"));
            common::shop(&root.join("platform/ops"));
            common::shop(&root.join("code/elsewhere/shop"));
        },
        Options::default(),
    )
    .await;
    // Every project's files were analysed: the same SQL block in each of the three.
    for project in ["platform/sales", "platform/ops", "code/elsewhere/shop"] {
        let sql = format!("{project}/transformers/summary.sql");
        let text = std::fs::read_to_string(client.root.join(&sql)).unwrap();
        let df = client
            .request("textDocument/definition", json!({"textDocument": {"uri": client.uri(&sql)}, "position": pos(&text, "df_1", 0, 1)}))
            .await;
        assert_eq!(df[0]["targetUri"], client.uri(&format!("{project}/transformers/clean_orders.py")), "{project}");
    }
    client.shutdown().await;
}
