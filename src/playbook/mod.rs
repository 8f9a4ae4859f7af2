//! Playbooks: the YAML model, loading, parameter substitution and validation.
//!
//! Loading is offline and pure. It reports every problem it can find in one pass,
//! each located by file, line, column and YAML path.

mod diagnostic;
mod load;
mod locate;
mod model;
mod params;
mod parts;
mod path;
mod schema;
mod types;
mod validate;
pub mod window;

pub use diagnostic::{Diagnostic, closest};
pub use load::{LoadError, MAX_PLAYBOOK_BYTES, load_file, load_str, read_playbook};
pub use model::*;
pub use params::{parse_var, parse_var_file};
pub use path::{Segment, YamlPath};
pub use schema::{SCHEMA_FILE, playbook_schema};
pub use types::{HumanDuration, MAX_DURATION, Names, Percent, Region, StepId, Zone};
pub use validate::is_role_arn;
