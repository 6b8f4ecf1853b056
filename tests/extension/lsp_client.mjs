// A minimal LSP client for tests: spawns `wand-lsp`, opens one file and asks `wand/dag` about it.
//
//   node tests/extension/lsp_client.mjs [FILE]   prints the `wand/dag` answer as JSON
//
// The binary is $WAND_LSP, else target/debug/wand-lsp of this repository.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function serverPath() {
    return process.env.WAND_LSP || path.join(repo, 'target', 'debug', 'wand-lsp');
}

/** JSON-RPC over stdio with Content-Length framing. */
export class LspConnection {
    constructor(command, args = [], options = {}) {
        this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
        this.nextId = 1;
        this.pending = new Map();
        this.notifications = [];
        this.waiters = [];
        this.stderr = '';
        this.buffer = Buffer.alloc(0);
        this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
        this.child.stderr.on('data', (chunk) => (this.stderr += chunk));
        this.child.stdout.on('data', (chunk) => this.onData(chunk));
        this.child.on('error', (error) => {
            for (const { reject } of this.pending.values()) reject(error);
        });
    }

    onData(chunk) {
        this.buffer = Buffer.concat([this.buffer, chunk]);
        for (;;) {
            const end = this.buffer.indexOf('\r\n\r\n');
            if (end < 0) return;
            const header = this.buffer.subarray(0, end).toString('ascii');
            const length = Number(/Content-Length: *(\d+)/i.exec(header)?.[1]);
            if (this.buffer.length < end + 4 + length) return;
            const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8');
            this.buffer = this.buffer.subarray(end + 4 + length);
            this.onMessage(JSON.parse(body));
        }
    }

    onMessage(message) {
        if (message.id !== undefined && message.method === undefined) {
            const waiter = this.pending.get(message.id);
            this.pending.delete(message.id);
            if (!waiter) return;
            if (message.error) waiter.reject(new Error(`${message.error.code}: ${message.error.message}`));
            else waiter.resolve(message.result);
        } else if (message.id !== undefined) {
            // A request from the server (registerCapability, workDoneProgress/create, configuration): accept it.
            const result = message.method === 'workspace/configuration' ? (message.params?.items ?? []).map(() => null) : null;
            this.send({ jsonrpc: '2.0', id: message.id, result });
        } else {
            this.notifications.push(message);
            this.waiters = this.waiters.filter((waiter) => !waiter(message));
        }
    }

    send(message) {
        const body = Buffer.from(JSON.stringify(message), 'utf8');
        this.child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
        this.child.stdin.write(body);
    }

    request(method, params, timeoutMs = 20000) {
        const id = this.nextId++;
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(id);
                reject(new Error(`${method}: no answer in ${timeoutMs} ms; stderr:\n${this.stderr}`));
            }, timeoutMs);
            this.pending.set(id, {
                resolve: (value) => (clearTimeout(timer), resolve(value)),
                reject: (error) => (clearTimeout(timer), reject(error)),
            });
            this.send({ jsonrpc: '2.0', id, method, params });
        });
    }

    notify(method, params) {
        this.send({ jsonrpc: '2.0', method, params });
    }

    /** Resolves with the first notification `method` (already received or future), or null after `timeoutMs`. */
    waitFor(method, timeoutMs) {
        const seen = this.notifications.find((it) => it.method === method);
        if (seen) return Promise.resolve(seen);
        return new Promise((resolve) => {
            const timer = setTimeout(() => resolve(null), timeoutMs);
            this.waiters.push((message) => {
                if (message.method !== method) return false;
                clearTimeout(timer);
                resolve(message);
                return true;
            });
        });
    }

    async close() {
        try {
            await this.request('shutdown', null, 5000);
            this.notify('exit', null);
        } catch {
            // fall through to kill
        }
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
        await this.exited;
        clearTimeout(timer);
    }
}

/** Starts `wand-lsp` on `root`, opens `file`, and returns the `wand/dag` answer for it. */
export async function wandDag(file, root = path.dirname(path.dirname(path.dirname(file)))) {
    const server = serverPath();
    if (!existsSync(server)) {
        throw new Error(`wand-lsp not found at ${server}: build it with \`cargo build -p wand-lsp\` (or set WAND_LSP)`);
    }
    const connection = new LspConnection(server, [], { cwd: root });
    try {
        const rootUri = pathToFileURL(root).href;
        await connection.request('initialize', {
            processId: process.pid,
            clientInfo: { name: 'wand-extension-tests' },
            rootUri,
            workspaceFolders: [{ uri: rootUri, name: path.basename(root) }],
            capabilities: { workspace: { workspaceFolders: true }, textDocument: { publishDiagnostics: {} } },
        });
        connection.notify('initialized', {});
        const uri = pathToFileURL(file).href;
        connection.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'yaml', version: 1, text: readFileSync(file, 'utf8') } });
        let answer = await connection.request('wand/dag', { uri });
        if (answer === null) {
            // The index may not be built yet: wait for it once, then ask again.
            await connection.waitFor('wand/indexReady', 10000);
            answer = await connection.request('wand/dag', { uri });
        }
        if (answer === null) throw new Error(`wand/dag answered null for ${uri}`);
        return answer;
    } finally {
        await connection.close();
    }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const file = path.resolve(process.argv[2] ?? path.join(repo, 'examples', 'nyc_taxi', 'pipelines', 'taxi_embedded', 'metadata.yaml'));
    console.log(JSON.stringify(await wandDag(file), null, 2));
}
