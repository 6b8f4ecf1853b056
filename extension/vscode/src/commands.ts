/**
 * Building the `wand` command lines the extension runs (pure, no `vscode`).
 */

import * as nodePath from 'node:path';

export function runPipelineArgs(project: string, pipeline: string, block?: string): string[] {
    const args = ['run', project, pipeline];
    if (block !== undefined) args.push('--block', block);
    return args;
}

export function notebookArgs(project: string, pipeline: string): string[] {
    return ['notebook', pipeline, '--project', project];
}

export function dagArgs(project: string, pipeline: string, format: 'mermaid' | 'dot' | 'svg'): string[] {
    return ['dag', pipeline, '--project', project, '--format', format];
}

export type ShellKind = 'posix' | 'powershell' | 'cmd';

/** Guesses the shell family of a VS Code terminal from its executable name. */
export function shellKind(shellPath: string | undefined, platform: NodeJS.Platform): ShellKind {
    const name = (shellPath ?? '').toLowerCase().split(/[\\/]/).pop() ?? '';
    if (name.startsWith('pwsh') || name.startsWith('powershell')) return 'powershell';
    if (name.startsWith('cmd')) return 'cmd';
    if (name === '' && platform === 'win32') return 'powershell';
    return 'posix';
}

/** Quotes one word for `shell`, leaving plain words alone. */
export function quoteArg(arg: string, shell: ShellKind): string {
    if (/^[A-Za-z0-9_@%+=:,./\\-]+$/.test(arg)) return arg;
    switch (shell) {
        case 'posix':
            return `'${arg.replace(/'/g, `'\\''`)}'`;
        case 'powershell':
            return `'${arg.replace(/'/g, "''")}'`;
        case 'cmd':
            return `"${arg.replace(/"/g, '""')}"`;
    }
}

/** The text to type into a terminal to run `program args...`. */
export function commandLine(program: string, args: readonly string[], shell: ShellKind): string {
    const words = [program, ...args].map((arg) => quoteArg(arg, shell));
    // PowerShell needs the call operator to run a quoted program path.
    if (shell === 'powershell' && words[0] !== program) return `& ${words.join(' ')}`;
    return words.join(' ');
}

/**
 * Where `wand notebook` may have written `<pipeline>.ipynb`: a path it printed (last line that
 * ends in `.ipynb`) first, then the pipeline folder, the project root and the working directory.
 */
export function notebookCandidates(project: string, pipeline: string, stdout: string, cwd: string, path: Pick<typeof nodePath, 'join' | 'isAbsolute' | 'resolve'> = nodePath): string[] {
    const printed = stdout
        .split(/\r?\n/)
        .map((line) => line.trim())
        .map((line) => /([^\s'"`]+\.ipynb)\b/.exec(line)?.[1])
        .filter((it): it is string => it !== undefined)
        .map((it) => (path.isAbsolute(it) ? it : path.resolve(cwd, it)))
        .reverse();
    const file = `${pipeline}.ipynb`;
    const candidates = [...printed, path.join(project, 'pipelines', pipeline, file), path.join(project, file), path.join(cwd, file)];
    return [...new Set(candidates)];
}

/**
 * Resolves the `wand-lsp` binary: the setting when set (relative paths against the first
 * workspace folder, `~` against home), else the first `wand-lsp` on `PATH`.
 */
export function resolveExecutable(setting: string | undefined, name: string, env: { PATH?: string; HOME?: string; PATHEXT?: string }, platform: NodeJS.Platform, exists: (path: string) => boolean, workspaceFolder?: string): string | undefined {
    const path = platform === 'win32' ? nodePath.win32 : nodePath.posix;
    const configured = (setting ?? '').trim();
    if (configured !== '') {
        let candidate = configured;
        if (candidate === '~' || candidate.startsWith('~/')) candidate = path.join(env.HOME ?? '', candidate.slice(1));
        if (!path.isAbsolute(candidate) && candidate.includes(path.sep) && workspaceFolder) candidate = path.join(workspaceFolder, candidate);
        if (path.isAbsolute(candidate)) return exists(candidate) ? candidate : undefined;
        name = candidate;
    }
    const exts = platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').map((it) => it.toLowerCase())] : [''];
    for (const dir of (env.PATH ?? '').split(platform === 'win32' ? ';' : ':')) {
        if (dir === '') continue;
        for (const ext of exts) {
            const candidate = path.join(dir, name + ext);
            if (exists(candidate)) return candidate;
        }
    }
    return undefined;
}
