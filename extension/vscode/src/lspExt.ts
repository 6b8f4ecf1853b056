/**
 * Wand's custom LSP surface, mirrored by hand from `lsp/src/handlers/runs.rs`
 * (`DagParams`, `DagResult`, `DagNode`, `DagEdge`) and described in `docs/lsp-extensions.md`.
 * Keep the two in step: a change on one side is a protocol change.
 *
 * This module must not import `vscode` so that tests can load it outside the editor.
 */

/** `wand/dag` request method name. The answer is `DagResult | null` (null: unknown file or pipeline). */
export const dagMethod = 'wand/dag';

/** `wand/dagChanged` notification: the server may send it when a pipeline's graph or run state changes. */
export const dagChangedMethod = 'wand/dagChanged';

/**
 * Params of `wand/dag`: either `uri` (any file of a pipeline: its metadata.yaml or a block file)
 * or `project` (the project root as a URI) plus `pipeline` (its uuid).
 */
export type DagParams = { uri: string } | { project: string; pipeline: string };

/**
 * A block's state in the last run. The documented names are listed; the server may send others
 * (the run record's raw status such as `succeeded`, `reused`, `test_failed`, `not_run`), so
 * consumers must accept any string.
 */
export type KnownNodeState = 'fresh' | 'stale' | 'failed' | 'running' | 'skipped' | 'never-run';
export type NodeState = KnownNodeState | (string & Record<never, never>) | null;

export interface DagNode {
    uuid: string;
    /** Mage block type (`data_loader`, `transformer`, ...); null when the file does not say. */
    type: string | null;
    language: string | null;
    /** URI of the block file; null when it cannot be resolved. */
    file: string | null;
    state: NodeState;
}

export interface DagEdge {
    from: string;
    to: string;
}

export interface DagResult {
    pipeline: string;
    nodes: DagNode[];
    edges: DagEdge[];
}

/** Params of `wand/dagChanged` (all optional: a bare notification means "refresh everything"). */
export interface DagChangedParams {
    pipeline?: string;
    project?: string;
}

/** `wand/indexReady` notification: the workspace index is built and its diagnostics published. */
export const indexReadyMethod = 'wand/indexReady';

export interface IndexReadyParams {
    /** Project roots, as URIs. */
    projects: string[];
}

/** `wand/documentText` request (tests and debugging): the server's copy of an open document. */
export const documentTextMethod = 'wand/documentText';

export interface DocumentTextParams {
    uri: string;
}

export interface DocumentTextResult {
    version: number | null;
    text: string | null;
}
