//! The Markdown report of a chaos run: one summary row per scenario, then each scenario's figures per API.

use std::fmt::Write;

use crate::scenarios::Outcome;

/// The whole report.
pub fn markdown(outcomes: &[Outcome], quick: bool) -> String {
    let mut out = String::new();
    let variant = if quick { "short variant (--quick)" } else { "full run" };
    let _ = writeln!(out, "## Chaos suite: {variant}\n");
    let _ = writeln!(
        out,
        "| scenario | chaos | orders accepted | 503 retried | lost | doubled | dead letters (expected) | recovered in | clean exit | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let letters: usize = o.dead_letters.values().sum();
        let expected = o.expected_dead_letters * 3;
        let recovered = o.recovered.map_or("not in 600 s".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        let verdict = if o.passed() { "pass" } else { "FAIL" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {letters} ({expected}) | {recovered} | {} | {verdict} |",
            o.name,
            o.chaos,
            o.accepted,
            o.unavailable,
            o.lost(),
            o.doubled(),
            if o.clean_exit { "yes" } else { "no" },
        );
    }
    for o in outcomes {
        let _ = writeln!(out, "\n### {}\n", o.name);
        let _ = writeln!(
            out,
            "| API | effects expected | delivered once | lost | doubled | raw calls | duplicates absorbed | overlapping calls |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for (api, a) in &o.apis {
            let _ = writeln!(
                out,
                "| {api} | {} | {} | {} | {} | {} | {} | {} |",
                a.expected, a.delivered, a.lost, a.doubled, a.raw_calls, a.duplicates, a.overlapping
            );
        }
        let letters: Vec<String> = o.dead_letters.iter().map(|(t, n)| format!("{t}: {n}")).collect();
        let _ =
            writeln!(out, "\nDead letters: {}. Client requests that failed: {}.", letters.join(", "), o.client_errors);
    }
    out
}
