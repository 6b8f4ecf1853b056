//! What to run: a pure function of the DAG, the mode, stored freshness and the last run.
//!
//! [`scope`] picks the blocks a run considers (topologically ordered); [`decide`] is asked for
//! each block once its upstream blocks are done, so an upstream re-run whose output did not
//! change (early cutoff) leaves its descendants fresh.

use std::collections::BTreeSet;

use pipeline::Dag;
use pipeline::runrecord::BlockStatus;

use super::freshness::Freshness;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Run every block.
    All,
    /// Run only blocks whose fingerprint differs from their stored output's.
    Changed,
    /// Re-run the blocks that did not succeed in the last run, reuse the others' outputs.
    Resume,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Run,
    /// Use the stored output.
    Reuse,
}

/// The blocks of this run in topological order: every runnable block, or with `target` that
/// block and its runnable ancestors. Blocks that pipeline runs do not execute (markdown,
/// charts, scratchpads) are left out.
pub fn scope<'a>(dag: &'a Dag, runnable: &BTreeSet<String>, target: Option<&str>) -> Result<Vec<&'a str>, String> {
    let order = dag.topo_order().map_err(|cycles| {
        let text: Vec<String> = cycles.iter().map(|cycle| format!("{} -> {}", cycle.join(" -> "), cycle[0])).collect();
        format!("the pipeline has a dependency cycle: {}", text.join("; "))
    })?;
    let wanted: Option<BTreeSet<&str>> = match target {
        None => None,
        Some(target) => {
            if !dag.contains(target) {
                return Err(format!("no block `{target}` in this pipeline"));
            }
            let mut set: BTreeSet<&str> = dag.ancestors(target).into_iter().collect();
            set.insert(target);
            Some(set)
        }
    };
    Ok(order
        .into_iter()
        .filter(|uuid| runnable.contains(*uuid))
        .filter(|uuid| wanted.as_ref().is_none_or(|set| set.contains(uuid)))
        .collect())
}

/// Whether a block runs. `is_target`: the block named by `--block` (always runs);
/// `last_status`: its status in the previous run (for `--resume`); `has_output`: its stored
/// output exists and can be read.
pub fn decide(
    mode: Mode,
    is_target: bool,
    with_target: bool,
    freshness: &Freshness,
    last_status: Option<BlockStatus>,
    has_output: bool,
) -> Decision {
    if is_target {
        return Decision::Run;
    }
    if !has_output {
        return Decision::Run;
    }
    match mode {
        // With --block, ancestors run only when stale or missing.
        Mode::All if with_target => {
            if *freshness == Freshness::Fresh {
                Decision::Reuse
            } else {
                Decision::Run
            }
        }
        Mode::All => Decision::Run,
        Mode::Changed => {
            if *freshness == Freshness::Fresh {
                Decision::Reuse
            } else {
                Decision::Run
            }
        }
        Mode::Resume => match last_status {
            Some(BlockStatus::Succeeded | BlockStatus::Reused) => Decision::Reuse,
            _ => Decision::Run,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::freshness::StaleCause;

    fn dag() -> Dag {
        Dag::build([("load", vec![]), ("about", vec![]), ("clean", vec!["load"]), ("export", vec!["clean"]), ("side", vec!["load"])])
    }

    #[test]
    fn scope_is_topological_and_limited_to_ancestors() {
        let dag = dag();
        let runnable: BTreeSet<String> = ["load", "clean", "export", "side"].iter().map(|it| it.to_string()).collect();
        assert_eq!(scope(&dag, &runnable, None).unwrap(), ["load", "clean", "export", "side"]);
        assert_eq!(scope(&dag, &runnable, Some("export")).unwrap(), ["load", "clean", "export"]);
        assert!(scope(&dag, &runnable, Some("nope")).is_err());
        let cyclic = Dag::build([("a", vec!["b"]), ("b", vec!["a"])]);
        assert!(scope(&cyclic, &runnable, None).unwrap_err().contains("cycle"));
    }

    #[test]
    fn decisions() {
        let stale = Freshness::Stale(vec![StaleCause::CodeChanged]);
        assert_eq!(decide(Mode::All, false, false, &Freshness::Fresh, None, true), Decision::Run);
        assert_eq!(decide(Mode::Changed, false, false, &Freshness::Fresh, None, true), Decision::Reuse);
        assert_eq!(decide(Mode::Changed, false, false, &stale, None, true), Decision::Run);
        assert_eq!(decide(Mode::Changed, false, false, &Freshness::Fresh, None, false), Decision::Run);
        assert_eq!(decide(Mode::Resume, false, false, &stale, Some(BlockStatus::Succeeded), true), Decision::Reuse);
        assert_eq!(decide(Mode::Resume, false, false, &Freshness::Fresh, Some(BlockStatus::Failed), true), Decision::Run);
        assert_eq!(decide(Mode::Resume, false, false, &Freshness::Fresh, Some(BlockStatus::Skipped), true), Decision::Run);
        assert_eq!(decide(Mode::All, false, true, &Freshness::Fresh, None, true), Decision::Reuse);
        assert_eq!(decide(Mode::All, true, true, &Freshness::Fresh, None, true), Decision::Run);
    }
}
