/**
 * A layered (Sugiyama-style, simplified) layout of a pipeline DAG: pure functions, no `vscode`.
 *
 * Self loops and edges naming unknown blocks are dropped; blocks without any edge get a last row.
 *
 * 1. Layers: longest path from the sources (Kahn's order), so every edge points down.
 *    Blocks on a cycle (the server reports those as diagnostics, but may still send the edges)
 *    are put one layer below everything placed, so the layout always terminates.
 * 2. Order within a layer: start from the server's order (Mage's display order), then a few
 *    barycenter sweeps down and up to reduce crossings.
 * 3. Coordinates: fixed-size boxes, layers top to bottom, each layer centred.
 */

import type { DagEdge, DagNode } from './lspExt';

export interface LayoutOptions {
    nodeHeight: number;
    /** Minimum box width; boxes grow with the longest label. */
    minNodeWidth: number;
    /** Approximate width of one character of the label font, in px. */
    charWidth: number;
    horizontalGap: number;
    verticalGap: number;
    margin: number;
}

export const defaultLayoutOptions: LayoutOptions = {
    nodeHeight: 52,
    minNodeWidth: 160,
    charWidth: 7.8,
    horizontalGap: 40,
    verticalGap: 56,
    margin: 24,
};

export interface PlacedNode {
    uuid: string;
    layer: number;
    /** Position within its layer, from the left. */
    order: number;
    /** Top-left corner. */
    x: number;
    y: number;
    width: number;
    height: number;
}

export interface PlacedEdge {
    from: string;
    to: string;
    /** SVG path data from the bottom centre of `from` to the top centre of `to`. */
    path: string;
    /** True when the edge does not point down (a cycle): drawn, but flagged. */
    backward: boolean;
}

export interface Layout {
    nodes: PlacedNode[];
    edges: PlacedEdge[];
    width: number;
    height: number;
    layers: string[][];
}

/** Assigns each node a layer: the length of the longest path from a source. */
export function assignLayers(uuids: readonly string[], edges: readonly DagEdge[]): Map<string, number> {
    const known = new Set(uuids);
    const indegree = new Map<string, number>(uuids.map((uuid) => [uuid, 0]));
    const children = new Map<string, string[]>(uuids.map((uuid) => [uuid, []]));
    for (const edge of uniqueEdges(edges)) {
        if (!known.has(edge.from) || !known.has(edge.to) || edge.from === edge.to) continue;
        children.get(edge.from)?.push(edge.to);
        indegree.set(edge.to, (indegree.get(edge.to) ?? 0) + 1);
    }
    const layer = new Map<string, number>();
    const queue = uuids.filter((uuid) => indegree.get(uuid) === 0);
    for (const uuid of queue) layer.set(uuid, 0);
    for (let idx = 0; idx < queue.length; idx++) {
        const uuid = queue[idx];
        const here = layer.get(uuid) ?? 0;
        for (const child of children.get(uuid) ?? []) {
            layer.set(child, Math.max(layer.get(child) ?? 0, here + 1));
            const left = (indegree.get(child) ?? 0) - 1;
            indegree.set(child, left);
            if (left === 0) queue.push(child);
        }
    }
    // Whatever Kahn's algorithm did not reach sits on (or below) a cycle.
    const reached = new Set(queue);
    const placedMax = Math.max(-1, ...queue.map((uuid) => layer.get(uuid) ?? 0));
    for (const uuid of uuids) {
        if (!reached.has(uuid)) layer.set(uuid, placedMax + 1);
    }
    return layer;
}

/** Computes the full layout. Edges naming unknown nodes are dropped. */
export function layoutDag(nodes: readonly Pick<DagNode, 'uuid'>[], edges: readonly DagEdge[], labelOf: (uuid: string) => string[] = (uuid) => [uuid], options: LayoutOptions = defaultLayoutOptions): Layout {
    const uuids = dedupe(nodes.map((node) => node.uuid));
    const known = new Set(uuids);
    const keptEdges = uniqueEdges(edges).filter((edge) => known.has(edge.from) && known.has(edge.to) && edge.from !== edge.to);
    const layerOf = assignLayers(uuids, keptEdges);

    // Blocks with no edge at all (markdown notes, say) go to a row of their own below the graph,
    // so they do not push the sources off centre.
    const wired = new Set(keptEdges.flatMap((edge) => [edge.from, edge.to]));
    if (wired.size > 0) {
        const below = Math.max(...[...wired].map((uuid) => layerOf.get(uuid) ?? 0)) + 1;
        for (const uuid of uuids) if (!wired.has(uuid)) layerOf.set(uuid, below);
    }
    const layerCount = uuids.length === 0 ? 0 : Math.max(...uuids.map((uuid) => layerOf.get(uuid) ?? 0)) + 1;
    const layers: string[][] = Array.from({ length: layerCount }, () => []);
    for (const uuid of uuids) layers[layerOf.get(uuid) ?? 0].push(uuid);

    orderLayers(layers, keptEdges);

    const longest = Math.max(0, ...uuids.flatMap((uuid) => labelOf(uuid).map((line) => line.length)));
    const width = Math.max(options.minNodeWidth, Math.ceil(longest * options.charWidth) + 32);
    const widest = Math.max(0, ...layers.map((layer) => layer.length));
    const totalWidth = options.margin * 2 + Math.max(0, widest * width + (widest - 1) * options.horizontalGap);
    const totalHeight = options.margin * 2 + Math.max(0, layerCount * options.nodeHeight + (layerCount - 1) * options.verticalGap);

    const placed = new Map<string, PlacedNode>();
    layers.forEach((layer, layerIdx) => {
        const rowWidth = layer.length * width + (layer.length - 1) * options.horizontalGap;
        const left = (totalWidth - rowWidth) / 2;
        layer.forEach((uuid, order) => {
            placed.set(uuid, {
                uuid,
                layer: layerIdx,
                order,
                x: round(left + order * (width + options.horizontalGap)),
                y: round(options.margin + layerIdx * (options.nodeHeight + options.verticalGap)),
                width,
                height: options.nodeHeight,
            });
        });
    });

    const placedEdges = keptEdges.flatMap((edge): PlacedEdge[] => {
        const from = placed.get(edge.from);
        const to = placed.get(edge.to);
        if (!from || !to) return [];
        return [{ from: edge.from, to: edge.to, path: edgePath(from, to), backward: to.layer <= from.layer }];
    });

    return { nodes: uuids.map((uuid) => placed.get(uuid)).filter((it): it is PlacedNode => it !== undefined), edges: placedEdges, width: totalWidth, height: totalHeight, layers };
}

/** Barycenter ordering: a few sweeps down then up, keeping the input order on ties. */
function orderLayers(layers: string[][], edges: readonly DagEdge[]): void {
    const parents = new Map<string, string[]>();
    const children = new Map<string, string[]>();
    for (const edge of edges) {
        parents.set(edge.to, [...(parents.get(edge.to) ?? []), edge.from]);
        children.set(edge.from, [...(children.get(edge.from) ?? []), edge.to]);
    }
    const position = new Map<string, number>();
    const remember = (layer: string[]): void => layer.forEach((uuid, idx) => position.set(uuid, idx));
    layers.forEach(remember);
    const sortBy = (layer: string[], neighbours: Map<string, string[]>): void => {
        const keyed = layer.map((uuid, idx) => {
            const around = (neighbours.get(uuid) ?? []).map((it) => position.get(it)).filter((it): it is number => it !== undefined);
            const key = around.length === 0 ? idx : around.reduce((acc, it) => acc + it, 0) / around.length;
            return { uuid, key, idx };
        });
        keyed.sort((left, right) => left.key - right.key || left.idx - right.idx);
        layer.splice(0, layer.length, ...keyed.map((it) => it.uuid));
        remember(layer);
    };
    for (let sweep = 0; sweep < 4; sweep++) {
        for (let idx = 1; idx < layers.length; idx++) sortBy(layers[idx], parents);
        for (let idx = layers.length - 2; idx >= 0; idx--) sortBy(layers[idx], children);
    }
}

function edgePath(from: PlacedNode, to: PlacedNode): string {
    const x1 = from.x + from.width / 2;
    const y1 = from.y + from.height;
    const x2 = to.x + to.width / 2;
    const y2 = to.y;
    if (to.layer <= from.layer) {
        // Backward edge (cycle): loop out to the right of both boxes.
        const side = Math.max(from.x + from.width, to.x + to.width) + 24;
        return `M ${fmt(from.x + from.width)} ${fmt(from.y + from.height / 2)} C ${fmt(side)} ${fmt(from.y + from.height / 2)}, ${fmt(side)} ${fmt(to.y + to.height / 2)}, ${fmt(to.x + to.width)} ${fmt(to.y + to.height / 2)}`;
    }
    const bend = Math.max(20, (y2 - y1) / 2);
    return `M ${fmt(x1)} ${fmt(y1)} C ${fmt(x1)} ${fmt(y1 + bend)}, ${fmt(x2)} ${fmt(y2 - bend)}, ${fmt(x2)} ${fmt(y2)}`;
}

function uniqueEdges(edges: readonly DagEdge[]): DagEdge[] {
    const seen = new Set<string>();
    return edges.filter((edge) => {
        const key = `${edge.from}\u0000${edge.to}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
    });
}

function dedupe(items: string[]): string[] {
    return [...new Set(items)];
}

function round(value: number): number {
    return Math.round(value * 10) / 10;
}

function fmt(value: number): string {
    return String(round(value));
}
