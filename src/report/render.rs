//! Markdown and self-contained HTML (with an inline SVG timeline) views of a
//! [`DrillReport`]. JSON is the report itself, serialised.

use std::fmt::Write as _;

use super::build::{AfterRollback, DrillReport, Span};

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
        (Some(t), Some(p)) => {
            let against = format!(
                "{} {} than run {}: {}",
                secs(p.delta_secs.abs()),
                if p.delta_secs <= 0.0 {
                    "faster"
                } else {
                    "slower"
                },
                p.run_id,
                secs(p.time_to_evacuate_secs)
            );
            if p.differences.is_empty() {
                format!("{} ({against})", secs(*t))
            } else {
                format!(
                    "{} ({against}; not like for like: {})",
                    secs(*t),
                    p.differences.join("; ")
                )
            }
        }
    }
}

/// How long a span took, without the time the run was stopped inside it.
fn took(span: &Span) -> String {
    let whole = span.end_secs - span.start_secs;
    if span.stopped_secs > 0.0 {
        format!(
            "{} (+{} stopped)",
            secs((whole - span.stopped_secs).max(0.0)),
            secs(span.stopped_secs)
        )
    } else {
        secs(whole)
    }
}

/// What rollback did with a change, for people.
fn restore(r: AfterRollback) -> &'static str {
    match r {
        AfterRollback::Restored => "restored",
        AfterRollback::NotRestored => "not restored",
        AfterRollback::Replaced => "replaced instance, left in its new zone",
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
    // Everything in a cell or a line came from a playbook, a journal or AWS: shown
    // on one line, with HTML, pipes and Markdown's marks escaped.
    let md = |text: &str| crate::text::markdown(text);
    let code = |text: &str| crate::text::markdown_code(text);
    let mut out = String::new();
    let _ = writeln!(out, "# Drill report: {}\n", md(&report.playbook));
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| run | {} |", code(&report.run_id));
    let _ = writeln!(out, "| result | {} |", md(&report.result));
    let _ = writeln!(out, "| time to evacuate | {} |", comparison(report));
    if let Some(score) = &report.rto {
        let verdict = match (score.met, score.by_secs) {
            (true, Some(by)) => format!("met, {} to spare", secs(by)),
            (false, Some(by)) => format!("missed by {}", secs(by)),
            (_, None) => "missed: the run did not evacuate".to_owned(),
        };
        let _ = writeln!(out, "| rto | {}: {verdict} |", secs(score.rto_secs));
    }
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| format!("{} {}", p.phase, secs(p.duration_secs)))
            .collect();
        let _ = writeln!(out, "| phases | {} |", phases.join(" · "));
    }
    if report.time_stopped_secs > 0.0 {
        let _ = writeln!(
            out,
            "| time stopped | {} (not counted in time to evacuate) |",
            secs(report.time_stopped_secs)
        );
    }
    if let Some(waited) = report.approval_wait_secs {
        let _ = writeln!(
            out,
            "| approval waits | {} (inside the evacuation, counted in its time) |",
            secs(waited)
        );
    }
    if let Some(t) = report.time_to_fail_back_secs {
        let _ = writeln!(out, "| time to fail back | {} |", secs(t));
    }
    for (region, known) in &report.regions_down {
        let _ = writeln!(
            out,
            "| region down | {}: nothing sent to it; {} |",
            md(region),
            md(known)
        );
    }
    for (step, reason) in &report.skipped {
        let _ = writeln!(out, "| skipped | {}: {} |", code(step), md(reason));
    }
    let _ = writeln!(
        out,
        "| playbook | {} (sha256 `{}`) |",
        code(&report.file),
        &report.playbook_sha256[..12.min(report.playbook_sha256.len())]
    );
    let _ = writeln!(out, "| params | {} |", code(&params(report)));
    let _ = writeln!(
        out,
        "| ran by | {} on {}, evac {} |",
        md(&report.user),
        md(&report.host),
        md(&report.version)
    );
    if let Some(caller) = &report.caller {
        let _ = writeln!(
            out,
            "| as | {} (account {}) |",
            code(&caller.arn),
            md(&caller.account)
        );
    }
    for (name, caller) in &report.callers {
        let _ = writeln!(
            out,
            "| as {} | {} (account {}) |",
            md(name),
            code(&caller.arn),
            md(&caller.account)
        );
    }
    let _ = writeln!(out, "| started | {} |", report.started_at);
    let _ = writeln!(out, "| ended | {} |", report.ended_at);
    let _ = writeln!(out, "\n## What happened\n");
    for m in &report.moments {
        let _ = writeln!(out, "- +{}: {}", secs(m.at_secs), md(&m.text));
    }
    let _ = writeln!(
        out,
        "\n## Timeline\n\n| what | kind | start | end | took | status |\n| --- | --- | --- | --- | --- | --- |"
    );
    for span in &report.timeline {
        let _ = writeln!(
            out,
            "| {} | {} | +{} | +{} | {} | {} |",
            md(&span.label),
            md(&span.kind),
            secs(span.start_secs),
            secs(span.end_secs),
            took(span),
            md(&span.status)
        );
    }
    let _ = writeln!(
        out,
        "\n## Changes\n\n| at | step | resource | before | after | rollback |\n| --- | --- | --- | --- | --- | --- |"
    );
    for c in &report.changes {
        let _ = writeln!(
            out,
            "| +{} | {} | {} | {} | {} | {} |",
            secs(c.at_secs),
            md(&c.step),
            md(&c.resource),
            md(&c.before),
            md(&c.after),
            restore(c.rollback)
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
        "stopped" => "#a0aec0",
        _ => "#718096",
    }
}

/// The colour of stop-condition lines.
const STOP_LINE: &str = "#e53e3e";

/// Tick spacing for a time axis of `total` seconds: a round step giving at most
/// eight intervals.
fn tick_step(total: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        14400.0, 21600.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|step| total / step <= 8.0)
        .unwrap_or(43200.0)
}

/// The timeline as an SVG Gantt chart: one row per bar with its label printed,
/// stop conditions as red lines with their text printed above the chart, a time
/// axis with ticks. Everything a printout needs is text, not a tooltip.
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
    let (label_w, chart_w, row_h) = (300.0, 640.0, 26.0);
    let top = 8.0 + report.stop_conditions.len() as f64 * 16.0;
    let chart_h = rows.len() as f64 * row_h;
    let height = top + chart_h + 36.0;
    let x = |s: f64| label_w + s / total * chart_w;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="sans-serif" font-size="12">"##,
        w = label_w + chart_w + 20.0
    );
    // The time axis: gridlines and labels at round intervals.
    let step = tick_step(total);
    let axis_y = top + chart_h + 18.0;
    let mut t = 0.0;
    while t <= total + 1e-9 {
        let _ = write!(
            out,
            r##"<line class="tick" x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{bottom}" stroke="#e2e8f0"/><text class="tick" x="{px:.1}" y="{axis_y}" text-anchor="middle" fill="#4a5568">+{label}</text>"##,
            px = x(t),
            bottom = top + chart_h + 4.0,
            label = secs(t)
        );
        t += step;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
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
    for (i, (what, at)) in report.stop_conditions.iter().enumerate() {
        let px = x(*at);
        let ly = 14.0 + i as f64 * 16.0;
        // The label reads leftwards from lines in the right half of the chart.
        let anchor = if px > label_w + chart_w / 2.0 {
            "end"
        } else {
            "start"
        };
        let _ = write!(
            out,
            r##"<line class="stop" x1="{px:.1}" y1="{y1}" x2="{px:.1}" y2="{y2}" stroke="{STOP_LINE}" stroke-width="2"/><text class="stop" x="{px:.1}" y="{ly}" text-anchor="{anchor}" fill="{STOP_LINE}">stop condition: {what} (+{when})</text>"##,
            y1 = ly + 3.0,
            y2 = top + chart_h,
            what = escape(what),
            when = secs(*at)
        );
    }
    out.push_str("</svg>");
    out
}

/// The legend: what each colour and line means.
fn legend() -> String {
    let mut out = String::from("<p class=\"legend\">");
    for (kind, meaning) in [
        ("step", "step"),
        ("increment", "ramp increment (sent until in sync)"),
        ("bake", "bake"),
        (
            "stopped",
            "run stopped (halted, interrupted, declined, failed)",
        ),
        ("rollback", "rollback"),
    ] {
        let _ = write!(
            out,
            r#"<span class="swatch" style="background:{}"></span>{meaning} "#,
            colour(kind)
        );
    }
    let _ = write!(
        out,
        r#"<span class="line" style="background:{STOP_LINE}"></span>stop condition fired</p>"#
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
.legend{{font-size:13px}} .legend .swatch{{display:inline-block;width:14px;height:12px;margin:0 4px 0 12px;border-radius:2px;vertical-align:middle}}
.legend .line{{display:inline-block;width:3px;height:14px;margin:0 4px 0 12px;vertical-align:middle}}
*{{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
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
    for (region, known) in &report.regions_down {
        row(
            "region down",
            format!("{region}: nothing sent to it; {known}"),
        );
    }
    for (step, reason) in &report.skipped {
        row("skipped", format!("{step}: {reason}"));
    }
    if report.time_stopped_secs > 0.0 {
        row(
            "time stopped",
            format!(
                "{} (not counted in time to evacuate)",
                secs(report.time_stopped_secs)
            ),
        );
    }
    if let Some(waited) = report.approval_wait_secs {
        row(
            "approval waits",
            format!(
                "{} (inside the evacuation, counted in its time)",
                secs(waited)
            ),
        );
    }
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
    if let Some(caller) = &report.caller {
        row("as", caller.to_string());
    }
    for (name, caller) in &report.callers {
        row(&format!("as {name}"), caller.to_string());
    }
    row("started", report.started_at.clone());
    row("ended", report.ended_at.clone());
    out.push_str(
        "</table><h2>What happened</h2><table class=\"moments\"><tr><th>at</th><th>what</th></tr>",
    );
    for m in &report.moments {
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>+{}</td><td>{}</td></tr>",
            escape(&m.kind),
            secs(m.at_secs),
            escape(&m.text)
        );
    }
    out.push_str("</table><h2>Timeline</h2>");
    out.push_str(&legend());
    out.push_str(&svg(report));
    out.push_str("<h2>Changes</h2><table><tr><th>at</th><th>step</th><th>resource</th><th>before</th><th>after</th><th>rollback</th></tr>");
    for c in &report.changes {
        let _ = write!(
            out,
            "<tr><td>+{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            secs(c.at_secs),
            escape(&c.step),
            escape(&c.resource),
            escape(&c.before),
            escape(&c.after),
            restore(c.rollback)
        );
    }
    out.push_str("</table></body></html>\n");
    out
}
