//! Markdown and self-contained HTML (with an inline SVG timeline) views of a
//! [`DrillReport`]. JSON is the report itself, serialised.

use std::fmt::Write as _;

use super::build::DrillReport;

/// Seconds for people: `12.3s`, `4m05s`.
pub fn secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

fn comparison(report: &DrillReport) -> String {
    match (&report.time_to_evacuate_secs, &report.previous) {
        (None, _) => "not reached (the run did not finish evacuating)".to_owned(),
        (Some(t), None) => format!(
            "{} (no earlier run of this playbook to compare with)",
            secs(*t)
        ),
        (Some(t), Some(p)) => format!(
            "{} ({} {} than run {}: {})",
            secs(*t),
            secs(p.delta_secs.abs()),
            if p.delta_secs <= 0.0 {
                "faster"
            } else {
                "slower"
            },
            p.run_id,
            secs(p.time_to_evacuate_secs)
        ),
    }
}

fn params(report: &DrillReport) -> String {
    let list: Vec<String> = report
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.join(" ")
    }
}

/// The Markdown view.
pub fn markdown(report: &DrillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Drill report: {}\n", report.playbook);
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| run | `{}` |", report.run_id);
    let _ = writeln!(out, "| result | {} |", report.result);
    let _ = writeln!(out, "| time to evacuate | {} |", comparison(report));
    if let Some(t) = report.time_to_fail_back_secs {
        let _ = writeln!(out, "| time to fail back | {} |", secs(t));
    }
    let _ = writeln!(
        out,
        "| playbook | `{}` (sha256 `{}`) |",
        report.file,
        &report.playbook_sha256[..12.min(report.playbook_sha256.len())]
    );
    let _ = writeln!(out, "| params | `{}` |", params(report));
    let _ = writeln!(
        out,
        "| ran by | {} on {}, evac {} |",
        report.user, report.host, report.version
    );
    let _ = writeln!(out, "| started | {} |", report.started_at);
    let _ = writeln!(out, "| ended | {} |", report.ended_at);
    let _ = writeln!(
        out,
        "\n## Timeline\n\n| what | kind | start | end | took | status |\n| --- | --- | --- | --- | --- | --- |"
    );
    for span in &report.timeline {
        let _ = writeln!(
            out,
            "| {} | {} | +{} | +{} | {} | {} |",
            span.label,
            span.kind,
            secs(span.start_secs),
            secs(span.end_secs),
            secs(span.end_secs - span.start_secs),
            span.status
        );
    }
    if !report.stop_conditions.is_empty() {
        let _ = writeln!(out, "\n## Stop conditions\n");
        for (what, at) in &report.stop_conditions {
            let _ = writeln!(out, "- +{}: {what}", secs(*at));
        }
    }
    let _ = writeln!(
        out,
        "\n## Changes\n\n| at | step | resource | before | after | rolled back |\n| --- | --- | --- | --- | --- | --- |"
    );
    for c in &report.changes {
        let _ = writeln!(
            out,
            "| +{} | {} | {} | {} | {} | {} |",
            secs(c.at_secs),
            c.step,
            c.resource,
            c.before,
            c.after,
            if c.rolled_back { "yes" } else { "no" }
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colours of the timeline bars by kind.
pub fn colour(kind: &str) -> &'static str {
    match kind {
        "step" => "#2b6cb0",
        "increment" => "#2f855a",
        "bake" => "#d69e2e",
        "rollback" => "#c53030",
        _ => "#718096",
    }
}

/// The timeline as an SVG Gantt chart: one row per bar, stop conditions as red lines.
fn svg(report: &DrillReport) -> String {
    let rows = &report.timeline;
    let total = rows
        .iter()
        .map(|r| r.end_secs)
        .fold(0.0_f64, f64::max)
        .max(
            report
                .stop_conditions
                .iter()
                .map(|(_, at)| *at)
                .fold(0.0, f64::max),
        )
        .max(1.0);
    let (label_w, chart_w, row_h) = (260.0, 640.0, 26.0);
    let height = rows.len() as f64 * row_h + 40.0;
    let x = |s: f64| label_w + s / total * chart_w;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="sans-serif" font-size="12">"##,
        w = label_w + chart_w + 20.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let width = (x(r.end_secs) - x(r.start_secs)).max(3.0);
        let _ = write!(
            out,
            r##"<text x="4" y="{ty}">{label}</text><rect class="bar {kind}" x="{bx:.1}" y="{y}" width="{width:.1}" height="18" rx="3" fill="{fill}"><title>{label}: +{s} to +{e}</title></rect>"##,
            ty = y + 13.0,
            label = escape(&r.label),
            kind = escape(&r.kind),
            bx = x(r.start_secs),
            fill = colour(&r.kind),
            s = secs(r.start_secs),
            e = secs(r.end_secs),
        );
    }
    for (what, at) in &report.stop_conditions {
        let _ = write!(
            out,
            r##"<line class="stop" x1="{px:.1}" y1="0" x2="{px:.1}" y2="{height}" stroke="#e53e3e" stroke-width="2"><title>{what}</title></line>"##,
            px = x(*at),
            what = escape(what)
        );
    }
    let axis_y = height - 12.0;
    let _ = write!(
        out,
        r##"<text x="{label_w}" y="{axis_y}" fill="#4a5568">+0s</text><text x="{end:.1}" y="{axis_y}" text-anchor="end" fill="#4a5568">+{total}</text></svg>"##,
        end = label_w + chart_w,
        total = secs(total)
    );
    out
}

/// The HTML view: one file, no external scripts, fonts or images; printable.
pub fn html(report: &DrillReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Drill report: {title}</title><style>
body{{font-family:sans-serif;margin:2em;color:#1a202c}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #cbd5e0;padding:4px 8px;text-align:left;font-size:13px}} th{{background:#edf2f7}}
.legend span{{display:inline-block;padding:2px 8px;margin-right:8px;color:#fff;border-radius:3px}}
@media print{{body{{margin:0}}}}</style></head><body>"#,
        title = escape(&report.playbook)
    );
    let _ = write!(
        out,
        "<h1>Drill report: {}</h1><table>",
        escape(&report.playbook)
    );
    let mut row = |k: &str, v: String| {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    };
    row("run", report.run_id.clone());
    row("result", report.result.clone());
    row("time to evacuate", comparison(report));
    if let Some(t) = report.time_to_fail_back_secs {
        row("time to fail back", secs(t));
    }
    row(
        "playbook",
        format!("{} (sha256 {})", report.file, report.playbook_sha256),
    );
    row("params", params(report));
    row(
        "ran by",
        format!(
            "{} on {}, evac {}",
            report.user, report.host, report.version
        ),
    );
    row("started", report.started_at.clone());
    row("ended", report.ended_at.clone());
    out.push_str("</table><h2>Timeline</h2><p class=\"legend\">");
    for kind in ["step", "increment", "bake", "rollback"] {
        let _ = write!(
            out,
            r#"<span style="background:{}">{kind}</span>"#,
            colour(kind)
        );
    }
    out.push_str("</p>");
    out.push_str(&svg(report));
    out.push_str("<h2>Changes</h2><table><tr><th>at</th><th>step</th><th>resource</th><th>before</th><th>after</th><th>rolled back</th></tr>");
    for c in &report.changes {
        let _ = write!(
            out,
            "<tr><td>+{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            secs(c.at_secs),
            escape(&c.step),
            escape(&c.resource),
            escape(&c.before),
            escape(&c.after),
            if c.rolled_back { "yes" } else { "no" }
        );
    }
    out.push_str("</table></body></html>\n");
    out
}
