// Renders the DAG view (extension/vscode/src/dagView.ts) of a real `wand/dag` answer in headless
// Chromium and checks what is drawn: the blocks and edges of examples/nyc_taxi `taxi_embedded`,
// that they are visible (boxes inside the viewport, non-background pixels inside each box), and
// that clicking a block posts the `open` message the extension handles.
//
//   node --test tests/extension/webview.test.mjs
//
// Needs: extension/vscode/node_modules (npm ci), /usr/bin/chromium (or $CHROMIUM), and
// target/debug/wand-lsp (or $WAND_LSP). WAND_WEBVIEW_FIXTURE=1 uses the hand-written fixture
// instead of the server. The screenshot goes to tests/extension/out/.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { repo, wandDag } from './lsp_client.mjs';

const extensionDir = path.join(repo, 'extension', 'vscode');
const outDir = path.join(repo, 'tests', 'extension', 'out');
const requireExt = createRequire(path.join(extensionDir, 'package.json'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const metadata = path.join(repo, 'examples', 'nyc_taxi', 'pipelines', 'taxi_embedded', 'metadata.yaml');
const expectedNodes = ['export_daily_to_parquet', 'load_taxi_data', 'transform_taxi_data', 'trips_per_day'];
const expectedEdges = ['load_taxi_data->transform_taxi_data', 'transform_taxi_data->trips_per_day', 'trips_per_day->export_daily_to_parquet'];
const viewport = { width: 1100, height: 760 };

let browser;
let page;
let dag;
let view;

/** Bundles dagView.ts with the extension's esbuild so the test runs the same source as the extension. */
function loadDagView() {
    const esbuild = requireExt('esbuild');
    const outfile = path.join(outDir, 'dagView.cjs');
    esbuild.buildSync({ entryPoints: [path.join(extensionDir, 'src', 'dagView.ts')], bundle: true, format: 'cjs', platform: 'node', outfile, logLevel: 'error' });
    return createRequire(import.meta.url)(outfile);
}

before(async () => {
    mkdirSync(outDir, { recursive: true });
    view = loadDagView();
    if (process.env.WAND_WEBVIEW_FIXTURE === '1') {
        dag = JSON.parse(readFileSync(path.join(extensionDir, 'test', 'fixtures', 'taxi_embedded.dag.json'), 'utf8'));
    } else {
        dag = await wandDag(metadata, path.join(repo, 'examples', 'nyc_taxi'));
    }
    writeFileSync(path.join(outDir, 'taxi_embedded.dag.json'), JSON.stringify(dag, null, 2));
    assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM)`);
    const { chromium } = requireExt('playwright-core');
    browser = await chromium.launch({
        executablePath: chromiumPath,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    page = await browser.newPage({ viewport });
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
    });
    const html = view.renderDagHtml(dag, { nonce: 'test-nonce' });
    writeFileSync(path.join(outDir, 'taxi_embedded.html'), html);
    await page.setContent(html, { waitUntil: 'load' });
    await page.screenshot({ path: path.join(outDir, 'taxi_embedded_dag.png'), fullPage: true });
    assert.deepEqual(errors, [], 'the page logs no errors (CSP violations included)');
});

after(async () => {
    await browser?.close();
});

test('the server answers wand/dag for taxi_embedded with its four blocks and three edges', () => {
    assert.equal(dag.pipeline, 'taxi_embedded');
    // Besides the four wired blocks the server lists the markdown block `about` (documentation,
    // no edges): Mage counts markdown blocks as pipeline blocks.
    const wired = dag.nodes.filter((it) => it.type !== 'markdown');
    assert.deepEqual(wired.map((it) => it.uuid).sort(), expectedNodes);
    for (const it of dag.nodes.filter((node) => node.type === 'markdown')) {
        assert.ok(!dag.edges.some((edge) => edge.from === it.uuid || edge.to === it.uuid), `markdown block ${it.uuid} has no edges`);
    }
    assert.deepEqual(dag.edges.map((it) => `${it.from}->${it.to}`).sort(), [...expectedEdges].sort());
    for (const node of wired) assert.match(node.file ?? "", /^file:\/\/.*examples\/nyc_taxi\/.+\.(py|sql)$/, `${node.uuid} has a file URI`);
});

test('the SVG has a node group with data-uuid per block and a path per edge', async () => {
    const uuids = await page.$$eval('svg.dag g.node[data-uuid]', (nodes) => nodes.map((it) => it.getAttribute('data-uuid')));
    assert.deepEqual(uuids.sort(), dag.nodes.map((it) => it.uuid).sort(), 'one group per node of the answer');
    for (const uuid of expectedNodes) assert.ok(uuids.includes(uuid), `${uuid} is drawn`);
    const edges = await page.$$eval('svg.dag path.edge', (paths) => paths.map((it) => `${it.getAttribute('data-from')}->${it.getAttribute('data-to')}`));
    assert.deepEqual(edges.sort(), [...expectedEdges].sort());
    const labels = await page.$$eval('svg.dag g.node text.name', (texts) => texts.map((it) => it.textContent));
    for (const uuid of expectedNodes) assert.ok(labels.includes(uuid), `${uuid} is labelled`);
});

test('every block and edge is drawn with a non-zero box inside the viewport', async () => {
    for (const uuid of expectedNodes) {
        const box = await page.locator(`g.node[data-uuid="${uuid}"]`).boundingBox();
        assert.ok(box, `${uuid} has a bounding box`);
        assert.ok(box.width > 50 && box.height > 20, `${uuid} box ${JSON.stringify(box)} is not empty`);
        assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= viewport.width && box.y + box.height <= viewport.height, `${uuid} box ${JSON.stringify(box)} is inside the viewport`);
        assert.ok(await page.locator(`g.node[data-uuid="${uuid}"]`).isVisible());
        // Nothing covers the block: the element at its centre belongs to it.
        const onTop = await page.evaluate(({ uuid, x, y }) => document.elementFromPoint(x, y)?.closest('g.node')?.getAttribute('data-uuid') ?? null, { uuid, x: box.x + box.width / 2, y: box.y + box.height / 2 });
        assert.equal(onTop, uuid);
    }
    for (const edge of await page.locator('path.edge').all()) {
        const box = await edge.boundingBox();
        assert.ok(box && box.height > 10, `edge box ${JSON.stringify(box)} is not empty`);
    }
    // Edges go down: each parent sits above its child.
    for (const pair of expectedEdges) {
        const [from, to] = pair.split('->');
        const top = await page.locator(`g.node[data-uuid="${from}"]`).boundingBox();
        const below = await page.locator(`g.node[data-uuid="${to}"]`).boundingBox();
        assert.ok(top.y + top.height <= below.y, `${from} is above ${to}`);
    }
});

test('the screenshot shows each block: its box has border and text pixels unlike the background', async () => {
    const png = readFileSync(path.join(outDir, 'taxi_embedded_dag.png'));
    assert.ok(png.length > 5000, 'screenshot is not blank-sized');
    const boxes = [];
    for (const uuid of expectedNodes) boxes.push({ uuid, ...(await page.locator(`g.node[data-uuid="${uuid}"]`).boundingBox()) });
    // Decode the PNG in a blank page with a canvas and count pixels that differ from the background.
    const decoder = await browser.newPage();
    const counts = await decoder.evaluate(
        async ({ dataUrl, boxes }) => {
            const image = new Image();
            image.src = dataUrl;
            await image.decode();
            const canvas = document.createElement('canvas');
            canvas.width = image.width;
            canvas.height = image.height;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(image, 0, 0);
            const at = (x, y) => ctx.getImageData(x, y, 1, 1).data;
            const background = at(2, image.height - 2);
            return boxes.map((box) => {
                const data = ctx.getImageData(Math.round(box.x), Math.round(box.y), Math.round(box.width), Math.round(box.height)).data;
                let differing = 0;
                for (let idx = 0; idx < data.length; idx += 4) {
                    const diff = Math.abs(data[idx] - background[0]) + Math.abs(data[idx + 1] - background[1]) + Math.abs(data[idx + 2] - background[2]);
                    if (diff > 40) differing++;
                }
                return { uuid: box.uuid, differing, total: data.length / 4 };
            });
        },
        { dataUrl: `data:image/png;base64,${png.toString('base64')}`, boxes },
    );
    await decoder.close();
    for (const it of counts) assert.ok(it.differing > it.total * 0.03, `${it.uuid}: ${it.differing} of ${it.total} pixels differ from the background`);
});

test('clicking a block posts an open message with its uuid and file', async () => {
    await page.locator('g.node[data-uuid="trips_per_day"]').click();
    const messages = await page.evaluate(() => window.wandMessages);
    const file = dag.nodes.find((it) => it.uuid === 'trips_per_day').file;
    assert.deepEqual(messages.at(-1), { type: 'open', uuid: 'trips_per_day', file });
    await page.locator('g.node[data-uuid="load_taxi_data"]').focus();
    await page.keyboard.press('Enter');
    assert.equal((await page.evaluate(() => window.wandMessages)).at(-1).uuid, 'load_taxi_data');
});

test('an update message redraws the graph in place', async () => {
    const changed = { ...dag, nodes: dag.nodes.map((it) => ({ ...it, state: it.uuid === 'trips_per_day' ? 'running' : 'succeeded' })) };
    const svg = view.renderDagSvg(changed);
    await page.evaluate((svg) => window.postMessage({ type: 'update', svg, title: 'taxi_embedded' }, '*'), svg);
    await page.waitForFunction(() => document.querySelector('g.node[data-uuid="trips_per_day"]')?.classList.contains('state-running'));
    assert.equal(await page.locator('g.node.state-ok').count(), dag.nodes.length - 1);
    await page.screenshot({ path: path.join(outDir, 'taxi_embedded_dag_states.png'), fullPage: true });
});
