/**
 * Finding the Mage project and pipeline a file belongs to, from paths alone (pure, no `vscode`).
 * The server knows better (a block file can be shared by several pipelines); the extension asks
 * `wand/dag` first and uses these as a fallback and for the CLI commands.
 */

import * as nodePath from 'node:path';

export interface PathApi {
    sep: string;
    join(...parts: string[]): string;
    dirname(path: string): string;
    basename(path: string, ext?: string): string;
    relative(from: string, to: string): string;
    extname(path: string): string;
}

/** The directories Mage puts block files in, by block type (`Block.__build_file_path`). */
export const blockDirs = ['data_loaders', 'transformers', 'data_exporters', 'custom', 'sensors', 'callbacks', 'conditionals', 'markdowns', 'charts', 'scratchpads', 'extensions', 'dbt'] as const;

/**
 * A Mage project root: a folder with a `metadata.yaml` and either `io_config.yaml` or a
 * `pipelines/` folder (a pipeline's own folder has `metadata.yaml` but neither of the others).
 */
export function isProjectRoot(dir: string, exists: (path: string) => boolean, path: PathApi = nodePath): boolean {
    return exists(path.join(dir, 'metadata.yaml')) && (exists(path.join(dir, 'io_config.yaml')) || exists(path.join(dir, 'pipelines')));
}

/** The nearest enclosing project root of `file`, or undefined. */
export function findProjectRoot(file: string, exists: (path: string) => boolean, path: PathApi = nodePath): string | undefined {
    let dir = path.dirname(file);
    for (;;) {
        if (isProjectRoot(dir, exists, path)) return dir;
        const parent = path.dirname(dir);
        if (parent === dir) return undefined;
        dir = parent;
    }
}

export interface PipelineRef {
    project: string;
    pipeline: string;
}

/**
 * `<project>/pipelines/<pipeline>/<anything>` -> `{project, pipeline}`. Takes the innermost
 * `pipelines` segment so a project nested in another's folder still resolves to itself.
 */
export function pipelineFromPath(file: string, path: PathApi = nodePath): PipelineRef | undefined {
    const parts = file.split(path.sep);
    for (let idx = parts.length - 3; idx >= 0; idx--) {
        if (parts[idx] === 'pipelines' && parts[idx + 1] && idx + 2 < parts.length) {
            const project = parts.slice(0, idx).join(path.sep) || path.sep;
            return { project, pipeline: parts[idx + 1] };
        }
    }
    return undefined;
}

/**
 * The default uuid of a block file: its path under the type folder without the extension
 * (`transformers/clean.py` -> `clean`, `transformers/nested/clean.py` -> `nested/clean`).
 * Blocks moved with `configuration.file_path` are found only through the server.
 */
export function blockUuidFromPath(project: string, file: string, path: PathApi = nodePath): string | undefined {
    const rel = path.relative(project, file);
    if (rel.startsWith('..') || rel === '') return undefined;
    const parts = rel.split(path.sep);
    if (parts.length < 2 || !(blockDirs as readonly string[]).includes(parts[0])) return undefined;
    const last = parts[parts.length - 1];
    const ext = path.extname(last);
    parts[parts.length - 1] = ext ? last.slice(0, -ext.length) : last;
    return parts.slice(1).join('/');
}

/** Pipelines of a project, from the names of `pipelines/<name>/metadata.yaml`. */
export function listPipelines(project: string, readdir: (dir: string) => string[], exists: (path: string) => boolean, path: PathApi = nodePath): string[] {
    const dir = path.join(project, 'pipelines');
    let names: string[];
    try {
        names = readdir(dir);
    } catch {
        return [];
    }
    return names.filter((name) => exists(path.join(dir, name, 'metadata.yaml'))).sort();
}
