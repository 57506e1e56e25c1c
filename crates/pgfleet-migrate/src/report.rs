//! Printable summaries of a [`FleetReport`] that stay short for 10,000 targets: a line per kind
//! with counts, then the outliers (targets not at the newest version, with problems, failed),
//! each named; `verbose` lists every target.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::exec::Outcome;
use crate::fleet::FleetReport;
use crate::source::{MigrationSet, TargetKind};

/// How many targets a group lists before "… and N more" (unless verbose).
const LIST_LIMIT: usize = 10;

/// `status`: per kind, how many targets are at which version; then the outliers.
pub fn status_text(report: &FleetReport, set: &MigrationSet, verbose: bool) -> String {
    let mut out = String::new();
    for kind in TargetKind::ALL {
        let results: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.target.kind == kind)
            .collect();
        if results.is_empty() {
            continue;
        }
        let latest = set.latest(kind);
        let mut by_version: BTreeMap<i64, usize> = BTreeMap::new();
        let mut outliers = Vec::new();
        for r in &results {
            match &r.outcome {
                Outcome::Status(s) => {
                    *by_version.entry(s.version).or_default() += 1;
                    if s.version != latest || s.pending > 0 || !s.problems.is_empty() || verbose {
                        let mut line = format!(
                            "{}: version {}, {} pending",
                            r.target.name(),
                            s.version,
                            s.pending
                        );
                        for p in &s.problems {
                            let _ = write!(line, "; {p}");
                        }
                        outliers.push(line);
                    }
                }
                Outcome::Failed { error, .. } => {
                    outliers.push(format!("{}: failed: {error}", r.target.name()))
                }
                Outcome::Skipped { reason } => {
                    outliers.push(format!("{}: skipped: {reason}", r.target.name()))
                }
                other => outliers.push(format!("{}: {other:?}", r.target.name())),
            }
        }
        let versions: Vec<String> = by_version
            .iter()
            .rev()
            .map(|(v, n)| {
                format!(
                    "{n} at {}{}",
                    version_label(*v),
                    if *v == latest { " (newest)" } else { "" }
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{kind}: {} target(s); {}; newest file version {}",
            results.len(),
            if versions.is_empty() {
                "none readable".to_string()
            } else {
                versions.join(", ")
            },
            version_label(latest)
        );
        write_list(&mut out, &outliers, verbose);
    }
    if out.is_empty() {
        out.push_str("no targets\n");
    }
    out
}

/// `up`/`down`/`repair`/`plan`: counts, then targets grouped by identical steps, then every
/// failure with its error.
pub fn run_text(report: &FleetReport, verbose: bool) -> String {
    let mut out = String::new();
    let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &report.results {
        let name = r.target.name();
        let (count_key, group) = match &r.outcome {
            Outcome::Applied { steps } => ("done", Some(("done", steps.join("; ")))),
            Outcome::Planned { steps } => ("would run", Some(("would run", steps.join("; ")))),
            Outcome::UpToDate => ("up to date", Some(("up to date", String::new()))),
            Outcome::Skipped { reason } => ("skipped", Some(("skipped", reason.clone()))),
            Outcome::NotStarted => (
                "not started",
                Some(("not started (an earlier target failed)", String::new())),
            ),
            Outcome::Failed { error, done } => {
                let mut line = format!("{name} — {}: {error}", r.target.describe());
                if !done.is_empty() {
                    let _ = write!(line, " (completed before the failure: {})", done.join("; "));
                }
                failures.push(line);
                ("failed", None)
            }
            Outcome::Status(_) => ("status", None),
        };
        *counts.entry(count_key).or_default() += 1;
        if let Some((what, steps)) = group {
            groups
                .entry((what.to_string(), steps))
                .or_default()
                .push(name);
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(
        out,
        "{} target(s): {}",
        report.results.len(),
        summary.join(", ")
    );
    for ((what, steps), names) in &groups {
        let detail = if steps.is_empty() {
            String::new()
        } else {
            format!(": {steps}")
        };
        let _ = writeln!(out, "{what} on {} target(s){detail}", names.len());
        write_list(&mut out, names, verbose);
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "failed on {} target(s):", failures.len());
        for f in &failures {
            let _ = writeln!(out, "  {f}");
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn write_list(out: &mut String, items: &[String], verbose: bool) {
    let shown = if verbose {
        items.len()
    } else {
        items.len().min(LIST_LIMIT)
    };
    for item in &items[..shown] {
        let _ = writeln!(out, "  {item}");
    }
    if shown < items.len() {
        let _ = writeln!(
            out,
            "  … and {} more (--verbose lists all)",
            items.len() - shown
        );
    }
}

fn version_label(v: i64) -> String {
    if v == 0 {
        "none".to_string()
    } else {
        format!("V{v:04}")
    }
}
