/**
 * The DAG view: HTML + inline SVG for a `wand/dag` answer. Pure string building, no `vscode`,
 * so the same output is tested in Node and rendered in headless Chromium.
 *
 * The page talks to the extension with `postMessage`:
 * - page -> extension: `{ type: 'open', uuid, file }` when a node is clicked (or Enter is pressed on it),
 *   `{ type: 'refresh' }` from the refresh button;
 * - extension -> page: `{ type: 'update', svg, title }` replaces the drawing without reloading the page.
 * Outside VS Code (no `acquireVsCodeApi`) the page pushes its messages to `window.wandMessages`.
 */

import { layoutDag, type Layout } from './dagLayout';
import type { DagNode, DagResult, NodeState } from './lspExt';

/** How a state is drawn: a CSS class and the word shown under the block name. */
export interface StateStyle {
    cls: 'ok' | 'stale' | 'failed' | 'running' | 'skipped' | 'never';
    label: string;
}

/**
 * Maps the states the server sends to a style. The documented names come first; the raw run
 * record statuses (`succeeded`, `reused`, `test_failed`, `not_run`, ...) are accepted too.
 */
export function stateStyle(state: NodeState): StateStyle {
    switch (state) {
        case 'fresh':
        case 'succeeded':
        case 'reused':
            return { cls: 'ok', label: state };
        case 'stale':
            return { cls: 'stale', label: 'stale' };
        case 'failed':
        case 'test_failed':
            return { cls: 'failed', label: state === 'failed' ? 'failed' : 'test failed' };
        case 'running':
        case 'pending':
            return { cls: 'running', label: state };
        case 'skipped':
        case 'cancelled':
            return { cls: 'skipped', label: state };
        case null:
        case 'never-run':
        case 'not_run':
            return { cls: 'never', label: 'never run' };
        default:
            return { cls: 'never', label: state.replace(/[_-]/g, ' ') };
    }
}

export function escapeHtml(text: string): string {
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function subtitle(node: DagNode): string {
    const parts = [node.type, node.language].filter((it): it is string => typeof it === 'string' && it.length > 0);
    return [...new Set(parts)].join(' · ');
}

/** The lines of a node box, used both to size the boxes and to draw them. */
function labelLines(node: DagNode): string[] {
    return [node.uuid, `${subtitle(node)}  ${stateStyle(node.state).label}`];
}

/** The SVG drawing alone (what `update` messages carry). */
export function renderDagSvg(dag: DagResult, layout: Layout = layoutFor(dag)): string {
    const byUuid = new Map(dag.nodes.map((node) => [node.uuid, node]));
    const edges = layout.edges
        .map((edge) => `<path class="edge${edge.backward ? ' backward' : ''}" data-from="${escapeHtml(edge.from)}" data-to="${escapeHtml(edge.to)}" d="${edge.path}" marker-end="url(#arrow)"><title>${escapeHtml(`${edge.from} → ${edge.to}`)}</title></path>`)
        .join('\n    ');
    const nodes = layout.nodes
        .map((placed) => {
            const node = byUuid.get(placed.uuid);
            if (!node) return '';
            const style = stateStyle(node.state);
            const file = node.file ?? '';
            const sub = subtitle(node);
            const tooltip = [node.uuid, sub, `state: ${style.label}`, node.file ?? 'no file'].filter(Boolean).join('\n');
            return [
                `<g class="node state-${style.cls}${node.file ? ' has-file' : ''}" data-uuid="${escapeHtml(node.uuid)}" data-file="${escapeHtml(file)}" data-state="${escapeHtml(node.state ?? '')}" transform="translate(${placed.x} ${placed.y})" tabindex="0" role="button" aria-label="${escapeHtml(`${node.uuid}, ${style.label}`)}">`,
                `<title>${escapeHtml(tooltip)}</title>`,
                `<rect class="box" width="${placed.width}" height="${placed.height}" rx="6" ry="6"/>`,
                `<rect class="stripe" width="6" height="${placed.height}" rx="3" ry="3"/>`,
                `<text class="name" x="16" y="21">${escapeHtml(node.uuid)}</text>`,
                `<text class="sub" x="16" y="40">${escapeHtml(sub)}${sub ? '  ' : ''}<tspan class="state">${escapeHtml(style.label)}</tspan></text>`,
                `</g>`,
            ].join('');
        })
        .join('\n    ');
    return `<svg xmlns="http://www.w3.org/2000/svg" class="dag" data-pipeline="${escapeHtml(dag.pipeline)}" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}">
  <defs>
    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
      <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/>
    </marker>
  </defs>
  <g class="edges">
    ${edges}
  </g>
  <g class="nodes">
    ${nodes}
  </g>
</svg>`;
}

export function layoutFor(dag: DagResult): Layout {
    const byUuid = new Map(dag.nodes.map((node) => [node.uuid, node]));
    return layoutDag(dag.nodes, dag.edges, (uuid) => {
        const node = byUuid.get(uuid);
        return node ? labelLines(node) : [uuid];
    });
}

export interface DagHtmlOptions {
    /** `webview.cspSource`; omitted outside VS Code. */
    cspSource?: string;
    /** Nonce for the inline script (required by the Content-Security-Policy). */
    nonce: string;
}

/** A complete page for a webview. */
export function renderDagHtml(dag: DagResult, options: DagHtmlOptions): string {
    const nonce = escapeHtml(options.nonce);
    const styleSrc = options.cspSource ? `${options.cspSource} 'unsafe-inline'` : `'unsafe-inline'`;
    const csp = `default-src 'none'; img-src data:; style-src ${styleSrc}; script-src 'nonce-${nonce}';`;
    const body = dag.nodes.length === 0 ? emptyMessage(dag) : renderDagSvg(dag);
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`Pipeline ${dag.pipeline}`)}</title>
<style>${css}</style>
</head>
<body>
<header>
  <h1>Pipeline <span id="pipeline-name">${escapeHtml(dag.pipeline)}</span></h1>
  <button id="refresh" type="button" title="Ask wand-lsp again">Refresh</button>
  <ul class="legend">
    <li class="state-ok">fresh</li><li class="state-stale">stale</li><li class="state-failed">failed</li><li class="state-running">running</li><li class="state-skipped">skipped</li><li class="state-never">never run</li>
  </ul>
</header>
<main id="graph">${body}</main>
<script nonce="${nonce}">${script}</script>
</body>
</html>`;
}

function emptyMessage(dag: DagResult): string {
    return `<p class="empty">Pipeline <code>${escapeHtml(dag.pipeline)}</code> has no blocks.</p>`;
}

const css = `
:root {
  --bg: var(--vscode-editor-background, #1e1e1e);
  --fg: var(--vscode-editor-foreground, #d4d4d4);
  --muted: var(--vscode-descriptionForeground, #9d9d9d);
  --box: var(--vscode-editorWidget-background, #252526);
  --border: var(--vscode-editorWidget-border, #454545);
  --focus: var(--vscode-focusBorder, #007fd4);
  --ok: var(--vscode-testing-iconPassed, #73c991);
  --stale: var(--vscode-editorWarning-foreground, #cca700);
  --failed: var(--vscode-testing-iconFailed, #f14c4c);
  --running: var(--vscode-progressBar-background, #0e70c0);
  --skipped: var(--vscode-disabledForeground, #8b8b8b);
  --never: var(--vscode-editorWidget-border, #5a5a5a);
}
body { margin: 0; background: var(--bg); color: var(--fg); font-family: var(--vscode-font-family, system-ui, sans-serif); font-size: 13px; }
header { display: flex; align-items: center; gap: 16px; padding: 8px 16px; border-bottom: 1px solid var(--border); flex-wrap: wrap; }
h1 { font-size: 14px; font-weight: 600; margin: 0; }
button { background: var(--vscode-button-background, #0e639c); color: var(--vscode-button-foreground, #fff); border: none; padding: 3px 10px; cursor: pointer; }
.legend { display: flex; gap: 12px; list-style: none; margin: 0; padding: 0; color: var(--muted); }
.legend li::before { content: ""; display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; background: var(--c); vertical-align: -1px; }
.legend .state-ok { --c: var(--ok); } .legend .state-stale { --c: var(--stale); } .legend .state-failed { --c: var(--failed); }
.legend .state-running { --c: var(--running); } .legend .state-skipped { --c: var(--skipped); } .legend .state-never { --c: var(--never); }
main { padding: 8px; overflow: auto; }
svg.dag { display: block; margin: 0 auto; font-family: var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace); }
.edge { fill: none; stroke: var(--muted); stroke-width: 1.6; }
.edge.backward { stroke: var(--failed); stroke-dasharray: 4 3; }
.arrowhead { fill: var(--muted); }
.node .box { fill: var(--box); stroke: var(--c, var(--never)); stroke-width: 1.6; }
.node .stripe { fill: var(--c, var(--never)); }
.node .name { fill: var(--fg); font-size: 13px; font-weight: 600; }
.node .sub { fill: var(--muted); font-size: 11px; }
.node .state { fill: var(--c, var(--never)); }
.node.has-file { cursor: pointer; }
.node:hover .box, .node:focus .box { stroke-width: 2.6; }
.node:focus { outline: none; } .node:focus .box { stroke: var(--focus); }
.node.state-ok { --c: var(--ok); } .node.state-stale { --c: var(--stale); } .node.state-failed { --c: var(--failed); }
.node.state-running { --c: var(--running); } .node.state-skipped { --c: var(--skipped); } .node.state-never { --c: var(--never); }
.node.state-never .box { stroke-dasharray: 5 3; } .node.state-never .state { fill: var(--muted); }
.empty { color: var(--muted); padding: 16px; }
`;

const script = `
(function () {
  var api = typeof acquireVsCodeApi === 'function' ? acquireVsCodeApi() : null;
  window.wandMessages = [];
  function post(message) { if (api) { api.postMessage(message); } else { window.wandMessages.push(message); } }
  function open(target) {
    var node = target && target.closest ? target.closest('g.node') : null;
    if (!node) { return; }
    post({ type: 'open', uuid: node.getAttribute('data-uuid'), file: node.getAttribute('data-file') || null });
  }
  var graph = document.getElementById('graph');
  graph.addEventListener('click', function (event) { open(event.target); });
  graph.addEventListener('keydown', function (event) { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); open(event.target); } });
  document.getElementById('refresh').addEventListener('click', function () { post({ type: 'refresh' }); });
  window.addEventListener('message', function (event) {
    var message = event.data;
    if (!message || message.type !== 'update') { return; }
    graph.innerHTML = message.svg;
    if (typeof message.title === 'string') { document.getElementById('pipeline-name').textContent = message.title; }
  });
})();
`;
