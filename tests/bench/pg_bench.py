#!/usr/bin/env python3
"""Benchmark: Wand's PostgreSQL export and load (binary COPY from Rust, frames shipped from
the Python block as Arrow) versus `psql \\copy` and pandas `to_sql` through SQLAlchemy.

The data is the generated 1,369,765-row taxi file (examples/nyc_taxi/scripts/
generate_taxi_data.py; generated when missing). A throwaway server is started with
tests/pg/start.sh and stopped at the end.

* wand export: `Postgres.with_config(...).export(df, 'public', 'bench_wand', if_exists='replace')`
  inside a data exporter block run by `wand run`, timed around the call (so the CSV read is
  not counted; the pandas -> Arrow -> Rust -> COPY path is).
* psql \\copy: the same CSV.gz into a table of the same column types (`gzip -dc` piped).
* pandas to_sql: the same frame, `df.to_sql(..., if_exists='replace', index=False)` with a
  SQLAlchemy engine on psycopg2 (default method).
* load: `Postgres.load('SELECT * FROM bench_wand')` (a pandas frame in the block) versus
  `psql \\copy (SELECT * FROM bench_wand) TO '/dev/null' CSV` and pandas `read_sql`.

Results (2 cores, PostgreSQL 15 with fsync off, 1,369,765 rows, release wand; pandas 3.1 with
SQLAlchemy 2.1 + psycopg2): export wand 2.2 s, psql \\copy 3.2 s, pandas to_sql 143 s; load wand
(into pandas) 2.8 s, psql \\copy TO 2.0 s, pandas read_sql 13.1 s.

Usage: tests/bench/pg_bench.py [--wand target/release/wand] [--rows N] [--python .venv/bin/python]
pandas to_sql needs sqlalchemy and psycopg2 in that Python (`pip install sqlalchemy psycopg2-binary`);
without them that line is skipped. A debug `wand` works but measures an unoptimised build.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TAXI = REPO / "examples" / "nyc_taxi"
FULL_ROWS = 1_369_765
PASSWORD = "bench-password"

EXPORTER = r'''
import json
import time
from os import path

from mage_ai.io.config import ConfigFileLoader
from mage_ai.io.postgres import Postgres
from mage_ai.settings.repo import get_repo_path


@data_exporter
def export(df, **kwargs):
    config = ConfigFileLoader(path.join(get_repo_path(), 'io_config.yaml'), 'default')
    with Postgres.with_config(config) as loader:
        start = time.perf_counter()
        loader.export(df, 'public', 'bench_wand', index=False, if_exists='replace')
        exported = time.perf_counter() - start
        start = time.perf_counter()
        back = loader.load('SELECT * FROM public.bench_wand')
        loaded = time.perf_counter() - start
    print('WAND_BENCH ' + json.dumps({'export': exported, 'load': loaded, 'rows': len(df), 'rows_back': len(back)}))
'''

PANDAS = r'''
import json, sys, time
import pandas as pd
sys.path.insert(0, sys.argv[3])
import importlib.util
spec = importlib.util.spec_from_file_location('loader', sys.argv[2])
namespace = {'data_loader': lambda f: f, 'test': lambda f: f}
code = open(sys.argv[2]).read()
exec(compile(code, sys.argv[2], 'exec'), namespace)
df = namespace['load_data'](taxi_url=sys.argv[1])
from sqlalchemy import create_engine
engine = create_engine(sys.argv[4])
start = time.perf_counter()
df.to_sql('bench_pandas', engine, schema='public', index=False, if_exists='replace')
exported = time.perf_counter() - start
start = time.perf_counter()
back = pd.read_sql('SELECT * FROM public.bench_pandas', engine)
loaded = time.perf_counter() - start
print(json.dumps({'export': exported, 'load': loaded, 'rows': len(df)}))
'''


def start_server():
    out = subprocess.run(
        ["bash", str(REPO / "tests/pg/start.sh"), "--watch", str(os.getpid()), "--password", PASSWORD],
        check=True, capture_output=True, text=True,
    ).stdout
    env = dict(line.split("=", 1) for line in out.split())
    return env


def psql(env, sql, db="postgres"):
    return subprocess.run(
        ["psql", "-h", env["PGSOCKET"], "-p", env["PGPORT"], "-U", "postgres", "-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    release = REPO / "target/release/wand"
    parser.add_argument("--wand", default=str(release if release.exists() else REPO / "target/debug/wand"))
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--python", default=str(REPO / ".venv/bin/python"))
    parser.add_argument("--skip-pandas", action="store_true", help="skip pandas to_sql/read_sql (about 2.5 minutes at full size)")
    args = parser.parse_args()
    if "debug" in args.wand:
        print(f"note: {args.wand} is a debug build; build with `cargo build --release -p wand-kernel` for real numbers", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="wand-pg-bench-"))
    if args.rows == FULL_ROWS:
        csv = TAXI / "data" / "yellow_tripdata_2021-01.full.csv.gz"
    else:
        csv = tmp / f"taxi_{args.rows}.csv.gz"
    if not csv.exists():
        print(f"generating {csv} ({args.rows} rows)", file=sys.stderr)
        subprocess.run([args.python, str(TAXI / "scripts/generate_taxi_data.py"), "--rows", str(args.rows), "--out", str(csv)], check=True)

    env = start_server()
    port = env["PGPORT"]
    project = tmp / "proj"
    (project / "pipelines/bench").mkdir(parents=True)
    (project / "data_loaders").mkdir()
    (project / "data_exporters").mkdir()
    (project / "metadata.yaml").write_text("variables_dir: .mage_data\n")
    (project / "io_config.yaml").write_text(
        f"default:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: {port}\n  POSTGRES_DBNAME: postgres\n"
        f"  POSTGRES_USER: wand\n  POSTGRES_PASSWORD: {PASSWORD}\n  POSTGRES_SCHEMA: public\n"
    )
    (project / "data_loaders/load_taxi_data.py").write_text((TAXI / "data_loaders/load_taxi_data.py").read_text())
    (project / "data_exporters/export.py").write_text(EXPORTER)
    (project / "pipelines/bench/metadata.yaml").write_text(
        "blocks:\n"
        "- {uuid: load_taxi_data, type: data_loader, language: python, upstream_blocks: [], downstream_blocks: [export]}\n"
        "- {uuid: export, type: data_exporter, language: python, upstream_blocks: [load_taxi_data], downstream_blocks: []}\n"
        f"name: bench\ntype: python\nvariables:\n  taxi_url: {csv}\n"
    )

    results = {}
    out = subprocess.run([args.wand, "run", str(project), "bench", "--no-test", "--json"], capture_output=True, text=True,
                         env=dict(os.environ, WAND_PYTHON=args.python))
    line = next((l for l in out.stdout.splitlines() if "WAND_BENCH" in l), None)
    if line is None:
        sys.exit(f"wand run failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    text = json.loads(line)["text"]
    wand = json.loads(text[text.index("WAND_BENCH") + len("WAND_BENCH"):].strip().splitlines()[0])
    rows = wand["rows"]
    assert int(psql(env, "SELECT count(*) FROM public.bench_wand")) == rows == wand["rows_back"]
    results["wand export (Arrow -> Rust binary COPY)"] = wand["export"]

    psql(env, "CREATE TABLE public.bench_psql (LIKE public.bench_wand)")
    sock = ["-h", env["PGSOCKET"], "-p", port, "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
    results["psql \\copy FROM csv.gz"] = timed(lambda: subprocess.run(
        ["psql", *sock, "-c", f"\\copy public.bench_psql FROM PROGRAM 'gzip -dc {csv}' WITH (FORMAT csv, HEADER true)"],
        check=True, capture_output=True))
    assert int(psql(env, "SELECT count(*) FROM public.bench_psql")) == rows

    pandas = None
    has_sqlalchemy = not args.skip_pandas and subprocess.run([args.python, "-c", "import sqlalchemy, psycopg2"], capture_output=True).returncode == 0
    if has_sqlalchemy:
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
        out = subprocess.run([args.python, "-c", PANDAS, str(csv), str(TAXI / "data_loaders/load_taxi_data.py"), str(REPO / "kernel/python"), url],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"pandas to_sql failed:\n{out.stderr[-3000:]}")
        pandas = json.loads(out.stdout.strip().splitlines()[-1])
        results["pandas to_sql (SQLAlchemy, psycopg2)"] = pandas["export"]
    elif not args.skip_pandas:
        print("skipping pandas to_sql: pip install sqlalchemy psycopg2-binary into " + args.python, file=sys.stderr)

    results["wand load -> pandas (binary COPY -> Arrow)"] = wand["load"]
    results["psql \\copy TO csv"] = timed(lambda: subprocess.run(
        ["psql", *sock, "-c", "\\copy (SELECT * FROM public.bench_wand) TO '/dev/null' WITH (FORMAT csv)"], check=True, capture_output=True))
    if pandas:
        results["pandas read_sql (SQLAlchemy, psycopg2)"] = pandas["load"]

    print(f"\n{rows:,} rows, wand = {args.wand}")
    for name, secs in results.items():
        print(f"  {name:<45} {secs:8.2f} s")
    export_wand = results["wand export (Arrow -> Rust binary COPY)"]
    load_wand = results["wand load -> pandas (binary COPY -> Arrow)"]
    print("ratios (other / wand; > 1 means wand is faster):")
    copy_in, copy_out = results["psql \\copy FROM csv.gz"], results["psql \\copy TO csv"]
    print(f"  export: psql copy {copy_in / export_wand:.2f}x" + (
        f", pandas to_sql {pandas['export'] / export_wand:.2f}x" if pandas else ""))
    print(f"  load:   psql copy {copy_out / load_wand:.2f}x" + (
        f", pandas read_sql {pandas['load'] / load_wand:.2f}x" if pandas else ""))
    subprocess.run(["bash", str(REPO / "tests/pg/stop.sh"), env["PGDIR"]])
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
