//! `triggers.yaml` (spec 8.2): names, schedule types, presets or cron expressions, statuses
//! and environments, as Mage's `Trigger` loader checks them.

use std::collections::HashMap;
use std::path::Path;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Pipeline, Project};
use crate::yaml::Node;

const PRESETS: &[&str] = &["@once", "@hourly", "@daily", "@weekly", "@monthly", "@always_on"];
/// Aliases that croniter (which Mage asks after its own presets) expands itself.
const CRON_ALIASES: &[&str] = &["@yearly", "@annually", "@midnight"];
const ENVS: &[&str] = &["dev", "prod", "staging", "test", "test_mage"];
const SCHEDULE_TYPES: &[&str] = &["time", "api", "event"];
const STATUSES: &[&str] = &["active", "inactive"];

pub(super) fn check(project: &Project, pipeline: &Pipeline, diagnostics: &mut Vec<Diagnostic>) {
    let Some(triggers) = &pipeline.triggers else { return };
    let Some(doc) = &triggers.doc else { return };
    let file = project.abs(&triggers.path);
    let error = |range, message: String, help: &str| Diagnostic::new(Code::InvalidTrigger, &file, range, message).help(help.to_owned());
    let Some(list) = doc.get("triggers") else {
        diagnostics.push(error(
            doc.range,
            "triggers.yaml has no `triggers` list".to_owned(),
            "write `triggers:` followed by a list of triggers",
        ));
        return;
    };
    let Some(items) = list.as_seq() else {
        if !list.is_null() {
            diagnostics.push(error(list.range, "`triggers` must be a list".to_owned(), "each item is a mapping with at least `name`"));
        }
        return;
    };
    let mut names: HashMap<&str, &Node> = HashMap::new();
    for item in items {
        let Some(name_node) = item.get("name").filter(|name| name.as_str().is_some()) else {
            diagnostics.push(error(
                item.range,
                "trigger without `name`".to_owned(),
                "every trigger needs a `name`, unique in the pipeline",
            ));
            continue;
        };
        let name = name_node.as_str().unwrap_or_default();
        if let Some(first) = names.insert(name, name_node) {
            diagnostics.push(
                error(name_node.range, format!("duplicate trigger name `{name}`"), "trigger names are unique per pipeline").related(
                    &file,
                    first.range,
                    "first used here",
                ),
            );
        }
        let schedule_type = item.get("schedule_type").and_then(Node::as_str).unwrap_or("time");
        one_of(item, "schedule_type", SCHEDULE_TYPES, name, &file, diagnostics);
        one_of(item, "status", STATUSES, name, &file, diagnostics);
        if let Some(interval) = item.get("schedule_interval").filter(|it| !it.is_null()) {
            let text = interval.scalar().unwrap_or_default();
            if schedule_type == "time" && !text.contains("{{") {
                if text.starts_with('@') {
                    if !PRESETS.contains(&text) && !CRON_ALIASES.contains(&text) {
                        diagnostics.push(error(
                            interval.range,
                            format!("unknown schedule preset `{text}` in trigger `{name}`"),
                            &format!("use one of {} or a cron expression", PRESETS.join(", ")),
                        ));
                    }
                } else if let Err(problem) = cron(text) {
                    diagnostics.push(error(
                        interval.range,
                        format!("invalid cron expression `{text}` in trigger `{name}`: {problem}"),
                        "cron is `minute hour day-of-month month day-of-week`, e.g. `0 5 * * *`",
                    ));
                }
            }
        }
        if let Some(envs) = item.get("envs").and_then(Node::as_seq) {
            for env in envs {
                let text = env.scalar().unwrap_or_default();
                if !ENVS.contains(&text) {
                    diagnostics.push(error(
                        env.range,
                        format!("unknown environment `{text}` in `envs` of trigger `{name}`"),
                        &format!("Mage accepts {} (an empty list means all)", ENVS.join(", ")),
                    ));
                }
            }
        }
    }
}

fn one_of(item: &Node, key: &str, allowed: &[&str], name: &str, file: &Path, diagnostics: &mut Vec<Diagnostic>) {
    let Some(value) = item.get(key).filter(|it| !it.is_null()) else { return };
    let text = value.scalar().unwrap_or_default();
    if !allowed.contains(&text) {
        diagnostics.push(
            Diagnostic::new(Code::InvalidTrigger, file, value.range, format!("invalid `{key}` `{text}` in trigger `{name}`"))
                .help(crate::load::suggest(text, allowed.iter().copied())),
        );
    }
}

/// Checks a cron expression the way croniter accepts it: five fields (an optional sixth for
/// seconds and seventh for years), each a list of `*`, values, ranges and steps.
pub(crate) fn cron(text: &str) -> Result<(), String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if !(5..=7).contains(&fields.len()) {
        return Err(format!("{} fields, expected 5", fields.len()));
    }
    const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str], u32); 7] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day of week", 0, 7, DAYS, 0),
        ("second", 0, 59, &[], 0),
        ("year", 1970, 2099, &[], 0),
    ];
    for (field, (what, min, max, names, name_base)) in fields.iter().zip(specs) {
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            if let Some(step) = step {
                if !step.parse::<u32>().is_ok_and(|step| step > 0) {
                    return Err(format!("bad step `{step}` in the {what} field"));
                }
            }
            if range == "*" || (range == "?" && matches!(what, "day of month" | "day of week")) {
                continue;
            }
            if what == "day of month" && (range == "L" || range.strip_suffix('W').is_some_and(|day| day.parse::<u32>().is_ok())) {
                continue;
            }
            if what == "day of week" && (range.contains('#') || range.ends_with('L')) {
                let day = range.split(['#', 'L']).next().unwrap_or_default();
                if value(day, names, name_base).is_some_and(|day| day <= max) {
                    continue;
                }
            }
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            for bound in [low, high] {
                match value(bound, names, name_base) {
                    Some(n) if (min..=max).contains(&n) => {}
                    _ => return Err(format!("`{bound}` is not a valid {what} ({min}-{max})")),
                }
            }
        }
    }
    Ok(())
}

fn value(text: &str, names: &[&str], base: u32) -> Option<u32> {
    text.parse().ok().or_else(|| names.iter().position(|name| name.eq_ignore_ascii_case(text)).map(|idx| idx as u32 + base))
}

#[cfg(test)]
mod tests {
    use super::cron;

    #[test]
    fn cron_expressions() {
        for good in ["0 5 * * *", "*/15 0-6,22 1 jan-mar mon-fri", "0 0 L * 5#2", "0 0 * * 7", "0 0 1 1 * 30"] {
            assert_eq!(cron(good), Ok(()), "{good}");
        }
        for bad in ["61 * * * *", "* * *", "* 24 * * *", "*/0 * * * *", "0 0 32 * *", "0 0 * 13 *", "x * * * *"] {
            assert!(cron(bad).is_err(), "{bad}");
        }
    }
}
