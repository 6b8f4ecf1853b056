import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { escapeHtml, renderDagHtml, renderDagSvg, stateStyle } from '../src/dagView';
import type { DagResult } from '../src/lspExt';

const fixture = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'taxi_embedded.dag.json'), 'utf8')) as DagResult;

test('the SVG has one node group per block and one path per edge', () => {
    const svg = renderDagSvg(fixture);
    const uuids = [...svg.matchAll(/<g class="node[^"]*" data-uuid="([^"]+)"/g)].map((it) => it[1]);
    assert.deepEqual(uuids.sort(), ['export_daily_to_parquet', 'load_taxi_data', 'transform_taxi_data', 'trips_per_day']);
    const edges = [...svg.matchAll(/<path class="edge" data-from="([^"]+)" data-to="([^"]+)"/g)].map((it) => `${it[1]}->${it[2]}`);
    assert.deepEqual(edges, ['load_taxi_data->transform_taxi_data', 'transform_taxi_data->trips_per_day', 'trips_per_day->export_daily_to_parquet']);
});

test('node groups carry their file and state, styled by state', () => {
    const svg = renderDagSvg(fixture);
    assert.match(svg, /class="node state-ok has-file" data-uuid="load_taxi_data" data-file="file:\/\/\/work\/main\/examples\/nyc_taxi\/data_loaders\/load_taxi_data.py" data-state="fresh"/);
    assert.match(svg, /class="node state-failed has-file" data-uuid="trips_per_day"/);
    assert.match(svg, /class="node state-never has-file" data-uuid="export_daily_to_parquet"[^>]*data-state=""/);
    assert.match(svg, /transformer · sql/);
});

test('states: documented names, raw run statuses, null and unknown strings', () => {
    assert.equal(stateStyle('fresh').cls, 'ok');
    assert.equal(stateStyle('succeeded').cls, 'ok');
    assert.equal(stateStyle('reused').cls, 'ok');
    assert.equal(stateStyle('stale').cls, 'stale');
    assert.equal(stateStyle('failed').cls, 'failed');
    assert.deepEqual(stateStyle('test_failed'), { cls: 'failed', label: 'test failed' });
    assert.equal(stateStyle('running').cls, 'running');
    assert.equal(stateStyle('skipped').cls, 'skipped');
    assert.deepEqual(stateStyle('never-run'), { cls: 'never', label: 'never run' });
    assert.deepEqual(stateStyle('not_run'), { cls: 'never', label: 'never run' });
    assert.deepEqual(stateStyle(null), { cls: 'never', label: 'never run' });
    assert.deepEqual(stateStyle('brand_new'), { cls: 'never', label: 'brand new' });
});

test('the page has a CSP with the nonce, the script carries it, and no external resources', () => {
    const html = renderDagHtml(fixture, { cspSource: 'vscode-webview://abc', nonce: 'N0nce' });
    assert.match(html, /Content-Security-Policy" content="default-src 'none'; img-src data:; style-src vscode-webview:\/\/abc 'unsafe-inline'; script-src 'nonce-N0nce';"/);
    assert.match(html, /<script nonce="N0nce">/);
    assert.doesNotMatch(html, /(src|href)="https?:/);
    assert.match(html, /acquireVsCodeApi/);
    assert.match(html, /type: 'open'/);
});

test('names are escaped', () => {
    const evil: DagResult = { pipeline: '<p>', nodes: [{ uuid: 'a"<b>', type: null, language: null, file: null, state: '<x>' }], edges: [] };
    const html = renderDagHtml(evil, { nonce: 'n' });
    assert.doesNotMatch(html, /<b>|<x>|<p>/);
    assert.match(html, /a&quot;&lt;b&gt;/);
    assert.equal(escapeHtml(`&<>"'`), '&amp;&lt;&gt;&quot;&#39;');
});

test('an empty pipeline says so instead of drawing', () => {
    const html = renderDagHtml({ pipeline: 'empty', nodes: [], edges: [] }, { nonce: 'n' });
    assert.match(html, /has no blocks/);
    assert.doesNotMatch(html, /<svg/);
});
