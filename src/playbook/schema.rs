//! The JSON Schema of playbook format v1, for editors (yaml-language-server): made
//! from the same Rust types the loader decodes into, so it cannot drift from them.
//! It says what a schema can (fields, types, shapes); references between parts,
//! ramps and everything else stay with `evac validate`.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::model::{
    AccountSpec, GroupSpec, Notify, Playbook, RecordSpec, Step, StopCondition, Window,
};
use super::types::{HumanDuration, Names, Percent, Region, StepId, Zone};

/// Where the committed copy lives, relative to the repository.
pub const SCHEMA_FILE: &str = "schema/playbook-v1.json";

/// The schema, as pretty JSON with a final newline.
pub fn playbook_schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Playbook>();
    let mut value = schema.to_value();
    // serde aliases are not in the derived schemas: the plural spelling is accepted
    // too, and exactly one of the two is required.
    for (def, field, alias) in [
        ("ScaleUp", "group", "groups"),
        ("Drain", "group", "groups"),
        ("EvacuateZone", "group", "groups"),
        ("ShiftTraffic", "record", "records"),
    ] {
        add_alias(&mut value, def, field, alias);
    }
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

/// Lets `alias` stand for `field` in the definition `def`.
fn add_alias(schema: &mut serde_json::Value, def: &str, field: &str, alias: &str) {
    let Some(object) = schema
        .get_mut("$defs")
        .and_then(|d| d.get_mut(def))
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    if let Some(properties) = object
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
        && let Some(same) = properties.get(field).cloned()
    {
        properties.insert(alias.to_owned(), same);
    }
    if let Some(required) = object
        .get_mut("required")
        .and_then(serde_json::Value::as_array_mut)
    {
        required.retain(|r| r != field);
    }
    object.insert(
        "oneOf".to_owned(),
        serde_json::json!([{ "required": [field] }, { "required": [alias] }]),
    );
}

/// A `{{ param }}` placeholder, which may stand for any value before parameters are
/// substituted.
fn template() -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "\\{\\{\\s*[A-Za-z_][A-Za-z0-9_]*\\s*\\}\\}",
        "description": "a {{ param }} placeholder, replaced by the parameter's value"
    })
}

/// `schema`, or a placeholder.
pub(super) fn or_template(schema: Schema) -> Schema {
    json_schema!({ "anyOf": [schema, template()] })
}

/// The schema of `T`, or a placeholder: for fields whose type is not a string.
pub(super) fn templated<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    or_template(generator.subschema_for::<T>())
}

impl JsonSchema for Step {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let kinds = [
            ("scale_up", generator.subschema_for::<super::ScaleUp>()),
            (
                "shift_traffic",
                generator.subschema_for::<super::ShiftTraffic>(),
            ),
            ("drain", generator.subschema_for::<super::Drain>()),
            ("wait", generator.subschema_for::<HumanDuration>()),
            (
                "approve",
                json_schema!({ "type": "string", "description": "the question asked before going on" }),
            ),
            ("check", generator.subschema_for::<super::Check>()),
            (
                "evacuate_zone",
                generator.subschema_for::<super::EvacuateZone>(),
            ),
        ];
        let mut properties = serde_json::Map::new();
        properties.insert("id".into(), generator.subschema_for::<StepId>().to_value());
        properties.insert(
            "description".into(),
            json_schema!({ "type": "string" }).to_value(),
        );
        let mut one_of = Vec::new();
        for (kind, schema) in kinds {
            properties.insert(kind.into(), schema.to_value());
            one_of.push(serde_json::json!({ "required": [kind] }));
        }
        json_schema!({
            "description": "One step: an id, an optional description, and exactly one step kind.",
            "type": "object",
            "properties": properties,
            "required": ["id"],
            "additionalProperties": false,
            "oneOf": one_of
        })
    }
}

impl JsonSchema for Playbook {
    fn schema_name() -> Cow<'static, str> {
        "Playbook".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "evac playbook, format 1",
            "description": "An evacuation drill: ordered steps that scale Auto Scaling groups, shift Route 53 weighted traffic and drain a region or zone. `evac validate` checks what a schema cannot (references, ramps, regions of zones).",
            "type": "object",
            "properties": {
                "version": { "const": 1, "description": "The playbook format: 1." },
                "name": { "type": "string", "description": "The playbook's name: runs, locks and history are keyed by it." },
                "description": { "type": "string", "description": "What the drill is for." },
                "params": {
                    "type": "object",
                    "description": "Parameters and their defaults, used as {{ name }} and overridden with --var.",
                    "additionalProperties": { "type": ["string", "number", "boolean"] }
                },
                "accounts": {
                    "type": "object",
                    "description": "Named AWS accounts reached through a role or a profile, used as `account: NAME` on groups, records, alarms and health checks.",
                    "additionalProperties": generator.subschema_for::<AccountSpec>()
                },
                "groups": {
                    "type": "object",
                    "description": "Named sets of Auto Scaling groups.",
                    "additionalProperties": generator.subschema_for::<GroupSpec>()
                },
                "records": {
                    "type": "object",
                    "description": "Named weighted Route 53 records.",
                    "additionalProperties": generator.subschema_for::<RecordSpec>()
                },
                "stop_when": {
                    "type": "array",
                    "description": "Conditions that halt the run when they fire.",
                    "items": generator.subschema_for::<StopCondition>()
                },
                "max_increment": generator.subschema_for::<Percent>(),
                "capacity_margin": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 65535,
                    "description": "How much more traffic per unit of capacity, in percent, a region receiving weight may be asked to carry than the most loaded region carries before the drill; 0 unless set."
                },
                "rto": {
                    "type": "string",
                    "description": "The recovery time objective (`15m`): the plan's estimate and each drill's time to evacuate are scored against it."
                },
                "window": generator.subschema_for::<Window>(),
                "notify": generator.subschema_for::<Notify>(),
                "steps": {
                    "type": "array",
                    "description": "The ordered steps.",
                    "minItems": 1,
                    "items": generator.subschema_for::<Step>()
                }
            },
            "required": ["version", "name", "steps"],
            "additionalProperties": false
        })
    }
}

impl schemars::JsonSchema for Region {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Region".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        or_template(schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$",
            "description": "an AWS region such as us-east-1"
        }))
    }
}

impl schemars::JsonSchema for Zone {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Zone".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        or_template(schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$",
            "description": "an availability zone name such as us-east-1a (not a zone id)"
        }))
    }
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "a duration with units, like 90s, 2m or 1h30m (at most 24h)"
        })
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        or_template(schemars::json_schema!({
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "description": "a whole percentage from 1 to 100"
        }))
    }
}

impl schemars::JsonSchema for StepId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        or_template(schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
            "description": "letters, digits, -, _ and ., starting with a letter or digit"
        }))
    }
}

impl schemars::JsonSchema for Names {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Names".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "one name, or a list of names",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    /// The schema's top-level fields are exactly those the loader reads: a field
    /// added to one and not the other fails here.
    #[test]
    fn the_schema_has_every_top_level_field_the_loader_reads() {
        let schema: serde_json::Value =
            serde_json::from_str(&super::playbook_schema()).expect("schema JSON");
        let mut in_schema: Vec<&str> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        in_schema.sort_unstable();
        let mut read = super::super::load::TOP_LEVEL.to_vec();
        read.sort_unstable();
        assert_eq!(in_schema, read);
    }
}
