//! `wand validate` and `wand dag` as a user runs them: exit codes, rendering, formats.

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn wand(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wand")).args(args).env("NO_COLOR", "1").output().expect("wand runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn clean_project_exits_zero() {
    let (code, stdout, _) = wand(&["validate", examples().join("nyc_taxi").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("no problems found"), "{stdout}");
}

#[test]
fn broken_project_exits_one_with_rustc_style_output() {
    let (code, stdout, _) = wand(&["validate", examples().join("broken/pipelines/dag_errors").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("error[dependency-cycle]: dependency cycle: cycle_a -> cycle_b -> cycle_c -> cycle_a"), "{stdout}");
    assert!(stdout.contains("pipelines/dag_errors/metadata.yaml:31:5"), "{stdout}");
    assert!(stdout.contains("31 |   - cycle_c\n   |     ^^^^^^^"), "{stdout}");
    assert!(stdout.contains("= help:"), "{stdout}");
    assert!(stdout.trim_end().ends_with("19 errors, 6 warnings"), "{stdout}");
}

#[test]
fn one_pipeline_as_json() {
    let root = examples().join("broken");
    let (code, stdout, _) = wand(&["validate", root.to_str().unwrap(), "--pipeline", "bad_triggers", "--format", "json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json output");
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|it| it["code"] == "invalid-trigger"));
    assert_eq!(items[0]["line"], 11);
    assert_eq!(items[0]["column"], 22);
    assert!(items[0]["file"].as_str().unwrap().ends_with("pipelines/bad_triggers/triggers.yaml"));
}

#[test]
fn unreadable_input_exits_two() {
    let (code, _, stderr) = wand(&["validate", "/nonexistent/wand/project"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("does not exist"), "{stderr}");
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = wand(&["validate", empty.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no Mage project"), "{stderr}");
    let (code, _, stderr) = wand(&["validate", examples().join("nyc_taxi").to_str().unwrap(), "--pipeline", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no pipeline `nope`"), "{stderr}");
}

#[test]
fn dag_in_three_formats() {
    let project = examples().join("nyc_taxi");
    let project = project.to_str().unwrap();
    let (code, mermaid, _) = wand(&["dag", "taxi_embedded", "--project", project]);
    assert_eq!(code, 0);
    assert!(mermaid.starts_with("flowchart TD\n"));
    assert!(mermaid.contains("load_taxi_data --> transform_taxi_data"), "{mermaid}");
    let (_, dot, _) = wand(&["dag", "taxi_embedded", "--project", project, "--format", "dot"]);
    assert!(dot.contains("\"transform_taxi_data\" -> \"trips_per_day\";"), "{dot}");
    let (_, svg, _) = wand(&["dag", "taxi_embedded", "--project", project, "--format", "svg"]);
    assert!(svg.starts_with("<svg"));
    for uuid in ["load_taxi_data", "transform_taxi_data", "trips_per_day", "export_daily_to_parquet"] {
        assert!(svg.contains(&format!("data-uuid=\"{uuid}\"")), "{uuid} missing from svg");
    }
    assert_eq!(svg.matches("class=\"edge\"").count(), 3);
    let (code, _, stderr) = wand(&["dag", "nope", "--project", project]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no pipeline `nope`"));
}
