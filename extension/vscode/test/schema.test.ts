import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import Ajv from 'ajv';
import { parse } from 'yaml';

const root = path.resolve(__dirname, '..');
const repo = path.resolve(root, '..', '..');
const schema = JSON.parse(readFileSync(path.join(root, 'schemas', 'pipeline-metadata.schema.json'), 'utf8')) as object;
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

function pipelinesOf(project: string): string[] {
    const dir = path.join(project, 'pipelines');
    return readdirSync(dir, { withFileTypes: true })
        .filter((it) => it.isDirectory())
        .map((it) => path.join(dir, it.name, 'metadata.yaml'));
}

test('package.json points yamlValidation at the schema', () => {
    const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { contributes: { yamlValidation: { fileMatch: string; url: string }[] } };
    const [entry] = manifest.contributes.yamlValidation;
    assert.equal(entry.fileMatch, '**/pipelines/*/metadata.yaml');
    assert.equal(path.resolve(root, entry.url), path.join(root, 'schemas', 'pipeline-metadata.schema.json'));
});

test('the schema is valid draft-07 and allows unknown keys everywhere', () => {
    assert.ok(ajv.validateSchema(schema), JSON.stringify(ajv.errors));
    const text = JSON.stringify(schema);
    assert.doesNotMatch(text, /"additionalProperties":false/);
});

for (const file of pipelinesOf(path.join(repo, 'examples', 'nyc_taxi'))) {
    test(`accepts ${path.relative(repo, file)}`, () => {
        const doc = parse(readFileSync(file, 'utf8')) as unknown;
        assert.ok(validate(doc), JSON.stringify(validate.errors, null, 2));
    });
}

test('accepts the minimal template pipeline, unknown keys and Pro-only values', () => {
    const doc = {
        blocks: [
            { uuid: 'load', type: 'data_loader', upstream_blocks: [], downstream_blocks: ['clean'], future_key: { anything: 1 } },
            { uuid: 'clean', type: 'transformer', upstream_blocks: ['load'], color: 'rose', language: 'julia', executor_type: "{{ env_var('EXECUTOR') }}" },
        ],
        callbacks: [{ uuid: 'notify', type: 'callback', language: 'python', upstream_blocks: ['load'] }],
        conditionals: [{ uuid: 'weekdays', type: 'conditional', upstream_blocks: ['load'] }],
        widgets: [{ uuid: 'chart', type: 'chart', configuration: { chart_type: 'bar chart' } }],
        name: 'my pipeline',
        type: 'python',
        created_by: 'pro',
    };
    assert.ok(validate(doc), JSON.stringify(validate.errors, null, 2));
});

test('rejects an invalid block type, naming where', () => {
    const file = path.join(repo, 'examples', 'nyc_taxi', 'pipelines', 'taxi_embedded', 'metadata.yaml');
    const doc = parse(readFileSync(file, 'utf8')) as { blocks: { type: string }[] };
    doc.blocks[1].type = 'transformr';
    assert.equal(validate(doc), false);
    assert.ok(validate.errors?.some((it) => it.instancePath === '/blocks/1/type' && it.keyword === 'enum'), JSON.stringify(validate.errors));
});

test('rejects a block without uuid, a wrong status, a callback typed as loader, a bad retry_config', () => {
    assert.equal(validate({ blocks: [{ type: 'data_loader' }] }), false);
    assert.equal(validate({ blocks: [{ uuid: 'a', type: 'data_loader', status: 'done' }] }), false);
    assert.equal(validate({ callbacks: [{ uuid: 'a', type: 'data_loader' }] }), false);
    assert.equal(validate({ blocks: [{ uuid: 'a', type: 'data_loader', retry_config: { retries: 'many' } }] }), false);
    assert.equal(validate({ blocks: [{ uuid: 'a', type: 'data_loader', upstream_blocks: 'b' }] }), false);
    assert.equal(validate({ type: 'batch' }), false);
});
