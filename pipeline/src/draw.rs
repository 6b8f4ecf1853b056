//! Drawing a pipeline's DAG: Mermaid and DOT text, and a self-contained SVG laid out here (no
//! Graphviz needed). Nodes can carry a run state, which colours their outline.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::{BlockType, Pipeline};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeState {
    Fresh,
    Stale,
    Failed,
    Running,
    Skipped,
    NeverRun,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Fresh => "fresh",
            NodeState::Stale => "stale",
            NodeState::Failed => "failed",
            NodeState::Running => "running",
            NodeState::Skipped => "skipped",
            NodeState::NeverRun => "never-run",
        }
    }

    fn stroke(self) -> &'static str {
        match self {
            NodeState::Fresh => "#2e9d4f",
            NodeState::Stale => "#d08a00",
            NodeState::Failed => "#d12c2c",
            NodeState::Running => "#2d6fd6",
            NodeState::Skipped | NodeState::NeverRun => "#8a8f98",
        }
    }
}

pub type States = HashMap<String, NodeState>;

/// Mage's colour for a block type (fill), so the picture reads like Mage's own.
fn fill(block_type: Option<BlockType>) -> &'static str {
    match block_type {
        Some(BlockType::DataLoader) => "#cfe2ff",
        Some(BlockType::Transformer) => "#e4d5ff",
        Some(BlockType::DataExporter) => "#fff1c2",
        Some(BlockType::Sensor) => "#ffd6e7",
        Some(BlockType::Custom) => "#d8f3ef",
        Some(BlockType::Markdown) => "#eeeeee",
        _ => "#f3f4f6",
    }
}

/// The DAG's nodes in file order with their type, and its edges.
fn nodes(pipeline: &Pipeline) -> Vec<(&str, Option<BlockType>)> {
    pipeline.dag.uuids().map(|uuid| (uuid, pipeline.block(uuid).and_then(|block| block.block_type))).collect()
}

fn mermaid_id(uuid: &str) -> String {
    uuid.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

pub fn mermaid(pipeline: &Pipeline, states: &States) -> String {
    let mut out = String::from("flowchart TD\n");
    for (uuid, block_type) in nodes(pipeline) {
        let kind = block_type.map_or("?", BlockType::as_str);
        let _ = writeln!(out, "    {}[\"{}<br/><small>{}</small>\"]", mermaid_id(uuid), uuid.replace('"', "#quot;"), kind);
    }
    for (from, to) in pipeline.dag.edges() {
        let _ = writeln!(out, "    {} --> {}", mermaid_id(from), mermaid_id(to));
    }
    for (uuid, _) in nodes(pipeline) {
        if let Some(state) = states.get(uuid) {
            let _ = writeln!(out, "    style {} stroke:{},stroke-width:2px", mermaid_id(uuid), state.stroke());
        }
    }
    out
}

pub fn dot(pipeline: &Pipeline, states: &States) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "digraph {} {{\n    rankdir=TB;\n    node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n",
        quote(&pipeline.uuid)
    );
    for (uuid, block_type) in nodes(pipeline) {
        let kind = block_type.map_or("?", BlockType::as_str);
        let stroke = states.get(uuid).map_or("#555555", |state| state.stroke());
        let _ = writeln!(
            out,
            "    {} [label={}, fillcolor=\"{}\", color=\"{stroke}\"];",
            quote(uuid),
            quote(&format!("{uuid}\n{kind}")),
            fill(block_type)
        );
    }
    for (from, to) in pipeline.dag.edges() {
        let _ = writeln!(out, "    {} -> {};", quote(from), quote(to));
    }
    out.push_str("}\n");
    out
}

/// Where each node goes: layers top to bottom, ordered within a layer by the mean position of
/// their upstream blocks (one pass of the barycentre heuristic), blocks on cycles last.
struct Layout<'a> {
    rows: Vec<Vec<&'a str>>,
}

impl<'a> Layout<'a> {
    fn new(pipeline: &'a Pipeline) -> Layout<'a> {
        let mut rows = pipeline.dag.layers();
        let placed: std::collections::HashSet<&str> = rows.iter().flatten().copied().collect();
        let rest: Vec<&str> = pipeline.dag.uuids().filter(|uuid| !placed.contains(uuid)).collect();
        if !rest.is_empty() {
            rows.push(rest);
        }
        let mut position: HashMap<&str, f64> = HashMap::new();
        for row in &mut rows {
            let key = |uuid: &str| {
                let parents = pipeline.dag.upstream(uuid);
                let known: Vec<f64> = parents.iter().filter_map(|parent| position.get(parent).copied()).collect();
                if known.is_empty() { f64::MAX } else { known.iter().sum::<f64>() / known.len() as f64 }
            };
            let mut keyed: Vec<(f64, usize, &str)> = row.iter().enumerate().map(|(idx, uuid)| (key(uuid), idx, *uuid)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            *row = keyed.into_iter().map(|(_, _, uuid)| uuid).collect();
            let n = row.len() as f64;
            for (idx, uuid) in row.iter().enumerate() {
                position.insert(uuid, (idx as f64 + 0.5) / n);
            }
        }
        Layout { rows }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn svg(pipeline: &Pipeline, states: &States) -> String {
    const CHAR_W: f64 = 7.4;
    const NODE_H: f64 = 44.0;
    const GAP_X: f64 = 28.0;
    const GAP_Y: f64 = 56.0;
    const MARGIN: f64 = 20.0;
    let layout = Layout::new(pipeline);
    let width_of = |uuid: &str| (uuid.chars().count().max(12) as f64) * CHAR_W + 24.0;
    let row_width = |row: &Vec<&str>| row.iter().map(|uuid| width_of(uuid)).sum::<f64>() + GAP_X * (row.len().saturating_sub(1)) as f64;
    let total_w = layout.rows.iter().map(row_width).fold(160.0, f64::max) + 2.0 * MARGIN;
    let total_h = layout.rows.len() as f64 * (NODE_H + GAP_Y) - GAP_Y + 2.0 * MARGIN;
    let mut boxes: HashMap<&str, (f64, f64, f64)> = HashMap::new();
    for (depth, row) in layout.rows.iter().enumerate() {
        let mut x = (total_w - row_width(row)) / 2.0;
        let y = MARGIN + depth as f64 * (NODE_H + GAP_Y);
        for uuid in row {
            let w = width_of(uuid);
            boxes.insert(uuid, (x, y, w));
            x += w + GAP_X;
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0}" height="{total_h:.0}" viewBox="0 0 {total_w:.0} {total_h:.0}" font-family="sans-serif" font-size="13">"##
    );
    out.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>"##);
    out.push('\n');
    let _ = writeln!(out, "<title>{}</title>", escape(&pipeline.uuid));
    for (from, to) in pipeline.dag.edges() {
        let (Some(&(fx, fy, fw)), Some(&(tx, ty, tw))) = (boxes.get(from), boxes.get(to)) else { continue };
        let (x1, y1, x2, y2) = (fx + fw / 2.0, fy + NODE_H, tx + tw / 2.0, ty);
        let path = if y2 > y1 {
            let mid = (y1 + y2) / 2.0;
            format!("M{x1:.1},{y1:.1} C{x1:.1},{mid:.1} {x2:.1},{mid:.1} {x2:.1},{y2:.1}")
        } else {
            // An edge back up (on a cycle) goes around the right side.
            let side = fx.max(tx) + fw.max(tw) + 20.0;
            format!(
                "M{:.1},{:.1} C{side:.1},{:.1} {side:.1},{:.1} {:.1},{:.1}",
                fx + fw,
                fy + NODE_H / 2.0,
                fy,
                ty + NODE_H,
                tx + tw,
                ty + NODE_H / 2.0
            )
        };
        let _ = writeln!(
            out,
            r##"<path class="edge" data-from="{}" data-to="{}" d="{path}" fill="none" stroke="#6b7280" stroke-width="1.5" marker-end="url(#arrow)"/>"##,
            escape(from),
            escape(to)
        );
    }
    for (uuid, block_type) in nodes(pipeline) {
        let Some(&(x, y, w)) = boxes.get(uuid) else { continue };
        let state = states.get(uuid).copied();
        let stroke = state.map_or("#4b5563", NodeState::stroke);
        let dash = if state == Some(NodeState::Stale) { r#" stroke-dasharray="5 3""# } else { "" };
        let kind = block_type.map_or("?", BlockType::as_str);
        let state_text = state.map_or(String::new(), |state| format!(" · {}", state.as_str()));
        let _ = writeln!(
            out,
            r##"<g class="node" data-uuid="{uuid}" data-state="{state}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{NODE_H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/><text x="{cx:.1}" y="{ty:.1}" text-anchor="middle" font-weight="600">{uuid}</text><text x="{cx:.1}" y="{sy:.1}" text-anchor="middle" font-size="11" fill="#4b5563">{kind}{state_text}</text></g>"##,
            uuid = escape(uuid),
            state = state.map_or("", NodeState::as_str),
            fill = fill(block_type),
            cx = x + w / 2.0,
            ty = y + 19.0,
            sy = y + 35.0,
        );
    }
    out.push_str("</svg>\n");
    out
}
