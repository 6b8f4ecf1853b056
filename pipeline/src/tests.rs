//! Data-driven tests of loading and validation: each test is a multi-file fixture and a
//! snapshot of exactly what `wand validate` prints for it.
//!
//! A fixture is one string; `//- path` starts a file (relative to the project root).

use std::path::{Path, PathBuf};

use crate::render::{self, Styles};
use crate::vfs::{MemVfs, Vfs};

const ROOT: &str = "/fixture";

fn fixture(text: &str) -> MemVfs {
    let mut vfs = MemVfs::default();
    let mut current: Option<(PathBuf, String)> = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("//- ") {
            if let Some((path, body)) = current.take() {
                vfs.insert(path, &body);
            }
            current = Some((Path::new(ROOT).join(path.trim()), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((path, body)) = current {
        vfs.insert(path, &body);
    }
    vfs
}

fn render_all(vfs: &MemVfs, diagnostics: &[crate::Diagnostic]) -> String {
    let read = |path: &Path| vfs.read(path);
    let styles = Styles { color: false };
    let mut out: String = diagnostics.iter().map(|it| render::human(it, Path::new(ROOT), &read, &styles)).collect::<Vec<_>>().join("\n");
    out.push_str(&render::summary(diagnostics));
    out
}

fn check(text: &str) -> String {
    let vfs = fixture(text);
    let project = crate::load::load_project(&vfs, Path::new(ROOT));
    render_all(&vfs, &crate::check::project(&project))
}

const LOADER: &str = "@data_loader\ndef load_data(*args, **kwargs):\n    return 1\n";

macro_rules! snapshot {
    ($name:ident, $fixture:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), check($fixture));
        }
    };
}

snapshot!(
    yaml_syntax,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: load
  type: data_loader: python
"
);

snapshot!(
    invalid_pipeline,
    "//- pipelines/etl/metadata.yaml
- just
- a list
"
);

snapshot!(
    missing_uuid_and_type,
    "//- pipelines/etl/metadata.yaml
blocks:
- name: no uuid here
  type: data_loader
- uuid: no_type
  upstream_blocks: []
"
);

snapshot!(
    invalid_values,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: load
  type: data_loder
- uuid: clean
  type: transformer
  language: julia
- uuid: export
  type: data_exporter
  status: done
  executor_type: kubernetes
  executor_config: null
//- data_exporters/export.py
@data_exporter
def export_data(*args, **kwargs):
    pass
"
);

snapshot!(
    unknown_edges_and_asymmetry,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: load
  type: data_loader
  upstream_blocks: []
  downstream_blocks: [report]
- uuid: clean
  type: transformer
  upstream_blocks: [load, lod]
  downstream_blocks: []
//- data_loaders/load.py
@data_loader
def load_data(*args, **kwargs):
    return 1
//- transformers/clean.py
@transformer
def transform(data, *args, **kwargs):
    return data
"
);

snapshot!(
    dependency_cycle,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: a
  type: custom
  upstream_blocks: [c]
  downstream_blocks: [b]
- uuid: b
  type: custom
  upstream_blocks: [a]
  downstream_blocks: [c]
- uuid: c
  type: custom
  upstream_blocks: [b]
  downstream_blocks: [a]
//- custom/a.py
@custom
def f(x):
    return x
//- custom/b.py
@custom
def f(x):
    return x
//- custom/c.py
@custom
def f(x):
    return x
"
);

snapshot!(
    duplicate_uuid_across_lists,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: notify
  type: custom
callbacks:
- uuid: notify
  type: callback
  upstream_blocks: [notify]
//- custom/notify.py
@custom
def f():
    pass
//- callbacks/notify.py
@callback('success')
def cb(parent, **kwargs):
    pass
"
);

snapshot!(
    missing_file_and_file_source,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: load
  type: data_loader
- uuid: export
  type: data_exporter
  upstream_blocks: [load]
  configuration:
    file_source:
      path: data_exporters/export_v1.py
//- data_exporters/export.py
@data_exporter
def export_data(df, **kwargs):
    pass
//- data_exporters/export_v1.py
"
);

snapshot!(
    python_function_checks,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: load
  type: data_loader
- uuid: load2
  type: data_loader
- uuid: no_decorator
  type: transformer
  upstream_blocks: [load]
- uuid: two_params
  type: transformer
  upstream_blocks: [load]
- uuid: no_params
  type: data_exporter
  upstream_blocks: [load, load2]
- uuid: kwargs_only
  type: data_exporter
  upstream_blocks: [load, load2]
- uuid: broken_syntax
  type: custom
//- data_loaders/load.py
@data_loader
def load_data(*args, **kwargs):
    return 1
//- data_loaders/load2.py
from mage_ai.data_preparation.decorators import data_loader

@data_loader
def load_data():
    return 2
//- transformers/no_decorator.py
def transform(data, *args, **kwargs):
    return data
//- transformers/two_params.py
@transformer
def transform(data, extra):
    return data
//- data_exporters/no_params.py
@data_exporter
def export_data():
    pass
//- data_exporters/kwargs_only.py
@data_exporter
def export_data(**kwargs):
    pass
//- custom/broken_syntax.py
@custom
def run(:
    pass
"
);

snapshot!(
    sql_templates_and_profiles,
    "//- io_config.yaml
version: 0.1.1
default:
  POSTGRES_HOST: {{ env_var('POSTGRES_HOST') }}
dev:
  POSTGRES_DBNAME: postgres
//- pipelines/etl/metadata.yaml
blocks:
- uuid: load
  type: data_loader
- uuid: daily
  type: transformer
  language: sql
  upstream_blocks: [load]
  configuration:
    data_provider: postgres
    data_provider_profile: staging
- uuid: weekly
  type: transformer
  language: sql
  upstream_blocks: [load]
  configuration:
    data_provider_profile: \"{{ variables('profile') }}\"
//- data_loaders/load.py
@data_loader
def load_data(*args, **kwargs):
    return 1
//- transformers/daily.sql
SELECT * FROM {{ df_1 }} JOIN {{ df_2 }} USING (id)
//- transformers/weekly.sql
SELECT * FROM {{ df_0 }} WHERE x = '{{ block_output(\"daily\") }}'
"
);

snapshot!(
    triggers,
    "//- pipelines/etl/metadata.yaml
blocks: []
//- pipelines/etl/triggers.yaml
triggers:
- name: daily
  schedule_type: time
  schedule_interval: '@daily'
  envs: [prod, test_mage]
- name: sometimes
  schedule_interval: '@sometimes'
- name: bad_cron
  schedule_interval: 61 * * * *
  status: running
- name: daily
  schedule_type: hourly
  envs: [qa]
- description: no name
"
);

snapshot!(
    paths_escaping_the_project,
    "//- pipelines/etl/metadata.yaml
blocks:
- uuid: ../../outside
  type: data_loader
- uuid: absolute
  type: data_loader
  configuration:
    file_path: /etc/passwd
- uuid: parent
  type: data_loader
  configuration:
    file_path: ../shared/parent.py
"
);

#[test]
fn a_clean_project_has_no_diagnostics() {
    let text = format!(
        "//- pipelines/etl/metadata.yaml
blocks:
- uuid: load
  type: data_loader
  downstream_blocks: [clean]
- uuid: clean
  type: transformer
  language: sql
  upstream_blocks: [load]
  downstream_blocks: [note]
- uuid: note
  type: markdown
  language: markdown
  upstream_blocks: [clean]
//- data_loaders/load.py
{LOADER}//- transformers/clean.sql
SELECT * FROM {{{{ df_1 }}}}
//- markdowns/note.md
# Notes
"
    );
    assert_eq!(check(&text), "0 errors, 0 warnings");
}

/// A pipeline as Mage saves it (every key, sorted, plus Pro-only keys) loads with nothing lost.
#[test]
fn mage_canonical_pipeline_keeps_every_key() {
    let yaml = "blocks:
- all_upstream_blocks_executed: true
  color: null
  configuration:
    demo_block_var: 3
    file_source:
      path: data_loaders/load.py
  downstream_blocks: []
  executor_config: null
  executor_type: local_python
  has_callback: false
  language: python
  name: load
  retry_config: null
  status: executed
  timeout: null
  type: data_loader
  upstream_blocks: []
  uuid: load
cache_block_output_in_memory: false
callbacks: []
concurrency_config: {}
conditionals: []
created_at: '2024-02-12 20:52:30.730847+00:00'
data_integration: null
description: null
executor_config: {}
executor_count: 1
executor_type: null
extensions: {}
name: etl
notification_config: {}
overrides: {}
remote_variables_dir: null
retry_config: {}
run_pipeline_in_one_process: false
settings:
  triggers: null
spark_config: {}
tags: []
type: python
uuid: etl
variables:
  taxi_url: data/sample.csv.gz
variables_dir: /home/src/mage_data/etl
widgets: []
";
    let vfs = fixture(&format!("//- pipelines/etl/metadata.yaml\n{yaml}//- data_loaders/load.py\n{LOADER}"));
    let project = crate::load::load_project(&vfs, Path::new(ROOT));
    let pipeline = &project.pipelines["etl"];
    let doc = pipeline.doc.as_ref().unwrap();
    let top_keys: Vec<&str> = doc.as_map().unwrap().iter().filter_map(|entry| entry.key.as_str()).collect();
    let expected: Vec<&str> = yaml.lines().filter(|line| !line.starts_with([' ', '-'])).filter_map(|line| line.split(':').next()).collect();
    assert_eq!(top_keys, expected);
    let block = &pipeline.blocks[0];
    let block_keys: Vec<&str> = block.node.as_map().unwrap().iter().filter_map(|entry| entry.key.as_str()).collect();
    assert_eq!(block_keys.len(), 15);
    assert_eq!(block.config("demo_block_var").and_then(crate::yaml::Node::as_i64), Some(3));
    assert_eq!(block.file.as_deref(), Some(Path::new("data_loaders/load.py")));
    assert_eq!(pipeline.variables()["taxi_url"], "data/sample.csv.gz");
    assert!(crate::check::project(&project).is_empty());
}

#[test]
fn block_files_resolve_as_mage_resolves_them() {
    let vfs = fixture(
        "//- pipelines/etl/metadata.yaml
blocks:
- uuid: retrain/sklearn
  type: custom
- uuid: explicit
  type: transformer
  configuration:
    file_path: fixture/utils/explicit_block.py
- uuid: replica
  type: transformer
  replicated_block: explicit
- uuid: report
  type: transformer
  language: sql
- uuid: dbt_model
  type: dbt
  language: sql
  configuration:
    file_source:
      path: bgg/models/daily.sql
//- dbt/bgg/models/daily.sql
select 1
",
    );
    let project = crate::load::load_project(&vfs, Path::new(ROOT));
    let files: Vec<Option<&Path>> = project.pipelines["etl"].blocks.iter().map(|block| block.file.as_deref()).collect();
    assert_eq!(
        files,
        [
            Some(Path::new("custom/retrain/sklearn.py")),
            Some(Path::new("utils/explicit_block.py")),
            Some(Path::new("utils/explicit_block.py")),
            Some(Path::new("transformers/report.sql")),
            Some(Path::new("dbt/bgg/models/daily.sql")),
        ]
    );
    assert_eq!(
        crate::model::Project::block_of_path(Path::new("custom/retrain/sklearn.py")),
        Some((crate::BlockType::Custom, "retrain/sklearn".to_owned(), crate::Language::Python))
    );
    assert_eq!(project.users_of_file(Path::new("utils/explicit_block.py")).count(), 2);
}

/// The example projects: nyc_taxi is clean; broken shows every diagnostic kind at the places
/// its EXPECTED.md lists.
#[test]
fn example_projects() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let disk = crate::vfs::DiskVfs;
    let taxi = crate::load::load_project(&disk, &examples.join("nyc_taxi"));
    assert_eq!(taxi.pipelines.len(), 3);
    assert!(crate::check::project(&taxi).is_empty(), "{:#?}", crate::check::project(&taxi));

    let root = examples.join("broken");
    let broken = crate::load::load_project(&disk, &root);
    let diagnostics = crate::check::project(&broken);
    let read = |path: &Path| disk.read(path);
    let found: Vec<String> = diagnostics
        .iter()
        .map(|it| format!("{} {}", it.code, render::location(&it.file, &root, read(&it.file).as_deref(), it.range)))
        .collect();
    let expected_md = std::fs::read_to_string(root.join("EXPECTED.md")).unwrap();
    let mut expected: Vec<String> = expected_md
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 6 || !cells[1].chars().all(|c| c.is_ascii_digit()) || cells[1].is_empty() {
                return None;
            }
            Some(format!("{} {}:{}", cells[2].trim_matches('`'), cells[3].trim_matches('`'), cells[4]))
        })
        .collect();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    expected.sort();
    assert_eq!(found_sorted, expected);
    for code in crate::Code::ALL {
        if !matches!(code, crate::Code::InvalidPipeline | crate::Code::PythonSyntax | crate::Code::UnknownBlockOutput) {
            assert!(diagnostics.iter().any(|it| it.code == *code), "examples/broken shows no {code}");
        }
    }
}

/// A platform root (spec 1.1): `settings.yaml` lists sub-projects, and `file_source.path` is
/// relative to the platform root and decides the file.
#[test]
fn platform_roots_and_file_source_paths() {
    let mut vfs = MemVfs::default();
    vfs.insert("/plat/settings.yaml", "projects:\n  unit_a: {}\n  unit_b: {}\n");
    vfs.insert(
        "/plat/unit_a/pipelines/train/metadata.yaml",
        "blocks:\n- uuid: hyperparameter_tuning/sklearn\n  type: transformer\n  configuration:\n    file_source:\n      path: unit_a/transformers/tuning/sklearn.py\n",
    );
    vfs.insert("/plat/unit_a/transformers/tuning/sklearn.py", "@transformer\ndef t(*args):\n    pass\n");
    vfs.insert("/plat/unit_b/pipelines/other/metadata.yaml", "blocks: []\n");
    assert_eq!(
        crate::vfs::find_root(&vfs, Path::new("/plat")),
        Some(crate::vfs::Root::Platform { root: "/plat".into(), projects: vec!["/plat/unit_a".into(), "/plat/unit_b".into()] })
    );
    assert_eq!(
        crate::vfs::find_root(&vfs, Path::new("/plat/unit_a/transformers/tuning/sklearn.py")),
        Some(crate::vfs::Root::Project("/plat/unit_a".into()))
    );
    let project = crate::load::load_project(&vfs, Path::new("/plat/unit_a"));
    assert_eq!(project.platform_root.as_deref(), Some(Path::new("/plat")));
    let block = &project.pipelines["train"].blocks[0];
    assert_eq!(block.file.as_deref(), Some(Path::new("transformers/tuning/sklearn.py")));
    assert!(crate::check::project(&project).is_empty(), "{:#?}", crate::check::project(&project));
}
