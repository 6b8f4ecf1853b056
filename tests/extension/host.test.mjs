// Smoke test of the bundled extension (extension/vscode/out/extension.js) in Node with a fake
// `vscode` module: activation, command registration, the status bar, the "wand-lsp not found"
// error, and the terminal command lines of Run Pipeline / Run Block with Upstream.
//
// VS Code itself cannot be downloaded here, so this is the closest to an extension host test.
// It does not start the language client (that needs the real `vscode` API); the protocol side is
// covered by webview.test.mjs (real wand-lsp) and nvim_setup_test.lua.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bundle = path.join(repo, 'extension', 'vscode', 'out', 'extension.js');
const project = path.join(repo, 'examples', 'nyc_taxi');

class Uri {
    constructor(scheme, fsPath) {
        this.scheme = scheme;
        this.fsPath = fsPath;
        this.path = fsPath;
    }
    static file(fsPath) {
        return new Uri('file', fsPath);
    }
    static parse(text) {
        return new Uri('file', fileURLToPath(text));
    }
    static joinPath(base, ...parts) {
        return new Uri(base.scheme, path.join(base.fsPath, ...parts));
    }
    toString() {
        return `file://${this.fsPath}`;
    }
}

function fakeVscode(settings) {
    const record = { commands: new Map(), executed: [], errors: [], terminals: [], sent: [], statusItems: [], quickPicks: [] };
    const disposable = { dispose() {} };
    const event = () => disposable;
    const vscode = {
        Uri,
        StatusBarAlignment: { Left: 1, Right: 2 },
        ViewColumn: { One: 1, Beside: -2 },
        ProgressLocation: { Notification: 15 },
        ThemeColor: class { constructor(id) { this.id = id; } },
        env: { shell: '/bin/bash' },
        window: {
            terminals: [],
            activeTextEditor: undefined,
            createOutputChannel: (name) => ({ name, lines: [], appendLine(line) { this.lines.push(line); }, append() {}, show() {}, dispose() {}, clear() {}, hide() {}, replace() {} }),
            createStatusBarItem: () => {
                const item = { text: '', tooltip: '', command: undefined, visible: false, show() { this.visible = true; }, hide() {}, dispose() {} };
                record.statusItems.push(item);
                return item;
            },
            showErrorMessage: (message, ...items) => {
                record.errors.push({ message, items });
                return Promise.resolve(undefined);
            },
            showWarningMessage: (message) => (record.errors.push({ message, items: [] }), Promise.resolve(undefined)),
            showInformationMessage: () => Promise.resolve(undefined),
            showQuickPick: (items) => {
                record.quickPicks.push(items);
                return Promise.resolve(items[0]);
            },
            showInputBox: () => Promise.resolve(undefined),
            createTerminal: (options) => {
                const terminal = { name: options.name, options, exitStatus: undefined, show() {}, sendText(text) { record.sent.push({ terminal: options.name, cwd: options.cwd, text }); }, dispose() {} };
                record.terminals.push(terminal);
                vscode.window.terminals.push(terminal);
                return terminal;
            },
        },
        commands: {
            registerCommand: (id, handler) => (record.commands.set(id, handler), disposable),
            executeCommand: (...args) => (record.executed.push(args), Promise.resolve(undefined)),
        },
        workspace: {
            workspaceFolders: [{ uri: Uri.file(project), name: 'nyc_taxi', index: 0 }],
            getConfiguration: () => ({ get: (key, fallback) => (key in settings ? settings[key] : fallback) }),
            onDidSaveTextDocument: event,
            onDidChangeConfiguration: event,
            createFileSystemWatcher: () => ({ onDidChange: event, onDidCreate: event, onDidDelete: event, dispose() {} }),
            findFiles: () => Promise.resolve([]),
            asRelativePath: (it) => path.relative(project, typeof it === 'string' ? it : it.fsPath),
        },
    };
    // vscode-languageclient touches many more names at load time (classes it extends, enums):
    // answer any other name with an empty class.
    const fallback = new Map();
    const proxy = new Proxy(vscode, {
        get(target, key) {
            if (key in target) return target[key];
            if (typeof key !== 'string') return undefined;
            if (!fallback.has(key)) fallback.set(key, class {});
            return fallback.get(key);
        },
    });
    return { vscode: proxy, record };
}

/** Loads a fresh copy of the bundle with `vscode` resolved to the fake. */
function loadExtension(fake) {
    assert.ok(existsSync(bundle), `${bundle} missing: run npm run build in extension/vscode`);
    const require = createRequire(bundle);
    delete require.cache[bundle];
    const original = Module._load;
    Module._load = function (request, parent, isMain) {
        if (request === 'vscode') return fake;
        return original.call(this, request, parent, isMain);
    };
    try {
        return require(bundle);
    } finally {
        Module._load = original;
    }
}

const context = () => ({ subscriptions: [], extensionUri: Uri.file(path.join(repo, 'extension', 'vscode')) });

test('activation without wand-lsp: commands registered, error with install instructions, status error', async () => {
    const { vscode, record } = fakeVscode({ 'server.path': '/nonexistent/wand-lsp' });
    const extension = loadExtension(vscode);
    await extension.activate(context());
    assert.deepEqual([...record.commands.keys()].sort(), ['wand.openNotebook', 'wand.restartServer', 'wand.runBlock', 'wand.runPipeline', 'wand.showDag', 'wand.showOutput']);
    const [error] = record.errors;
    assert.match(error.message, /wand-lsp/);
    assert.match(error.message, /cargo install --path lsp/);
    assert.deepEqual(error.items, ['Install Instructions', 'Open Settings']);
    const status = record.statusItems[0];
    assert.ok(status.visible);
    assert.match(status.text, /\$\(error\) Wand/);
    assert.match(status.tooltip, /error/);
    assert.equal(status.command, 'wand.restartServer');
    await extension.deactivate();
});

test('Run Pipeline on a metadata.yaml types `wand run <project> <pipeline>` in the Wand terminal', async () => {
    const { vscode, record } = fakeVscode({ 'server.path': '/nonexistent/wand-lsp', 'cli.path': '/opt/wand/bin/wand' });
    const extension = loadExtension(vscode);
    await extension.activate(context());
    await record.commands.get('wand.runPipeline')(Uri.file(path.join(project, 'pipelines', 'taxi_etl', 'metadata.yaml')));
    assert.deepEqual(record.sent, [{ terminal: 'Wand', cwd: project, text: `/opt/wand/bin/wand run ${project} taxi_etl` }]);
    // A second run reuses the terminal.
    await record.commands.get('wand.runPipeline')(Uri.file(path.join(project, 'pipelines', 'taxi_embedded', 'metadata.yaml')));
    assert.equal(record.terminals.length, 1);
    assert.equal(record.sent[1].text, `/opt/wand/bin/wand run ${project} taxi_embedded`);
    await extension.deactivate();
});

test('Run Block with Upstream on a block file: pipeline picked, block from the file path', async () => {
    const { vscode, record } = fakeVscode({ 'server.path': '/nonexistent/wand-lsp' });
    const extension = loadExtension(vscode);
    await extension.activate(context());
    await record.commands.get('wand.runBlock')(Uri.file(path.join(project, 'transformers', 'transform_taxi_data.py')));
    assert.deepEqual(record.quickPicks[0].map((it) => it.label), ['taxi_embedded', 'taxi_etl', 'taxi_to_parquet'], 'without the server, the pipeline is picked from the project');
    assert.deepEqual(record.sent, [{ terminal: 'Wand', cwd: project, text: `wand run ${project} taxi_embedded --block transform_taxi_data` }]);
    await extension.deactivate();
});
