//! `meta.k8s.io/v1` Table responses (what `kubectl get` asks for with
//! `Accept: application/json;as=Table;…`) and the timestamps they show.
//!
//! Columns and cells follow kube-apiserver's printers (`pkg/printers/internalversion`):
//! the same names, types, priorities (priority 1 = only with `-o wide`) and
//! cell contents, so kubectl's output looks like a real cluster's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::store::Resource;

/// What each row carries in `object` (`includeObject=None|Metadata|Object`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

fn column(name: &str, priority: u8, description: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": "string", "format": format, "description": description, "priority": priority})
}

/// The column definitions kube-apiserver uses for `resource`.
pub(crate) fn columns(resource: &Resource) -> Value {
    const NAME: &str = "Name must be unique within a namespace.";
    const AGE: &str = "CreationTimestamp is a timestamp representing the server time when this object was created.";
    let columns = match resource.plural {
        "pods" => vec![
            column("Name", 0, NAME),
            column(
                "Ready",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            column(
                "Status",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            column(
                "Restarts",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            column("Age", 0, AGE),
            column("IP", 1, "The IP address assigned to the pod"),
            column("Node", 1, "The name of the node the pod is assigned to"),
            column(
                "Nominated Node",
                1,
                "The name of the node the pod is nominated to",
            ),
            column("Readiness Gates", 1, "The readiness gates of the pod"),
        ],
        "secrets" => vec![
            column("Name", 0, NAME),
            column(
                "Type",
                0,
                "Used to facilitate programmatic handling of secret data.",
            ),
            column("Data", 0, "Data contains the secret data."),
            column("Age", 0, AGE),
        ],
        "configmaps" => vec![
            column("Name", 0, NAME),
            column("Data", 0, "Data contains the configuration data."),
            column("Age", 0, AGE),
        ],
        "namespaces" => vec![
            column("Name", 0, NAME),
            column("Status", 0, "The status of the namespace"),
            column("Age", 0, AGE),
        ],
        "events" => vec![
            column(
                "Last Seen",
                0,
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            column(
                "Type",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future",
            ),
            column(
                "Reason",
                0,
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            column("Object", 0, "The object that this event is about."),
            column(
                "Subobject",
                1,
                "The field of the object that this event is about.",
            ),
            column("Source", 1, "The component reporting this event."),
            column(
                "Message",
                0,
                "A human-readable description of the status of this operation.",
            ),
            column(
                "First Seen",
                1,
                "The time at which the event was first recorded.",
            ),
            column("Count", 1, "The number of times this event has occurred."),
            column("Name", 1, NAME),
        ],
        _ => vec![column("Name", 0, NAME), column("Age", 0, AGE)],
    };
    Value::Array(columns)
}

fn str_at<'a>(object: &'a Value, path: &[&str]) -> &'a str {
    let mut current = object;
    for part in path {
        match current.get(part) {
            Some(next) => current = next,
            None => return "",
        }
    }
    current.as_str().unwrap_or("")
}

fn count(value: Option<&Value>) -> usize {
    value.and_then(Value::as_object).map_or(0, |m| m.len())
}

fn age_of(timestamp: &str, now: SystemTime) -> String {
    match parse_rfc3339(timestamp) {
        Some(then) => human_duration(now, then),
        None => "<unknown>".to_string(),
    }
}

/// The cells of one row, as kube-apiserver's printers fill them.
pub(crate) fn cells(resource: &Resource, object: &Value, now: SystemTime) -> Vec<Value> {
    let name = str_at(object, &["metadata", "name"]).to_string();
    let age = age_of(str_at(object, &["metadata", "creationTimestamp"]), now);
    match resource.plural {
        "pods" => pod_cells(object, name, age),
        "secrets" => {
            let kind = match str_at(object, &["type"]) {
                "" => "Opaque",
                t => t,
            };
            vec![
                json!(name),
                json!(kind),
                json!(count(object.get("data"))),
                json!(age),
            ]
        }
        "configmaps" => {
            let data = count(object.get("data")) + count(object.get("binaryData"));
            vec![json!(name), json!(data), json!(age)]
        }
        "namespaces" => {
            let phase = match str_at(object, &["status", "phase"]) {
                "" => "Active",
                p => p,
            };
            vec![json!(name), json!(phase), json!(age)]
        }
        "events" => event_cells(object, name, now),
        _ => vec![json!(name), json!(age)],
    }
}

fn pod_cells(pod: &Value, name: String, age: String) -> Vec<Value> {
    let containers = pod
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses: &[Value] = pod
        .get("status")
        .and_then(|s| s.get("containerStatuses"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
        .sum();
    let mut reason = match (
        str_at(pod, &["status", "reason"]),
        str_at(pod, &["status", "phase"]),
    ) {
        ("", "") => "Pending".to_string(),
        ("", phase) => phase.to_string(),
        (reason, _) => reason.to_string(),
    };
    for status in statuses {
        let waiting = str_at(status, &["state", "waiting", "reason"]);
        let terminated = str_at(status, &["state", "terminated", "reason"]);
        if !waiting.is_empty() {
            reason = waiting.to_string();
        } else if !terminated.is_empty() {
            reason = terminated.to_string();
        }
    }
    if !str_at(pod, &["metadata", "deletionTimestamp"]).is_empty() {
        reason = "Terminating".to_string();
    }
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        json!(name),
        json!(format!("{ready}/{containers}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(age),
        json!(or_none(str_at(pod, &["status", "podIP"]))),
        json!(or_none(str_at(pod, &["spec", "nodeName"]))),
        json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        json!("<none>"),
    ]
}

fn event_cells(event: &Value, name: String, now: SystemTime) -> Vec<Value> {
    let first = match str_at(event, &["firstTimestamp"]) {
        "" => age_of(str_at(event, &["eventTime"]), now),
        t => age_of(t, now),
    };
    let last = match str_at(event, &["lastTimestamp"]) {
        "" => first.clone(),
        t => age_of(t, now),
    };
    let object = format!(
        "{}/{}",
        str_at(event, &["involvedObject", "kind"]).to_lowercase(),
        str_at(event, &["involvedObject", "name"])
    );
    let source = match (
        str_at(event, &["source", "component"]),
        str_at(event, &["source", "host"]),
    ) {
        (c, "") => c.to_string(),
        (c, h) => format!("{c}, {h}"),
    };
    let count = event.get("count").and_then(Value::as_i64).unwrap_or(1);
    vec![
        json!(last),
        json!(str_at(event, &["type"])),
        json!(str_at(event, &["reason"])),
        json!(object),
        json!(str_at(event, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(str_at(event, &["message"])),
        json!(first),
        json!(count),
        json!(name),
    ]
}

/// A Table holding `objects`, one row each.
pub(crate) fn table(
    resource: &Resource,
    objects: &[Value],
    resource_version: Option<u64>,
    include: IncludeObject,
) -> Value {
    let now = SystemTime::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({"cells": cells(resource, object, now)});
            let embedded = match include {
                IncludeObject::None => None,
                IncludeObject::Object => Some(object.clone()),
                IncludeObject::Metadata => Some(json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                })),
            };
            if let Some(embedded) = embedded {
                row["object"] = embedded;
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(resource),
        "rows": rows,
    })
}

/// `2024-05-01T12:00:00Z`, as Kubernetes writes timestamps (whole seconds, UTC).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `None` for anything else.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (rest.get(1..3)?.parse::<i64>().ok()? * 3600
                + rest.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs)
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

// Howard Hinnant's date algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// apimachinery's `duration.HumanDuration` of `now - then` (`45s`, `3m20s`, `5h`, `2d3h`…).
pub(crate) fn human_duration(now: SystemTime, then: SystemTime) -> String {
    let seconds: i64 = match now.duration_since(then) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_714_564_800 + 3661);
        assert_eq!(rfc3339(t), "2024-05-01T13:01:01Z");
        assert_eq!(parse_rfc3339("2024-05-01T13:01:01Z"), Some(t));
        assert_eq!(parse_rfc3339("2024-05-01T15:01:01.123456+02:00"), Some(t));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn human_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let ago = |s: u64| human_duration(now, now - Duration::from_secs(s));
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(200), "3m20s");
        assert_eq!(ago(3600), "60m");
        assert_eq!(ago(5 * 3600 + 60), "5h1m");
        assert_eq!(ago(3 * 86_400 + 3600), "3d1h");
        assert_eq!(
            human_duration(now, now + Duration::from_secs(10)),
            "<invalid>"
        );
    }
}
