//! Minimal text edits of a pipeline's `metadata.yaml`: append a block entry in Mage's
//! canonical shape, change a block's `upstream_blocks`, and keep `downstream_blocks`
//! symmetric. Everything else in the file stays byte for byte. Pure.

use pipeline::yaml::{self, Node};
use pipeline::{BlockType, Language};

struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| std::cmp::Reverse(edit.start));
    let mut out = text.to_owned();
    for edit in edits {
        out.replace_range(edit.start..edit.end, &edit.text);
    }
    out
}

fn column(text: &str, offset: usize) -> usize {
    offset - text[..offset].rfind('\n').map_or(0, |it| it + 1)
}

fn line_end(text: &str, mut offset: usize) -> usize {
    if text[..offset].ends_with('\n') {
        offset -= 1;
    }
    offset + text[offset..].find('\n').unwrap_or(text.len() - offset)
}

/// A list value as Mage writes it: `[]`, or one `- item` per line at the key's column.
fn list_text(items: &[String], indent: usize) -> String {
    if items.is_empty() {
        return " []".to_owned();
    }
    items.iter().map(|item| format!("\n{}- {}", " ".repeat(indent), scalar(item))).collect()
}

fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-' | '/' | '.'))
        && !matches!(text, "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "~")
        && !text.starts_with(['-', '.'])
        && text.parse::<f64>().is_err();
    if plain { text.to_owned() } else { format!("'{}'", text.replace('\'', "''")) }
}

fn blocks(doc: &Node) -> Option<&[Node]> {
    doc.get("blocks")?.as_seq()
}

fn find_block<'a>(doc: &'a Node, uuid: &str) -> Option<&'a Node> {
    blocks(doc)?.iter().find(|block| block.get("uuid").and_then(Node::as_str) == Some(uuid))
}

fn str_list(node: Option<&Node>) -> Vec<String> {
    node.and_then(Node::as_seq).map(|items| items.iter().filter_map(|it| it.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// Replaces the list under `key` in `block` (or inserts the key when missing, before `uuid`).
fn set_list(text: &str, block: &Node, key: &str, items: &[String]) -> Option<Edit> {
    let entries = block.as_map()?;
    match entries.iter().find(|entry| entry.key.as_str() == Some(key)) {
        Some(entry) => {
            let indent = column(text, entry.key.range.start);
            let start = entry.key.range.end;
            // Past the key's `:` and to the end of the value's last line.
            let end = if entry.value.is_null() && entry.value.range.is_empty() {
                line_end(text, start)
            } else {
                line_end(text, entry.value.range.end.max(start))
            };
            Some(Edit { start, end, text: format!(":{}", list_text(items, indent)) })
        }
        None => {
            let first = entries.first()?;
            let indent = column(text, first.key.range.start);
            let at = line_end(text, block.range.end);
            Some(Edit { start: at, end: at, text: format!("\n{}{key}:{}", " ".repeat(indent), list_text(items, indent)) })
        }
    }
}

/// The edits that make parent `parent`'s `downstream_blocks` contain (or not) `child`.
fn downstream_edit(text: &str, doc: &Node, parent: &str, child: &str, present: bool) -> Option<Edit> {
    let block = find_block(doc, parent)?;
    let mut items = str_list(block.get("downstream_blocks"));
    let has = items.iter().any(|it| it == child);
    if has == present {
        return None;
    }
    if present {
        items.push(child.to_owned());
    } else {
        items.retain(|it| it != child);
    }
    set_list(text, block, "downstream_blocks", &items)
}

fn parse(text: &str) -> anyhow::Result<Node> {
    match yaml::parse(text) {
        (Some(doc), None) => Ok(doc),
        (_, Some(err)) => anyhow::bail!("metadata.yaml does not parse ({} at byte {}); fix it first", err.message, err.offset),
        (None, None) => anyhow::bail!("metadata.yaml is empty"),
    }
}

/// Appends a new block to `blocks:` and adds it to its parents' `downstream_blocks`.
pub fn add_block(
    text: &str,
    uuid: &str,
    block_type: BlockType,
    language: Language,
    upstream: &[String],
    profile: Option<&str>,
) -> anyhow::Result<String> {
    let doc = parse(text)?;
    if find_block(&doc, uuid).is_some() {
        anyhow::bail!("block `{uuid}` already exists");
    }
    for up in upstream {
        if find_block(&doc, up).is_none() {
            anyhow::bail!("no block `{up}` in this pipeline (named in --upstream)");
        }
    }
    let mut edits: Vec<Edit> = upstream.iter().filter_map(|up| downstream_edit(text, &doc, up, uuid, true)).collect();
    let entry = |indent: usize| -> String {
        let pad = " ".repeat(indent + 2);
        let configuration = match profile {
            Some(profile) => format!("\n{pad}  data_provider_profile: {}", scalar(profile)),
            None => " {}".to_owned(),
        };
        let lines = [
            format!("all_upstream_blocks_executed: {}", upstream.is_empty()),
            "color: null".to_owned(),
            format!("configuration:{configuration}"),
            "downstream_blocks: []".to_owned(),
            "executor_config: null".to_owned(),
            "executor_type: local_python".to_owned(),
            "has_callback: false".to_owned(),
            format!("language: {}", language.as_str()),
            format!("name: {}", scalar(uuid)),
            "retry_config: null".to_owned(),
            "status: not_executed".to_owned(),
            "timeout: null".to_owned(),
            format!("type: {}", block_type.as_str()),
            format!("upstream_blocks:{}", list_text(upstream, indent + 2)),
            format!("uuid: {}", scalar(uuid)),
        ];
        let mut out = String::new();
        for (idx, line) in lines.iter().enumerate() {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            out.push_str(if idx == 0 { "- " } else { "  " });
            out.push_str(line);
        }
        out
    };
    let root = doc.as_map().ok_or_else(|| anyhow::format_err!("metadata.yaml is not a mapping"))?;
    match root.iter().find(|it| it.key.as_str() == Some("blocks")) {
        Some(blocks_entry) => match blocks_entry.value.as_seq() {
            Some(items) if !items.is_empty() => {
                let last = items.last().unwrap();
                let first_key = last.as_map().and_then(|it| it.first()).map(|it| it.key.range.start).unwrap_or(last.range.start);
                let indent = column(text, first_key).saturating_sub(2);
                let at = line_end(text, last.range.end);
                edits.push(Edit { start: at, end: at, text: entry(indent) });
            }
            _ => {
                let indent = column(text, blocks_entry.key.range.start);
                let start = blocks_entry.key.range.end;
                let end = line_end(text, blocks_entry.value.range.end.max(start));
                edits.push(Edit { start, end, text: format!(":{}", entry(indent)) });
            }
        },
        None => {
            let at = text.len();
            let sep = if text.ends_with('\n') || text.is_empty() { "" } else { "\n" };
            edits.push(Edit { start: at, end: at, text: format!("{sep}blocks:{}\n", entry(0)) });
        }
    }
    Ok(apply(text, edits))
}

/// Sets a block's `upstream_blocks` and fixes the parents' `downstream_blocks` both ways.
pub fn set_upstream(text: &str, uuid: &str, upstream: &[String]) -> anyhow::Result<String> {
    let doc = parse(text)?;
    let block = find_block(&doc, uuid).ok_or_else(|| anyhow::format_err!("no block `{uuid}` in this pipeline"))?;
    for up in upstream {
        if find_block(&doc, up).is_none() {
            anyhow::bail!("no block `{up}` in this pipeline (named in --upstream)");
        }
        if up == uuid {
            anyhow::bail!("block `{uuid}` cannot be its own upstream block");
        }
    }
    let old = str_list(block.get("upstream_blocks"));
    if old == upstream {
        return Ok(text.to_owned());
    }
    let mut edits: Vec<Edit> = set_list(text, block, "upstream_blocks", upstream).into_iter().collect();
    for gone in old.iter().filter(|it| !upstream.contains(it)) {
        edits.extend(downstream_edit(text, &doc, gone, uuid, false));
    }
    for new in upstream.iter().filter(|it| !old.contains(it)) {
        edits.extend(downstream_edit(text, &doc, new, uuid, true));
    }
    Ok(apply(text, edits))
}

/// A new pipeline's metadata.yaml (Mage's canonical keys, no blocks).
pub fn new_pipeline(uuid: &str) -> String {
    format!(
        "blocks: []\ncache_block_output_in_memory: false\ncallbacks: []\nconcurrency_config: {{}}\nconditionals: []\n\
         created_at: '{}'\ndata_integration: null\ndescription: null\nexecutor_config: {{}}\nexecutor_count: 1\n\
         executor_type: null\nextensions: {{}}\nname: {}\nnotification_config: {{}}\nremote_variables_dir: null\n\
         retry_config: {{}}\nrun_pipeline_in_one_process: false\nsettings:\n  triggers: null\nspark_config: {{}}\n\
         tags: []\ntype: python\nuuid: {}\nvariables_dir: null\nwidgets: []\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00"),
        scalar(uuid),
        scalar(uuid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "blocks:\n- downstream_blocks:\n  - clean\n  name: load\n  type: data_loader\n  upstream_blocks: []\n  uuid: load\n- downstream_blocks: []\n  type: transformer\n  upstream_blocks:\n  - load\n  uuid: clean\nname: p\n";

    fn lists(text: &str, uuid: &str) -> (Vec<String>, Vec<String>) {
        let doc = parse(text).unwrap();
        let block = find_block(&doc, uuid).unwrap();
        (str_list(block.get("upstream_blocks")), str_list(block.get("downstream_blocks")))
    }

    #[test]
    fn adds_a_block_and_its_reverse_edges() {
        let out = add_block(TEXT, "export", BlockType::DataExporter, Language::Python, &["clean".into(), "load".into()], None).unwrap();
        assert_eq!(lists(&out, "export"), (vec!["clean".to_owned(), "load".to_owned()], vec![]));
        assert_eq!(lists(&out, "clean").1, vec!["export"]);
        assert_eq!(lists(&out, "load").1, vec!["clean", "export"]);
        assert!(out.ends_with("  uuid: export\nname: p\n"), "{out}");
        let project = new_pipeline("p2");
        let out = add_block(&project, "first", BlockType::DataLoader, Language::Sql, &[], Some("dev")).unwrap();
        assert_eq!(lists(&out, "first"), (vec![], vec![]));
        assert!(out.contains("  configuration:\n    data_provider_profile: dev\n"), "{out}");
    }

    #[test]
    fn changes_upstream_symmetrically() {
        let out = set_upstream(TEXT, "clean", &[]).unwrap();
        assert_eq!(lists(&out, "clean").0, Vec::<String>::new());
        assert_eq!(lists(&out, "load").1, Vec::<String>::new());
        let back = set_upstream(&out, "clean", &["load".into()]).unwrap();
        assert_eq!(lists(&back, "clean").0, vec!["load"]);
        assert_eq!(lists(&back, "load").1, vec!["clean"]);
        assert!(set_upstream(TEXT, "clean", &["nope".into()]).is_err());
    }
}
