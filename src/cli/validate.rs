//! `evac validate`: load and check playbooks without touching AWS.

use std::path::PathBuf;

use serde::Serialize;

use super::{OutputFormat, VarArgs};
use crate::exit::Exit;
use crate::playbook::{Diagnostic, LoadError, load_file};

#[derive(Serialize)]
struct Report {
    version: u32,
    valid: bool,
    playbooks: Vec<FileReport>,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<usize>,
    diagnostics: Vec<Diagnostic>,
}

/// Validates each playbook; exit 0 when all are valid, 2 otherwise.
pub fn run(playbooks: &[PathBuf], vars: &VarArgs, output: OutputFormat) -> Exit {
    let vars = vars.to_map();
    let mut files = Vec::new();
    for path in playbooks {
        let file = path.display().to_string();
        let report = match load_file(path, &vars) {
            Ok(playbook) => {
                if output == OutputFormat::Human {
                    crate::out!(
                        "ok: {file} ({}, {} steps)",
                        playbook.name,
                        playbook.steps.len()
                    );
                }
                FileReport {
                    file,
                    valid: true,
                    name: Some(playbook.name),
                    steps: Some(playbook.steps.len()),
                    diagnostics: vec![],
                }
            }
            Err(LoadError::Invalid {
                text, diagnostics, ..
            }) => {
                if output == OutputFormat::Human {
                    for diag in &diagnostics {
                        crate::say!("{}", diag.render(Some(&text)));
                    }
                }
                FileReport {
                    file,
                    valid: false,
                    name: None,
                    steps: None,
                    diagnostics,
                }
            }
            Err(err @ LoadError::Read { .. }) => {
                let diag = Diagnostic {
                    file: file.clone(),
                    line: None,
                    column: None,
                    path: "<root>".to_owned(),
                    message: err.to_string(),
                    help: Some("check the path".to_owned()),
                    related: None,
                };
                if output == OutputFormat::Human {
                    crate::say!("{}", diag.render(None));
                }
                FileReport {
                    file,
                    valid: false,
                    name: None,
                    steps: None,
                    diagnostics: vec![diag],
                }
            }
        };
        files.push(report);
    }
    let invalid = files.iter().filter(|f| !f.valid).count();
    match output {
        OutputFormat::Json => {
            let report = Report {
                version: 1,
                valid: invalid == 0,
                playbooks: files,
            };
            match serde_json::to_string_pretty(&report) {
                Ok(json) => {
                    crate::out!("{json}");
                }
                Err(err) => {
                    crate::say!("error: failed to encode the report as JSON: {err}");
                }
            }
        }
        OutputFormat::Human if invalid > 0 => {
            let problems: usize = files.iter().map(|f| f.diagnostics.len()).sum();
            crate::say!(
                "error: {problems} problem{} in {invalid} of {} playbook{}",
                if problems == 1 { "" } else { "s" },
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            );
        }
        OutputFormat::Human => {}
    }
    if invalid == 0 {
        Exit::Success
    } else {
        Exit::InvalidInput
    }
}
