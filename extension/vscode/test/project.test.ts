import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { blockUuidFromPath, findProjectRoot, isProjectRoot, listPipelines, pipelineFromPath } from '../src/project';

const repo = path.resolve(__dirname, '..', '..', '..');
const taxi = path.join(repo, 'examples', 'nyc_taxi');

/** A fake file system from a list of paths (folders implied). */
function fakeFs(files: string[]): { exists: (it: string) => boolean; readdir: (dir: string) => string[] } {
    const all = new Set<string>();
    for (const file of files) {
        let it = file;
        while (it !== path.dirname(it)) {
            all.add(it);
            it = path.dirname(it);
        }
    }
    return {
        exists: (it) => all.has(it),
        readdir: (dir) => [...new Set([...all].filter((it) => path.dirname(it) === dir).map((it) => path.basename(it)))],
    };
}

test('the pipeline of a metadata.yaml comes from its path', () => {
    assert.deepEqual(pipelineFromPath(path.join(taxi, 'pipelines', 'taxi_etl', 'metadata.yaml')), { project: taxi, pipeline: 'taxi_etl' });
    assert.deepEqual(pipelineFromPath(path.join(taxi, 'pipelines', 'taxi_etl', 'triggers.yaml')), { project: taxi, pipeline: 'taxi_etl' });
    assert.equal(pipelineFromPath(path.join(taxi, 'transformers', 'transform_taxi_data.py')), undefined);
    assert.equal(pipelineFromPath(path.join(taxi, 'pipelines')), undefined);
});

test('the innermost pipelines/ folder wins', () => {
    assert.deepEqual(pipelineFromPath('/a/pipelines/x/sub/pipelines/y/metadata.yaml'), { project: '/a/pipelines/x/sub', pipeline: 'y' });
});

test('project roots: the real example, block files and pipeline files', () => {
    assert.ok(isProjectRoot(taxi, existsSync));
    assert.ok(!isProjectRoot(path.join(taxi, 'pipelines', 'taxi_etl'), existsSync), 'a pipeline folder has metadata.yaml but is not a project');
    assert.equal(findProjectRoot(path.join(taxi, 'transformers', 'transform_taxi_data.py'), existsSync), taxi);
    assert.equal(findProjectRoot(path.join(taxi, 'pipelines', 'taxi_etl', 'metadata.yaml'), existsSync), taxi);
    assert.equal(findProjectRoot('/definitely/not/a/project/file.py', existsSync), undefined);
});

test('a project with pipelines/ but no io_config.yaml is still a project', () => {
    const fs = fakeFs(['/p/metadata.yaml', '/p/pipelines/etl/metadata.yaml', '/p/data_loaders/load.py']);
    assert.equal(findProjectRoot('/p/data_loaders/load.py', fs.exists), '/p');
    assert.deepEqual(listPipelines('/p', fs.readdir, fs.exists), ['etl']);
});

test('pipelines are listed from pipelines/*/metadata.yaml', () => {
    assert.deepEqual(listPipelines(taxi, (dir) => readdirSync(dir), existsSync), ['taxi_embedded', 'taxi_etl', 'taxi_to_parquet']);
    assert.deepEqual(listPipelines('/nowhere', (dir) => readdirSync(dir), existsSync), []);
});

test('default block uuids from block file paths', () => {
    assert.equal(blockUuidFromPath(taxi, path.join(taxi, 'transformers', 'transform_taxi_data.py')), 'transform_taxi_data');
    assert.equal(blockUuidFromPath(taxi, path.join(taxi, 'transformers', 'trips_per_day.sql')), 'trips_per_day');
    assert.equal(blockUuidFromPath(taxi, path.join(taxi, 'data_loaders', 'nested', 'load.py')), 'nested/load');
    assert.equal(blockUuidFromPath(taxi, path.join(taxi, 'utils', 'helpers.py')), undefined);
    assert.equal(blockUuidFromPath(taxi, path.join(repo, 'README.md')), undefined);
});
