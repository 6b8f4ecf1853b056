/**
 * Entry point of the Wand VS Code extension: starts `wand-lsp`, shows its state in the status
 * bar, and adds the DAG view and the `wand run` / `wand notebook` commands.
 *
 * Everything that can be decided without VS Code lives in pure modules (`dagLayout`, `dagView`,
 * `project`, `commands`) so it is tested with `node --test`.
 */

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, State, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';

import { commandLine, notebookArgs, notebookCandidates, resolveExecutable, runPipelineArgs, shellKind } from './commands';
import { renderDagHtml, renderDagSvg } from './dagView';
import { dagChangedMethod, dagMethod, indexReadyMethod, type DagChangedParams, type DagResult } from './lspExt';
import { blockUuidFromPath, findProjectRoot, listPipelines, pipelineFromPath, type PipelineRef } from './project';

type ServerStatus = 'starting' | 'running' | 'stopped' | 'error';

const installCommand = 'cargo install --path lsp';

let client: LanguageClient | undefined;
let stopping = false;
let statusItem: vscode.StatusBarItem;
let output: vscode.OutputChannel;
let extensionUri: vscode.Uri;
const panels = new Map<string, DagPanel>();

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    extensionUri = context.extensionUri;
    output = vscode.window.createOutputChannel('Wand');
    statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
    statusItem.name = 'Wand language server';
    context.subscriptions.push(output, statusItem);

    context.subscriptions.push(
        vscode.commands.registerCommand('wand.restartServer', restartServer),
        vscode.commands.registerCommand('wand.showDag', (uri?: vscode.Uri) => showDag(uri)),
        vscode.commands.registerCommand('wand.runPipeline', (uri?: vscode.Uri) => runInTerminal(uri, false)),
        vscode.commands.registerCommand('wand.runBlock', (arg?: vscode.Uri | string) => runInTerminal(arg, true)),
        vscode.commands.registerCommand('wand.openNotebook', (uri?: vscode.Uri) => openNotebook(uri)),
        vscode.commands.registerCommand('wand.showOutput', () => output.show()),
        vscode.workspace.onDidSaveTextDocument((document) => refreshPanelsFor(document.uri.fsPath)),
        vscode.workspace.onDidChangeConfiguration((event) => {
            if (event.affectsConfiguration('wand.server')) void restartServer();
        }),
    );
    // Runs (`wand run` in a terminal) and edits outside the editor change these files.
    const watcher = vscode.workspace.createFileSystemWatcher('**/{.wand/runs/latest.json,pipelines/*/metadata.yaml}');
    watcher.onDidChange((uri) => refreshPanelsFor(uri.fsPath));
    watcher.onDidCreate((uri) => refreshPanelsFor(uri.fsPath));
    context.subscriptions.push(watcher);

    await startServer();
}

export async function deactivate(): Promise<void> {
    await stopServer();
}

// ---------------------------------------------------------------------------------------------
// Language server

function setStatus(status: ServerStatus, detail?: string): void {
    const icons: Record<ServerStatus, string> = { starting: '$(sync~spin)', running: '$(check)', stopped: '$(debug-stop)', error: '$(error)' };
    statusItem.text = `${icons[status]} Wand`;
    statusItem.tooltip = `wand-lsp: ${status}${detail ? `\n${detail}` : ''}\nClick to ${status === 'running' || status === 'starting' ? 'show the log' : 'restart'}`;
    statusItem.command = status === 'running' || status === 'starting' ? 'wand.showOutput' : 'wand.restartServer';
    statusItem.backgroundColor = status === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    statusItem.show();
}

function workspaceRoot(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

async function startServer(): Promise<void> {
    const config = vscode.workspace.getConfiguration('wand');
    const setting = config.get<string>('server.path', '');
    const command = resolveExecutable(setting, 'wand-lsp', process.env, process.platform, (it) => isFile(it), workspaceRoot());
    if (!command) {
        setStatus('error', 'wand-lsp not found');
        const where = setting ? `at \`${setting}\` (setting wand.server.path)` : 'on PATH';
        output.appendLine(`wand-lsp not found ${where}; install it with \`${installCommand}\` from the Wand repository`);
        void vscode.window.showErrorMessage(`Wand: the language server \`wand-lsp\` was not found ${where}. Install it with \`${installCommand}\` from a Wand checkout, or set \`wand.server.path\`.`, 'Install Instructions', 'Open Settings').then((choice) => {
            if (choice === 'Install Instructions') void vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.joinPath(extensionUri, 'README.md'));
            if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'wand.server.path');
        });
        return;
    }
    const extraEnv = config.get<Record<string, string>>('server.extraEnv', {});
    const serverOptions: ServerOptions = { command, args: [], transport: TransportKind.stdio, options: { env: { ...process.env, ...extraEnv } } };
    const clientOptions: LanguageClientOptions = {
        documentSelector: ['yaml', 'python', 'sql', 'r'].map((language) => ({ scheme: 'file', language })),
        outputChannel: output,
        traceOutputChannel: output,
    };
    const next = new LanguageClient('wand', 'Wand', serverOptions, clientOptions);
    next.onDidChangeState((event) => {
        if (event.newState === State.Starting) setStatus('starting', command);
        else if (event.newState === State.Running) setStatus('running', command);
        else setStatus(stopping ? 'stopped' : 'error', stopping ? command : `${command} exited; see the Wand output`);
    });
    next.onNotification(dagChangedMethod, (params?: DagChangedParams) => refreshPanels(params?.pipeline));
    next.onNotification(indexReadyMethod, () => refreshPanels());
    client = next;
    setStatus('starting', command);
    try {
        stopping = false;
        await next.start();
    } catch (error) {
        setStatus('error', String(error));
        void vscode.window.showErrorMessage(`Wand: wand-lsp failed to start: ${String(error)}`, 'Show Log').then((choice) => {
            if (choice === 'Show Log') output.show();
        });
    }
}

async function stopServer(): Promise<void> {
    const current = client;
    client = undefined;
    if (!current) return;
    stopping = true;
    try {
        await current.stop(2000);
    } catch (error) {
        output.appendLine(`stopping wand-lsp: ${String(error)}`);
    }
    await current.dispose().catch(() => undefined);
    setStatus('stopped');
}

async function restartServer(): Promise<void> {
    await stopServer();
    await startServer();
    refreshPanels();
}

async function requestDag(fileOrPipeline: string): Promise<DagResult | null> {
    if (!client || client.state !== State.Running) throw new Error('wand-lsp is not running');
    return client.sendRequest<DagResult | null>(dagMethod, { uri: vscode.Uri.file(fileOrPipeline).toString() });
}

// ---------------------------------------------------------------------------------------------
// Which pipeline a command is about

function isFile(file: string): boolean {
    try {
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

function exists(file: string): boolean {
    return fs.existsSync(file);
}

function metadataPath(ref: PipelineRef): string {
    return path.join(ref.project, 'pipelines', ref.pipeline, 'metadata.yaml');
}

/** The pipeline of `uri` (or the active editor): from its path, else from the server, else a pick. */
async function resolvePipeline(uri?: vscode.Uri): Promise<PipelineRef | undefined> {
    const file = uri?.fsPath ?? vscode.window.activeTextEditor?.document.uri.fsPath;
    if (file) {
        const fromPath = pipelineFromPath(file);
        if (fromPath && exists(metadataPath(fromPath))) return fromPath;
        const project = findProjectRoot(file, exists);
        if (project) {
            try {
                const dag = await requestDag(file);
                if (dag) return { project, pipeline: dag.pipeline };
            } catch (error) {
                output.appendLine(`wand/dag for ${file}: ${String(error)}`);
            }
            return pickPipeline([project]);
        }
    }
    const metadata = await vscode.workspace.findFiles('**/pipelines/*/metadata.yaml', '**/node_modules/**', 500);
    const projects = [...new Set(metadata.map((it) => pipelineFromPath(it.fsPath)?.project).filter((it): it is string => it !== undefined))];
    return pickPipeline(projects);
}

async function pickPipeline(projects: string[]): Promise<PipelineRef | undefined> {
    const items = projects.flatMap((project) =>
        listPipelines(project, (dir) => fs.readdirSync(dir), exists).map((pipeline) => ({ label: pipeline, description: vscode.workspace.asRelativePath(project), ref: { project, pipeline } })),
    );
    if (items.length === 0) {
        void vscode.window.showWarningMessage('Wand: no Mage pipeline found (no pipelines/*/metadata.yaml in the workspace).');
        return undefined;
    }
    if (items.length === 1) return items[0].ref;
    return (await vscode.window.showQuickPick(items, { placeHolder: 'Pipeline' }))?.ref;
}

/** The block for "Run Block with Upstream": an explicit uuid, the active block file, or a pick. */
async function resolveBlock(ref: PipelineRef, file: string | undefined): Promise<string | undefined> {
    let dag: DagResult | null = null;
    try {
        dag = await requestDag(metadataPath(ref));
    } catch (error) {
        output.appendLine(`wand/dag for ${ref.pipeline}: ${String(error)}`);
    }
    if (file && dag) {
        const fileUri = vscode.Uri.file(file).toString();
        const node = dag.nodes.find((it) => it.file !== null && vscode.Uri.parse(it.file).toString() === fileUri);
        if (node) return node.uuid;
    }
    if (file) {
        const guess = blockUuidFromPath(ref.project, file);
        if (guess && (!dag || dag.nodes.some((it) => it.uuid === guess))) return guess;
    }
    if (dag) {
        const picked = await vscode.window.showQuickPick(
            dag.nodes.map((node) => ({ label: node.uuid, description: [node.type, node.language].filter(Boolean).join(' · ') })),
            { placeHolder: `Block of ${ref.pipeline} to run with its upstream blocks` },
        );
        return picked?.label;
    }
    return vscode.window.showInputBox({ prompt: `Block uuid in ${ref.pipeline}` });
}

// ---------------------------------------------------------------------------------------------
// Commands running the CLI

function cliPath(): string {
    return vscode.workspace.getConfiguration('wand').get<string>('cli.path', 'wand') || 'wand';
}

async function runInTerminal(arg: vscode.Uri | string | undefined, withBlock: boolean): Promise<void> {
    const uri = arg instanceof vscode.Uri ? arg : undefined;
    const ref = await resolvePipeline(uri);
    if (!ref) return;
    let block: string | undefined;
    if (withBlock) {
        block = typeof arg === 'string' ? arg : await resolveBlock(ref, (uri ?? vscode.window.activeTextEditor?.document.uri)?.fsPath);
        if (!block) return;
    }
    const shell = shellKind(vscode.env.shell, process.platform);
    const line = commandLine(cliPath(), runPipelineArgs(ref.project, ref.pipeline, block), shell);
    const terminal = vscode.window.terminals.find((it) => it.name === 'Wand' && it.exitStatus === undefined) ?? vscode.window.createTerminal({ name: 'Wand', cwd: ref.project });
    terminal.show(true);
    terminal.sendText(line, true);
}

async function openNotebook(uri?: vscode.Uri): Promise<void> {
    const ref = await resolvePipeline(uri);
    if (!ref) return;
    const cli = cliPath();
    const args = notebookArgs(ref.project, ref.pipeline);
    const stdout = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Wand: writing notebook for ${ref.pipeline}` }, () =>
        new Promise<string | undefined>((resolve) => {
            execFile(cli, args, { cwd: ref.project, maxBuffer: 16 * 1024 * 1024 }, (error, out, err) => {
                output.appendLine(`$ ${cli} ${args.join(' ')}\n${out}${err}`);
                if (error) {
                    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
                    const message = missing ? `Wand: \`${cli}\` not found. Install it with \`cargo install --path kernel\` or set \`wand.cli.path\`.` : `Wand: \`wand notebook\` failed: ${(err || error.message).trim()}`;
                    void vscode.window.showErrorMessage(message);
                    resolve(undefined);
                } else {
                    resolve(out);
                }
            });
        }),
    );
    if (stdout === undefined) return;
    const notebook = notebookCandidates(ref.project, ref.pipeline, stdout, ref.project).find(isFile);
    if (!notebook) {
        void vscode.window.showErrorMessage(`Wand: \`wand notebook\` succeeded but ${ref.pipeline}.ipynb was not found; see the Wand output.`);
        return;
    }
    const target = vscode.Uri.file(notebook);
    try {
        await vscode.commands.executeCommand('vscode.openWith', target, 'jupyter-notebook');
    } catch (error) {
        output.appendLine(`openWith jupyter-notebook: ${String(error)}`);
        await vscode.commands.executeCommand('vscode.open', target);
    }
}

// ---------------------------------------------------------------------------------------------
// DAG view

async function showDag(uri?: vscode.Uri): Promise<void> {
    const ref = await resolvePipeline(uri);
    if (!ref) return;
    const key = `${ref.project}\u0000${ref.pipeline}`;
    const existing = panels.get(key);
    if (existing) {
        existing.panel.reveal(vscode.ViewColumn.Beside);
        existing.refresh();
        return;
    }
    const panel = new DagPanel(ref, () => panels.delete(key));
    panels.set(key, panel);
}

function refreshPanelsFor(file: string): void {
    for (const panel of panels.values()) {
        if (file.startsWith(panel.ref.project + path.sep)) panel.refresh();
    }
}

function refreshPanels(pipeline?: string): void {
    for (const panel of panels.values()) {
        if (pipeline === undefined || panel.ref.pipeline === pipeline) panel.refresh();
    }
}

function nonce(): string {
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    let out = '';
    for (let idx = 0; idx < 32; idx++) out += chars.charAt(Math.floor(Math.random() * chars.length));
    return out;
}

interface ViewMessage {
    type: 'open' | 'refresh';
    uuid?: string;
    file?: string | null;
}

class DagPanel {
    readonly panel: vscode.WebviewPanel;
    private timer: ReturnType<typeof setTimeout> | undefined;
    private loaded = false;

    constructor(
        readonly ref: PipelineRef,
        onClose: () => void,
    ) {
        this.panel = vscode.window.createWebviewPanel('wand.dag', `DAG: ${ref.pipeline}`, vscode.ViewColumn.Beside, { enableScripts: true, localResourceRoots: [] });
        this.panel.onDidDispose(() => {
            if (this.timer) clearTimeout(this.timer);
            onClose();
        });
        this.panel.webview.onDidReceiveMessage((message: ViewMessage) => this.onMessage(message));
        void this.load();
    }

    /** Debounced: saves and watcher events arrive in bursts, and the server reloads first. */
    refresh(): void {
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.load(), 300);
    }

    private async load(): Promise<void> {
        let dag: DagResult | null;
        try {
            dag = await requestDag(metadataPath(this.ref));
        } catch (error) {
            this.showMessage(`Cannot draw ${this.ref.pipeline}: ${String(error)}`);
            return;
        }
        if (!dag) {
            this.showMessage(`wand-lsp does not know pipeline ${this.ref.pipeline}.`);
            return;
        }
        if (this.loaded) {
            void this.panel.webview.postMessage({ type: 'update', svg: renderDagSvg(dag), title: dag.pipeline });
        } else {
            this.panel.webview.html = renderDagHtml(dag, { cspSource: this.panel.webview.cspSource, nonce: nonce() });
            this.loaded = true;
        }
    }

    private showMessage(text: string): void {
        this.loaded = false;
        const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
        this.panel.webview.html = `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';"></head><body style="font-family: var(--vscode-font-family); padding: 16px">${escaped}</body></html>`;
    }

    private async onMessage(message: ViewMessage): Promise<void> {
        if (message.type === 'refresh') {
            this.refresh();
            return;
        }
        if (message.type !== 'open') return;
        const target = message.file ? vscode.Uri.parse(message.file) : vscode.Uri.file(metadataPath(this.ref));
        if (!message.file) void vscode.window.showInformationMessage(`Wand: block ${message.uuid ?? ''} has no file; opening the pipeline instead.`);
        await vscode.window.showTextDocument(target, { viewColumn: vscode.ViewColumn.One, preview: false });
    }
}
