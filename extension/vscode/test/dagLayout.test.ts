import assert from 'node:assert/strict';
import { test } from 'node:test';

import { assignLayers, layoutDag } from '../src/dagLayout';

const nodes = (...uuids: string[]) => uuids.map((uuid) => ({ uuid }));
const edge = (from: string, to: string) => ({ from, to });

test('a chain gets one layer per block, top to bottom', () => {
    const layout = layoutDag(nodes('a', 'b', 'c'), [edge('a', 'b'), edge('b', 'c')]);
    assert.deepEqual(layout.layers, [['a'], ['b'], ['c']]);
    const [a, b, c] = layout.nodes;
    assert.ok(a.y < b.y && b.y < c.y);
    assert.equal(a.x, b.x);
    assert.equal(layout.edges.length, 2);
    assert.ok(layout.edges.every((it) => !it.backward));
});

test('layers are longest paths, so a shortcut edge still points down', () => {
    const layers = assignLayers(['a', 'b', 'c'], [edge('a', 'b'), edge('b', 'c'), edge('a', 'c')]);
    assert.deepEqual(Object.fromEntries(layers), { a: 0, b: 1, c: 2 });
});

test('a diamond puts the two branches side by side', () => {
    const layout = layoutDag(nodes('src', 'left', 'right', 'sink'), [edge('src', 'left'), edge('src', 'right'), edge('left', 'sink'), edge('right', 'sink')]);
    assert.deepEqual(layout.layers, [['src'], ['left', 'right'], ['sink']]);
    const byUuid = new Map(layout.nodes.map((it) => [it.uuid, it]));
    assert.equal(byUuid.get('left')?.y, byUuid.get('right')?.y);
    assert.ok((byUuid.get('left')?.x ?? 0) + (byUuid.get('left')?.width ?? 0) < (byUuid.get('right')?.x ?? 0), 'boxes do not overlap');
});

test('barycenter ordering removes the crossing of two parallel chains given in crossed order', () => {
    // Layer 1 arrives as [y, x] but x hangs under a and y under b.
    const layout = layoutDag(nodes('a', 'b', 'y', 'x'), [edge('a', 'x'), edge('b', 'y')]);
    assert.deepEqual(layout.layers, [['a', 'b'], ['x', 'y']]);
});

test('isolated blocks, unknown edge ends, duplicates and self loops are tolerated', () => {
    const layout = layoutDag(nodes('a', 'b', 'lonely', 'a'), [edge('a', 'b'), edge('a', 'b'), edge('a', 'ghost'), edge('b', 'b')]);
    assert.equal(layout.nodes.length, 3);
    assert.deepEqual(layout.layers, [['a'], ['b'], ['lonely']], 'a block without edges gets a row below the graph');
    assert.deepEqual(
        layout.edges.map((it) => [it.from, it.to]),
        [['a', 'b']],
    );
});

test('a cycle terminates and its closing edge is flagged backward', () => {
    const layout = layoutDag(nodes('a', 'b', 'c'), [edge('a', 'b'), edge('b', 'c'), edge('c', 'b')]);
    assert.equal(layout.nodes.length, 3);
    assert.ok(layout.edges.some((it) => it.backward));
    for (const it of layout.edges) assert.match(it.path, /^M [\d.]+ [\d.]+ C /);
});

test('boxes grow with the longest label and the canvas holds every box', () => {
    const long = 'a_really_long_block_uuid_that_needs_room';
    const layout = layoutDag(nodes(long, 'b'), [edge(long, 'b')]);
    assert.ok(layout.nodes[0].width >= long.length * 7);
    for (const it of layout.nodes) {
        assert.ok(it.x >= 0 && it.y >= 0 && it.x + it.width <= layout.width && it.y + it.height <= layout.height);
    }
});

test('without any edge, all blocks share the first row', () => {
    assert.deepEqual(layoutDag(nodes('a', 'b'), []).layers, [['a', 'b']]);
});

test('an empty pipeline has an empty layout', () => {
    const layout = layoutDag([], []);
    assert.deepEqual(layout.layers, []);
    assert.equal(layout.nodes.length, 0);
});
