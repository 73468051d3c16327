//! What podwatch shows of a pod ([`Summary`]), which events deserve a line
//! ([`Tracker`]: a MODIFIED that changes nothing visible is skipped, a re-list is
//! turned into the changes it reveals), and how a line looks.

use std::collections::BTreeMap;

use krew_wasm_sdk::k8s_openapi::api::core::v1::Pod;

/// A pod as one line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub ready: usize,
    pub containers: usize,
    pub restarts: i32,
}

impl Summary {
    pub fn of(pod: &Pod) -> Summary {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        let containers = pod
            .spec
            .as_ref()
            .map_or(statuses.len(), |spec| spec.containers.len());
        let phase = if pod.metadata.deletion_timestamp.is_some() {
            "Terminating".to_string()
        } else {
            pod.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".to_string())
        };
        Summary {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            phase,
            ready: statuses.iter().filter(|s| s.ready).count(),
            containers,
            restarts: statuses.iter().map(|s| s.restart_count).sum(),
        }
    }

    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

/// Why a line is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// In the first list, before watching.
    Listed,
    Added,
    Modified,
    Deleted,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Change::Listed => "LISTED",
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// The pods seen so far, to tell real changes from noise.
#[derive(Debug, Default)]
pub struct Tracker {
    pods: BTreeMap<(String, String), Summary>,
}

impl Tracker {
    /// Takes a full list. The first one is shown as is; a later one (after the
    /// watch expired) is shown as the changes missed in between.
    pub fn relist(&mut self, pods: Vec<Summary>, first: bool) -> Vec<(Change, Summary)> {
        let fresh: BTreeMap<_, _> = pods.into_iter().map(|p| (p.key(), p)).collect();
        let mut lines = Vec::new();
        if first {
            lines.extend(fresh.values().map(|p| (Change::Listed, p.clone())));
        } else {
            for (key, old) in &self.pods {
                if !fresh.contains_key(key) {
                    lines.push((Change::Deleted, old.clone()));
                }
            }
            for (key, new) in &fresh {
                match self.pods.get(key) {
                    None => lines.push((Change::Added, new.clone())),
                    Some(old) if old != new => lines.push((Change::Modified, new.clone())),
                    Some(_) => {}
                }
            }
        }
        self.pods = fresh;
        lines
    }

    /// Takes one watch event; `None` when it changes nothing a line would show.
    pub fn apply(&mut self, change: Change, pod: Summary) -> Option<(Change, Summary)> {
        let key = pod.key();
        if change == Change::Deleted {
            self.pods.remove(&key);
            return Some((change, pod));
        }
        if self.pods.get(&key) == Some(&pod) {
            return None;
        }
        self.pods.insert(key, pod.clone());
        Some((change, pod))
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

const POD_WIDTH: usize = 40;

/// The column titles.
pub fn header(all_namespaces: bool) -> String {
    let pod = if all_namespaces {
        "NAMESPACE/NAME"
    } else {
        "NAME"
    };
    format!(
        "{:<8}  {:<8}  {pod:<POD_WIDTH$}  {:<11}  {:<5}  RESTARTS",
        "TIME", "EVENT", "PHASE", "READY"
    )
}

/// One line: `12:00:01  MODIFIED  web-5d9c  Running  1/1  0`.
pub fn line(time: &str, change: Change, pod: &Summary, all_namespaces: bool) -> String {
    let name = if all_namespaces {
        format!("{}/{}", pod.namespace, pod.name)
    } else {
        pod.name.clone()
    };
    format!(
        "{time:<8}  {:<8}  {name:<POD_WIDTH$}  {:<11}  {:<5}  {}",
        change.word(),
        pod.phase,
        format!("{}/{}", pod.ready, pod.containers),
        pod.restarts
    )
}

/// `HH:MM:SS` (UTC) of a Unix time: the sandbox has a clock but no time zone.
pub fn time_of_day(unix_seconds: u64) -> String {
    let s = unix_seconds % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn summary(name: &str, phase: &str, ready: usize) -> Summary {
        Summary {
            namespace: "default".into(),
            name: name.into(),
            phase: phase.into(),
            ready,
            containers: 2,
            restarts: 0,
        }
    }

    #[test]
    fn summary_counts_ready_and_restarts() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"containers": [{"name": "app"}, {"name": "proxy"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 3, "image": "", "imageID": ""},
                {"name": "proxy", "ready": false, "restartCount": 1, "image": "", "imageID": ""}
            ]}
        }));
        let s = Summary::of(&p);
        assert_eq!((s.ready, s.containers, s.restarts), (1, 2, 4));
        assert_eq!(s.phase, "Running");
        assert_eq!(s.namespace, "shop");
    }

    #[test]
    fn terminating_and_unknown_phases() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "x", "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"phase": "Running"}
        }));
        assert_eq!(Summary::of(&p).phase, "Terminating");
        let p = pod(serde_json::json!({"metadata": {"name": "x"}}));
        assert_eq!(Summary::of(&p).phase, "Unknown");
        assert_eq!(Summary::of(&p).containers, 0);
    }

    #[test]
    fn modified_without_visible_change_is_skipped() {
        let mut tracker = Tracker::default();
        tracker.relist(vec![summary("a", "Pending", 0)], true);
        assert_eq!(
            tracker.apply(Change::Modified, summary("a", "Pending", 0)),
            None
        );
        assert_eq!(
            tracker.apply(Change::Modified, summary("a", "Running", 1)),
            Some((Change::Modified, summary("a", "Running", 1)))
        );
        assert!(
            tracker
                .apply(Change::Deleted, summary("a", "Running", 1))
                .is_some()
        );
        assert!(tracker.is_empty());
    }

    #[test]
    fn relist_reports_what_was_missed() {
        let mut tracker = Tracker::default();
        let first = tracker.relist(
            vec![summary("a", "Running", 2), summary("b", "Running", 2)],
            true,
        );
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|(c, _)| *c == Change::Listed));
        let later = tracker.relist(
            vec![summary("b", "Failed", 0), summary("c", "Pending", 0)],
            false,
        );
        assert_eq!(
            later,
            vec![
                (Change::Deleted, summary("a", "Running", 2)),
                (Change::Modified, summary("b", "Failed", 0)),
                (Change::Added, summary("c", "Pending", 0)),
            ]
        );
    }

    #[test]
    fn lines_line_up() {
        let s = summary("web-1", "Running", 2);
        let l = line("12:00:01", Change::Added, &s, false);
        assert!(l.starts_with("12:00:01  ADDED     web-1 "), "{l}");
        assert!(l.ends_with("  Running      2/2    0"), "{l}");
        let l = line("12:00:01", Change::Deleted, &s, true);
        assert!(l.contains("  default/web-1  "), "{l}");
        assert_eq!(header(false).find("NAME"), l.find("default/web-1"));
        assert_eq!(time_of_day(86_400 + 3_723), "01:02:03");
    }
}
