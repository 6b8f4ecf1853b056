//! Engine tests on temporary projects with the real Python worker.
//!
//! Python: `WAND_PYTHON`, else `<workspace>/.venv/bin/python` (create it with
//! `python3 -m venv .venv && .venv/bin/pip install pandas pyarrow polars pytest`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use pipeline::runrecord::{BlockStatus, RunRecord, RunStatus};
use pipeline::vfs::DiskVfs;
use wand_kernel::engine::{self, EngineEvent, Mode, RunOptions};

mod common;
use common::{B, copy_dir, pipeline_yaml, python};

struct TestProject {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl TestProject {
    fn new(project_yaml: &str, blocks: &[B<'_>], variables: &str) -> TestProject {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        std::fs::create_dir_all(root.join("pipelines/p")).unwrap();
        std::fs::write(root.join("metadata.yaml"), format!("variables_dir: .mage_data\n{project_yaml}")).unwrap();
        std::fs::write(root.join("pipelines/p/metadata.yaml"), pipeline_yaml(blocks, variables)).unwrap();
        TestProject { _dir: dir, root }
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn run(&self, options: RunOptions) -> (RunRecord, Vec<EngineEvent>) {
        run_project(&self.root, "p", options)
    }

    fn output(&self, block: &str, idx: usize) -> PathBuf {
        self.root.join(".mage_data/pipelines/p/.variables").join(block).join(format!("output_{idx}"))
    }

    fn json_output(&self, block: &str, idx: usize) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.output(block, idx).join("data.json")).unwrap()).unwrap()
    }
}

fn options() -> RunOptions {
    RunOptions { python: Some(python()), ..RunOptions::default() }
}

fn run_project(root: &Path, pipeline: &str, options: RunOptions) -> (RunRecord, Vec<EngineEvent>) {
    let project = pipeline::load::load_project(&DiskVfs, root);
    let mut events = Vec::new();
    let record = engine::run(&project, pipeline, &options, &mut |event| events.push(event.clone())).unwrap();
    (record, events)
}

fn statuses(record: &RunRecord) -> Vec<(String, BlockStatus)> {
    record.blocks.iter().map(|block| (block.uuid.clone(), block.status)).collect()
}

fn status(record: &RunRecord, uuid: &str) -> BlockStatus {
    record.blocks.iter().find(|block| block.uuid == uuid).unwrap_or_else(|| panic!("no block {uuid} in {record:#?}")).status
}

fn block<'a>(record: &'a RunRecord, uuid: &str) -> &'a pipeline::runrecord::BlockRun {
    record.blocks.iter().find(|block| block.uuid == uuid).unwrap()
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

const LOADER: &str = "@data_loader\ndef load(*args, **kwargs):\n    return {'n': 1}\n";

#[test]
fn taxi_embedded_end_to_end_then_changed_with_early_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nyc_taxi");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nyc_taxi"), &root);

    let (record, events) = run_project(&root, "taxi_embedded", options());
    assert_eq!(record.status, RunStatus::Succeeded, "{record:#?}\n{events:#?}");
    assert_eq!(
        statuses(&record),
        [
            ("load_taxi_data".to_owned(), BlockStatus::Succeeded),
            ("transform_taxi_data".to_owned(), BlockStatus::Succeeded),
            ("trips_per_day".to_owned(), BlockStatus::Succeeded),
            ("export_daily_to_parquet".to_owned(), BlockStatus::Succeeded),
        ]
    );
    assert!(root.join("output/trips_per_day.parquet").is_file());
    assert_eq!(block(&record, "load_taxi_data").rows, Some(10_000));
    assert_eq!(block(&record, "transform_taxi_data").rows, Some(9512));
    assert_eq!(block(&record, "transform_taxi_data").tests.iter().filter(|it| it.passed).count(), 4);
    assert!(stdout_of(&events, "export_daily_to_parquet").contains("Wrote "));
    let vars = root.join(".mage_data/pipelines/taxi_embedded/.variables");
    assert!(vars.join("transform_taxi_data/output_0/data.parquet").is_file());
    assert_eq!(std::fs::read_to_string(vars.join("transform_taxi_data/output_0/type.json")).unwrap(), r#"{"type":"dataframe"}"#);
    assert!(vars.join("trips_per_day/wand.json").is_file());
    let latest = pipeline::runrecord::read_latest(&root.join(".mage_data"), "taxi_embedded").unwrap();
    assert_eq!(latest, record);

    // Nothing changed: everything is reused.
    let (record, _) = run_project(&root, "taxi_embedded", RunOptions { mode: Mode::Changed, ..options() });
    assert!(record.blocks.iter().all(|block| block.status == BlockStatus::Reused), "{record:#?}");

    // A comment in the SQL: it re-runs, its output is the same, so the exporter stays fresh.
    let sql = root.join("transformers/trips_per_day.sql");
    let text = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(&sql, format!("-- a new comment\n{text}")).unwrap();
    let (record, events) = run_project(&root, "taxi_embedded", RunOptions { mode: Mode::Changed, ..options() });
    assert_eq!(
        statuses(&record),
        [
            ("load_taxi_data".to_owned(), BlockStatus::Reused),
            ("transform_taxi_data".to_owned(), BlockStatus::Reused),
            ("trips_per_day".to_owned(), BlockStatus::Succeeded),
            ("export_daily_to_parquet".to_owned(), BlockStatus::Reused),
        ],
        "{events:#?}"
    );
}

#[test]
fn arguments_follow_upstream_order_and_outputs_follow_mage_return_rules() {
    let p = TestProject::new(
        "",
        &[
            B("a", "data_loader", "python", &[], ""),
            B("b", "data_loader", "python", &[], ""),
            B("pair", "data_loader", "python", &[], ""),
            B("single", "data_loader", "python", &[], ""),
            B("nothing", "data_loader", "python", &[], ""),
            B("c", "transformer", "python", &["b", "a", "pair", "single", "nothing"], ""),
        ],
        "",
    );
    p.write("data_loaders/a.py", "@data_loader\ndef f():\n    return 'A'\n");
    p.write("data_loaders/b.py", "@data_loader\ndef f():\n    return 'B'\n");
    p.write(
        "data_loaders/pair.py",
        "@data_loader\ndef f():\n    return 1, {'x': 2}\n\n@test\ndef t(first, second):\n    assert first == 1 and second == {'x': 2}\n",
    );
    p.write("data_loaders/single.py", "@data_loader\ndef f():\n    return [5]\n");
    p.write("data_loaders/nothing.py", "@data_loader\ndef f():\n    print('nothing to return')\n");
    p.write(
        "transformers/c.py",
        "@transformer\ndef f(first, second, pair, single, nothing):\n    return [[first, second, pair, single, nothing]]\n",
    );
    let (record, events) = p.run(options());
    assert_eq!(record.status, RunStatus::Succeeded, "{record:#?}\n{events:#?}");
    assert_eq!(p.json_output("pair", 0), serde_json::json!(1));
    assert_eq!(p.json_output("pair", 1), serde_json::json!({"x": 2}));
    assert_eq!(block(&record, "pair").tests.len(), 1);
    assert!(block(&record, "pair").tests[0].passed);
    assert!(!p.output("nothing", 0).exists());
    assert_eq!(p.json_output("c", 0), serde_json::json!(["B", "A", [1, {"x": 2}], 5, []]));
}

#[test]
fn kwargs_only_with_double_star_kwargs() {
    let p = TestProject::new(
        "",
        &[
            B("plain", "data_loader", "python", &[], "configuration:\n  my_var: 7"),
            B("with_kwargs", "data_loader", "python", &[], "configuration:\n  my_var: 7"),
        ],
        "variables:\n  pipeline_var: from_pipeline\n  overridden: old\n",
    );
    p.write("data_loaders/plain.py", "@data_loader\ndef f():\n    return 'no kwargs needed'\n");
    p.write(
        "data_loaders/with_kwargs.py",
        "@data_loader\ndef f(**kwargs):\n    keys = ['env', 'pipeline_var', 'overridden', 'pipeline_uuid', 'block_uuid']\n    \
         out = {k: kwargs[k] for k in keys}\n    out['my_var'] = kwargs['configuration']['my_var']\n    \
         out['has_date'] = 'execution_date' in kwargs\n    out['repo'] = kwargs['repo_path'].endswith('proj')\n    return out\n",
    );
    let mut vars = serde_json::Map::new();
    vars.insert("overridden".into(), serde_json::json!("new"));
    let (record, events) = p.run(RunOptions { vars, ..options() });
    assert_eq!(record.status, RunStatus::Succeeded, "{record:#?}\n{events:#?}");
    assert_eq!(
        p.json_output("with_kwargs", 0),
        serde_json::json!({"env": "dev", "pipeline_var": "from_pipeline", "overridden": "new", "pipeline_uuid": "p",
            "block_uuid": "with_kwargs", "my_var": 7, "has_date": true, "repo": true})
    );
}

#[test]
fn failing_test_fails_the_block_and_isolates_its_branch() {
    let p = TestProject::new(
        "",
        &[
            B("load", "data_loader", "python", &[], ""),
            B("bad", "transformer", "python", &["load"], ""),
            B("bad_child", "data_exporter", "python", &["bad"], ""),
            B("raises", "transformer", "python", &["load"], ""),
            B("good", "transformer", "python", &["load"], ""),
            B("good_child", "data_exporter", "python", &["good"], ""),
        ],
        "",
    );
    p.write("data_loaders/load.py", LOADER);
    p.write(
        "transformers/bad.py",
        "@transformer\ndef f(d):\n    return d\n\n@test\ndef test_fails(out):\n    assert out['n'] == 2, 'n is not 2'\n",
    );
    p.write("data_exporters/bad_child.py", "@data_exporter\ndef f(d):\n    pass\n");
    p.write("transformers/raises.py", "@transformer\ndef f(d):\n    raise ValueError('boom')\n");
    p.write("transformers/good.py", "@transformer\ndef f(d):\n    return d['n'] + 1\n");
    p.write("data_exporters/good_child.py", "@data_exporter\ndef f(n):\n    print('got', n)\n");
    let (record, events) = p.run(options());
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(status(&record, "bad"), BlockStatus::Failed);
    assert_eq!(status(&record, "bad_child"), BlockStatus::Skipped);
    assert_eq!(status(&record, "raises"), BlockStatus::Failed);
    assert_eq!(status(&record, "good"), BlockStatus::Succeeded);
    assert_eq!(status(&record, "good_child"), BlockStatus::Succeeded);
    let bad = block(&record, "bad");
    assert_eq!(bad.tests.len(), 1);
    assert!(!bad.tests[0].passed);
    assert_eq!(bad.tests[0].message.as_deref(), Some("n is not 2"));
    assert_eq!(bad.error.as_ref().unwrap().evalue, "Failed to pass tests for block bad");
    let raises = block(&record, "raises").error.as_ref().unwrap();
    assert_eq!((raises.ename.as_str(), raises.evalue.as_str(), raises.line), ("ValueError", "boom", Some(3)));
    assert_eq!(stdout_of(&events, "good_child"), "got 2\n");

    // Without tests the test-failing block succeeds.
    let (record, _) = p.run(RunOptions { run_tests: false, ..options() });
    assert_eq!(status(&record, "bad"), BlockStatus::Succeeded);
}

#[test]
fn wrong_argument_count_is_mages_error() {
    let p = TestProject::new("", &[B("load", "data_loader", "python", &[], ""), B("t", "transformer", "python", &["load"], "")], "");
    p.write("data_loaders/load.py", LOADER);
    p.write("transformers/t.py", "@transformer\ndef f(a, b):\n    return a\n");
    let (record, _) = p.run(options());
    let error = block(&record, "t").error.clone().unwrap();
    assert!(error.evalue.starts_with("Block t may be missing upstream dependencies"), "{error:?}");
}

#[test]
fn retries_count_attempts() {
    let p = TestProject::new(
        "retry_config:\n  retries: 5\n  delay: 0\n",
        &[B("flaky", "data_loader", "python", &[], "retry_config:\n  retries: 2\n  delay: 0")],
        "",
    );
    p.write(
        "data_loaders/flaky.py",
        "import os\n\n@data_loader\ndef f(**kwargs):\n    path = os.path.join(kwargs['repo_path'], 'count.txt')\n    \
         n = int(open(path).read()) if os.path.exists(path) else 0\n    open(path, 'w').write(str(n + 1))\n    \
         if n < 2:\n        raise RuntimeError(f'attempt {n + 1} fails')\n    return n\n",
    );
    let (record, events) = p.run(options());
    assert_eq!(status(&record, "flaky"), BlockStatus::Succeeded, "{events:#?}");
    assert_eq!(block(&record, "flaky").attempts, 3);
    assert_eq!(events.iter().filter(|it| matches!(it, EngineEvent::BlockRetrying { .. })).count(), 2);

    // Out of retries: the block fails after 3 attempts.
    std::fs::write(p.root.join("count.txt"), "-5").unwrap();
    let (record, _) = p.run(options());
    assert_eq!(status(&record, "flaky"), BlockStatus::Failed);
    assert_eq!(block(&record, "flaky").attempts, 3);
}

fn chain_project() -> TestProject {
    let p = TestProject::new(
        "",
        &[
            B("load", "data_loader", "python", &[], ""),
            B("mid", "transformer", "python", &["load"], ""),
            B("leaf", "data_exporter", "python", &["mid"], ""),
            B("side", "transformer", "python", &["load"], ""),
        ],
        "",
    );
    p.write("data_loaders/load.py", LOADER);
    p.write(
        "transformers/mid.py",
        "import os\n\n@transformer\ndef f(d, **kwargs):\n    if os.path.exists(os.path.join(kwargs['repo_path'], 'fail')):\n        raise RuntimeError('flag')\n    return d['n'] * 10\n",
    );
    p.write("data_exporters/leaf.py", "@data_exporter\ndef f(x):\n    return x + 1\n");
    p.write("transformers/side.py", "@transformer\ndef f(d):\n    return d\n");
    p
}

fn ran(record: &RunRecord) -> Vec<&str> {
    record.blocks.iter().filter(|block| block.status == BlockStatus::Succeeded).map(|block| block.uuid.as_str()).collect()
}

#[test]
fn changed_runs_edited_blocks_and_descendants_with_early_cutoff() {
    let p = chain_project();
    let (record, _) = p.run(options());
    assert_eq!(ran(&record), ["load", "mid", "leaf", "side"]);
    let (record, _) = p.run(RunOptions { mode: Mode::Changed, ..options() });
    assert!(ran(&record).is_empty(), "{record:#?}");

    p.write("transformers/mid.py", "@transformer\ndef f(d):\n    return d['n'] * 100\n");
    let (record, events) = p.run(RunOptions { mode: Mode::Changed, ..options() });
    assert_eq!(ran(&record), ["mid", "leaf"]);
    assert!(events.iter().any(|it| matches!(it, EngineEvent::Stale { block, causes } if block == "mid" && causes[0].contains("code"))));
    assert_eq!(p.json_output("leaf", 0), serde_json::json!(101));

    // Same output after the edit: the descendants stay fresh.
    p.write("transformers/mid.py", "# a comment\n@transformer\ndef f(d):\n    return d['n'] * 100\n");
    let (record, _) = p.run(RunOptions { mode: Mode::Changed, ..options() });
    assert_eq!(ran(&record), ["mid"]);
    assert_eq!(status(&record, "leaf"), BlockStatus::Reused);

    // Runtime variables are inputs of every block.
    let mut vars = serde_json::Map::new();
    vars.insert("x".into(), serde_json::json!(1));
    let (record, _) = p.run(RunOptions { mode: Mode::Changed, vars, ..options() });
    assert_eq!(ran(&record), ["load", "mid", "leaf", "side"]);
}

#[test]
fn an_output_that_cannot_be_stored_fails_its_block_and_nothing_downstream_succeeds() {
    let p = chain_project();
    let (record, _) = p.run(options());
    assert_eq!(record.status, RunStatus::Succeeded);
    // The loader's variables folder becomes a file: its outputs cannot be written. Its
    // downstream blocks may already run on the outputs in the worker's memory, but none may
    // succeed (nor read the previous run's stored outputs).
    let dir = p.root.join(".mage_data/pipelines/p/.variables/load");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "not a folder").unwrap();
    let (record, _) = p.run(options());
    assert_eq!(record.status, RunStatus::Failed);
    let load = block(&record, "load");
    assert_eq!(load.status, BlockStatus::Failed);
    assert_eq!(load.error.as_ref().unwrap().ename, "OutputError", "{:?}", load.error);
    assert!(ran(&record).is_empty(), "{record:#?}");
    for uuid in ["mid", "leaf", "side"] {
        assert!(matches!(status(&record, uuid), BlockStatus::Failed | BlockStatus::Skipped), "{uuid}: {record:#?}");
    }
}

#[test]
fn a_frame_the_worker_cannot_write_fails_its_block() {
    let p = TestProject::new("", &[B("load", "data_loader", "python", &[], ""), B("next", "transformer", "python", &["load"], "")], "");
    p.write("data_loaders/load.py", "import pandas as pd\n\n@data_loader\ndef f():\n    return pd.DataFrame({'x': [1, 2]})\n");
    p.write("transformers/next.py", "@transformer\ndef f(df):\n    return len(df)\n");
    // The worker writes frames under .wand/staging; a file there makes that impossible.
    let wand_dir = p.root.join(".mage_data/pipelines/p/.wand");
    std::fs::create_dir_all(&wand_dir).unwrap();
    std::fs::write(wand_dir.join("staging"), "not a folder").unwrap();
    let (record, events) = p.run(options());
    let load = block(&record, "load");
    assert_eq!(load.status, BlockStatus::Failed, "{events:#?}");
    let err = load.error.as_ref().unwrap();
    assert_eq!(err.ename, "OutputError", "{err:?}");
    assert!(err.evalue.contains("could not write output 0"), "{err:?}");
    assert!(matches!(status(&record, "next"), BlockStatus::Failed | BlockStatus::Skipped), "{record:#?}");
    assert!(!p.output("load", 0).exists());
}

#[test]
fn a_frame_arrow_cannot_convert_is_kept_in_the_worker_and_used_downstream() {
    // A mixed-type object column: the worker's writer cannot convert it, so the frame is not
    // stored; it stays in the worker like any other Python object, and the block says so.
    let p = TestProject::new("", &[B("load", "data_loader", "python", &[], ""), B("next", "transformer", "python", &["load"], "")], "");
    p.write("data_loaders/load.py", "import pandas as pd\n\n@data_loader\ndef f():\n    return pd.DataFrame({'mixed': [1, 'two', 3.0]})\n");
    p.write("transformers/next.py", "@transformer\ndef f(df):\n    return df['mixed'].tolist()[1]\n");
    let (record, events) = p.run(options());
    assert_eq!(record.status, RunStatus::Succeeded, "{events:#?}");
    assert_eq!(p.json_output("next", 0), serde_json::json!("two"));
    let stored = p.output("load", 0);
    assert!(!stored.join("data.parquet").exists());
    assert_eq!(std::fs::read_to_string(stored.join("type.json")).unwrap(), r#"{"type":"custom_object"}"#);
    assert!(stdout_of(&events, "load").contains("output 0 cannot be converted to Arrow"), "{events:#?}");
}

#[test]
fn the_run_record_tells_the_time_spent_inside_the_blocks_function() {
    // Module-level code (imports) is not the block's function; its own time is Wand's to
    // count. SQL blocks have no such figure.
    let p = TestProject::new("", &[B("load", "data_loader", "python", &[], ""), B("q", "transformer", "sql", &["load"], "")], "");
    p.write("data_loaders/load.py", "import time\ntime.sleep(1.0)\n\n@data_loader\ndef f():\n    time.sleep(0.2)\n    return {'n': 1}\n");
    p.write("transformers/q.sql", "SELECT 1 AS one\n");
    let (record, events) = p.run(options());
    assert_eq!(record.status, RunStatus::Succeeded, "{events:#?}");
    let load = block(&record, "load");
    let user_s = load.user_s.expect("a Python block's time inside its function");
    // Sleeps never end early: the function took at least 0.2 s, and the block's whole time
    // holds the module's 1.0 s beside it (no bound on how late either may end).
    let elapsed = |from: &Option<String>, to: &Option<String>| {
        let at = |it: &Option<String>| chrono::DateTime::parse_from_rfc3339(it.as_deref().unwrap()).unwrap();
        (at(to) - at(from)).as_seconds_f64()
    };
    assert!(user_s >= 0.2, "{user_s}");
    assert!(user_s <= elapsed(&load.started_at, &load.finished_at) - 1.0, "{user_s} {load:?}");
    assert_eq!(block(&record, "q").user_s, None);
}

#[test]
fn a_frame_changed_in_place_downstream_is_stored_as_its_block_returned_it() {
    // The worker writes the loader's file while the transformer already runs on the same
    // frame and changes it in place: the stored output must not see that change.
    let p = TestProject::new("", &[B("load", "data_loader", "python", &[], ""), B("clobber", "transformer", "python", &["load"], "")], "");
    p.write(
        "data_loaders/load.py",
        "import numpy as np\nimport pandas as pd\n\n@data_loader\ndef f():\n    \
         return pd.DataFrame({'x': np.arange(2_000_000, dtype='float64'), 'y': np.ones(2_000_000)})\n",
    );
    p.write(
        "transformers/clobber.py",
        "@transformer\ndef f(df):\n    df.iloc[:, 0] = -1.0\n    df.iloc[:, 1] = -1.0\n    return float(df['x'].sum())\n",
    );
    let (record, events) = p.run(options());
    assert_eq!(record.status, RunStatus::Succeeded, "{events:#?}");
    assert_eq!(p.json_output("clobber", 0), serde_json::json!(-2_000_000.0));
    let parquet = p.output("load", 0).join("data.parquet");
    assert_eq!(pandas_reads(&parquet, "print(int(df['x'].sum()), int(df['y'].sum()))"), "1999999000000 2000000");
}

#[test]
fn resume_reruns_failed_and_skipped_blocks() {
    let p = chain_project();
    p.write("fail", "");
    let (record, _) = p.run(options());
    assert_eq!(statuses(&record)[1..3], [("mid".to_owned(), BlockStatus::Failed), ("leaf".to_owned(), BlockStatus::Skipped)]);
    assert_eq!(ran(&record), ["load", "side"]);
    std::fs::remove_file(p.root.join("fail")).unwrap();
    let (record, _) = p.run(RunOptions { mode: Mode::Resume, ..options() });
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(ran(&record), ["mid", "leaf"]);
    assert_eq!(status(&record, "load"), BlockStatus::Reused);
    assert_eq!(p.json_output("leaf", 0), serde_json::json!(11));
}

#[test]
fn block_runs_after_its_missing_or_stale_ancestors_only() {
    let p = chain_project();
    let (record, _) = p.run(RunOptions { block: Some("mid".into()), ..options() });
    assert_eq!(ran(&record), ["load", "mid"]);
    assert_eq!(record.blocks.len(), 2);
    let (record, _) = p.run(RunOptions { block: Some("leaf".into()), ..options() });
    assert_eq!(ran(&record), ["leaf"]);
    assert_eq!(statuses(&record)[..2], [("load".to_owned(), BlockStatus::Reused), ("mid".to_owned(), BlockStatus::Reused)]);
}

#[test]
fn a_kept_worker_runs_later_runs_and_takes_their_inputs_from_the_stored_outputs() {
    let p =
        TestProject::new("", &[B("load", "data_loader", "python", &[], ""), B("times_ten", "transformer", "python", &["load"], "")], "");
    p.write(
        "data_loaders/load.py",
        "import os\n\n@data_loader\ndef f(**kwargs):\n    return int(open(os.path.join(kwargs['repo_path'], 'n.txt')).read())\n",
    );
    p.write("transformers/times_ten.py", "@transformer\ndef f(n):\n    return n * 10\n");
    let slot = engine::WorkerSlot::default();
    let kept = || RunOptions { worker: Some(slot.clone()), ..options() };

    p.write("n.txt", "1");
    let (record, _) = p.run(kept());
    assert_eq!(record.status, RunStatus::Succeeded, "{record:#?}");
    let pid = slot.pid().expect("the worker stays in the slot after the run");
    assert_eq!(p.json_output("times_ten", 0), serde_json::json!(10));

    // Another run with a worker of its own stores a new output of `load` ...
    p.write("n.txt", "2");
    let (record, _) = p.run(options());
    assert_eq!(record.status, RunStatus::Succeeded, "{record:#?}");
    // ... which the kept worker must use, not the value it held from its own run.
    let (record, _) = p.run(RunOptions { block: Some("times_ten".into()), ..kept() });
    assert_eq!(status(&record, "load"), BlockStatus::Reused);
    assert_eq!(status(&record, "times_ten"), BlockStatus::Succeeded);
    assert_eq!(p.json_output("times_ten", 0), serde_json::json!(20));
    assert_eq!(slot.pid(), Some(pid), "the same worker ran both runs");

    // A kept worker that died is replaced.
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (record, _) = p.run(kept());
    assert_eq!(record.status, RunStatus::Succeeded, "{record:#?}");
    assert_ne!(slot.pid(), Some(pid));
    assert_eq!(p.json_output("times_ten", 0), serde_json::json!(20));
}

#[test]
fn a_crashed_worker_fails_its_block_and_the_next_block_runs() {
    let p = TestProject::new(
        "",
        &[
            B("load", "data_loader", "python", &[], ""),
            B("crash", "transformer", "python", &["load"], ""),
            B("after", "transformer", "python", &["load"], ""),
        ],
        "",
    );
    p.write("data_loaders/load.py", LOADER);
    p.write("transformers/crash.py", "import os\n\n@transformer\ndef f(d):\n    print('going down', flush=True)\n    os._exit(3)\n");
    p.write("transformers/after.py", "@transformer\ndef f(d):\n    return d['n'] + 41\n");
    let (record, _) = p.run(RunOptions { max_parallel: 1, ..options() });
    let crash = block(&record, "crash");
    assert_eq!(crash.status, BlockStatus::Failed);
    assert_eq!(crash.error.as_ref().unwrap().ename, "WorkerLost");
    assert_eq!(status(&record, "after"), BlockStatus::Succeeded);
    assert_eq!(p.json_output("after", 0), serde_json::json!(42));
}

#[test]
fn timeout_interrupts_a_block() {
    let p = TestProject::new(
        "",
        &[B("slow", "data_loader", "python", &[], "timeout: 1"), B("next", "transformer", "python", &["slow"], "")],
        "",
    );
    p.write("data_loaders/slow.py", "import time\n\n@data_loader\ndef f():\n    time.sleep(60)\n");
    p.write("transformers/next.py", "@transformer\ndef f(x):\n    return x\n");
    let (record, _) = p.run(options());
    assert_eq!(block(&record, "slow").error.as_ref().unwrap().ename, "TimeoutError");
    assert_eq!(status(&record, "next"), BlockStatus::Skipped);
}

#[test]
fn cancel_records_a_cancelled_run() {
    let p = TestProject::new("", &[B("slow", "data_loader", "python", &[], ""), B("next", "transformer", "python", &["slow"], "")], "");
    p.write("data_loaders/slow.py", "import time\n\n@data_loader\ndef f():\n    print('sleeping', flush=True)\n    time.sleep(60)\n");
    p.write("transformers/next.py", "@transformer\ndef f(x):\n    return x\n");
    let options = options();
    let cancel = options.cancel.clone();
    let project = pipeline::load::load_project(&DiskVfs, &p.root);
    let record = engine::run(&project, "p", &options, &mut |event| {
        if matches!(event, EngineEvent::Stream { text, .. } if text.contains("sleeping")) {
            cancel.store(true, Ordering::SeqCst);
        }
    })
    .unwrap();
    assert_eq!(record.status, RunStatus::Cancelled);
    assert_eq!(statuses(&record), [("slow".to_owned(), BlockStatus::Cancelled), ("next".to_owned(), BlockStatus::Cancelled)]);
    let latest = pipeline::runrecord::read_latest(&p.root.join(".mage_data"), "p").unwrap();
    assert_eq!(latest.status, RunStatus::Cancelled);
}

#[test]
fn sql_blocks_on_polars_and_data_providers_refused() {
    let p = TestProject::new(
        "",
        &[
            B("load", "data_loader", "python", &[], ""),
            B("agg", "transformer", "sql", &["load"], ""),
            B("pg", "transformer", "sql", &["load"], "configuration:\n  data_provider: bigquery\n  data_provider_profile: default"),
            B("check", "data_exporter", "python", &["agg"], ""),
            B("notes", "markdown", "markdown", &[], ""),
        ],
        "variables:\n  min_x: 1\n",
    );
    p.write(
        "data_loaders/load.py",
        "import pandas as pd\n\n@data_loader\ndef f():\n    return pd.DataFrame({'g': ['a', 'a', 'b'], 'x': [1, 2, 3]})\n",
    );
    p.write(
        "transformers/agg.sql",
        "SELECT g, SUM(x) AS total FROM {{ df_1 }} WHERE x >= {{ variables('min_x') }} AND x >= {{ min_x }} GROUP BY g ORDER BY g\n",
    );
    p.write("transformers/pg.sql", "SELECT * FROM {{ df_1 }}\n");
    p.write("data_exporters/check.py", "@data_exporter\ndef f(df):\n    return df.to_dict(orient='list')\n");
    p.write("markdowns/notes.md", "# notes\n");
    let (record, events) = p.run(options());
    assert_eq!(status(&record, "agg"), BlockStatus::Succeeded, "{events:#?}");
    assert_eq!(block(&record, "agg").rows, Some(2));
    assert_eq!(p.json_output("check", 0), serde_json::json!({"g": ["a", "b"], "total": [3, 3]}));
    assert_eq!(
        block(&record, "pg").error.as_ref().unwrap().evalue,
        "not supported yet: data_provider bigquery (block pg); Wand runs SQL blocks without data_provider on polars"
    );
    assert!(record.blocks.iter().all(|block| block.uuid != "notes"), "markdown blocks are not run");

    // A frame read back from the variables dir reaches a Python block (a new worker).
    std::fs::remove_dir_all(p.output("check", 0)).unwrap();
    let (record, events) = p.run(RunOptions { block: Some("check".into()), ..options() });
    assert_eq!(
        statuses(&record),
        [("load".to_owned(), BlockStatus::Reused), ("agg".to_owned(), BlockStatus::Reused), ("check".to_owned(), BlockStatus::Succeeded)],
        "{events:#?}"
    );
    assert_eq!(p.json_output("check", 0), serde_json::json!({"g": ["a", "b"], "total": [3, 3]}));
}

#[test]
fn outputs_are_readable_by_pandas_and_markdown_upstreams_give_nothing() {
    let p = TestProject::new("", &[B("notes", "markdown", "markdown", &[], ""), B("load", "data_loader", "python", &["notes"], "")], "");
    p.write("markdowns/notes.md", "# notes\n");
    p.write(
        "data_loaders/load.py",
        "import pandas as pd\n\n@data_loader\ndef f(notes):\n    assert notes == []\n    \
         return pd.DataFrame({'when': pd.to_datetime(['2024-01-01', '2024-01-02']), 'x': [1.5, None], 's': ['a', None]})\n",
    );
    let (record, events) = p.run(options());
    assert_eq!(status(&record, "load"), BlockStatus::Succeeded, "{events:#?}");
    let parquet = p.output("load", 0).join("data.parquet");
    assert_eq!(pandas_reads(&parquet, "print(len(df), str(df['when'].dtype).startswith('datetime64'), df['x'].isna().sum())"), "2 True 1");
}

/// What `code` prints after pandas read `parquet` into `df`, as Mage would read it.
fn pandas_reads(parquet: &Path, code: &str) -> String {
    let out = std::process::Command::new(python())
        .args(["-c", &format!("import sys, pandas; df = pandas.read_parquet(sys.argv[1]); {code}")])
        .arg(parquet)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn cli_json_events_and_exit_code() {
    let p = TestProject::new("", &[B("ok", "data_loader", "python", &[], ""), B("bad", "data_loader", "python", &[], "")], "");
    p.write("data_loaders/ok.py", LOADER);
    p.write("data_loaders/bad.py", "@data_loader\ndef f():\n    raise KeyError('x')\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wand"))
        .args(["run", p.root.to_str().unwrap(), "p", "--json"])
        .env("WAND_PYTHON", python())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(events.first().unwrap()["event"], "run_started");
    assert_eq!(events.last().unwrap()["event"], "run_finished");
    assert_eq!(events.last().unwrap()["status"], "failed");
    assert!(events.iter().any(|it| it["event"] == "block_finished" && it["block"] == "ok" && it["status"] == "succeeded"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wand"))
        .args(["run", p.root.to_str().unwrap(), "p", "--block", "ok", "--no-test"])
        .env("WAND_PYTHON", python())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.contains("block  status"), "{summary}");
}

#[test]
fn missing_pandas_fails_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A Python without pandas: the system one without site-packages.
    let fake = dir.path().join("python");
    std::fs::write(&fake, "#!/bin/sh\nexec python3 -S \"$@\"\n").unwrap();
    std::process::Command::new("chmod").args(["+x", fake.to_str().unwrap()]).status().unwrap();
    let p = TestProject::new("", &[B("load", "data_loader", "python", &[], "")], "");
    p.write("data_loaders/load.py", LOADER);
    let project = pipeline::load::load_project(&DiskVfs, &p.root);
    let err = engine::run(&project, "p", &RunOptions { python: Some(fake), ..RunOptions::default() }, &mut |_| {}).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("python3 -m venv .venv && .venv/bin/pip install pandas pyarrow"), "{text}");
    assert!(text.contains("WAND_PYTHON="), "{text}");
}

#[test]
fn ctrl_c_cancels_the_cli_run() {
    use std::io::BufRead;
    let p = TestProject::new("", &[B("slow", "data_loader", "python", &[], ""), B("next", "transformer", "python", &["slow"], "")], "");
    p.write("data_loaders/slow.py", "import time\n\n@data_loader\ndef f():\n    print('sleeping', flush=True)\n    time.sleep(60)\n");
    p.write("transformers/next.py", "@transformer\ndef f(x):\n    return x\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wand"))
        .args(["run", p.root.to_str().unwrap(), "p"])
        .env("WAND_PYTHON", python())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("slow | sleeping") {
            break;
        }
    }
    std::process::Command::new("kill").args(["-s", "INT", &child.id().to_string()]).status().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest:#?}");
    let latest = pipeline::runrecord::read_latest(&p.root.join(".mage_data"), "p").unwrap();
    assert_eq!(latest.status, RunStatus::Cancelled);
    assert_eq!(statuses(&latest), [("slow".to_owned(), BlockStatus::Cancelled), ("next".to_owned(), BlockStatus::Cancelled)]);
}
