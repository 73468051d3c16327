//! The objects, the global resourceVersion counter, the bounded watch
//! history and the fan-out of changes to open watches.
//!
//! Every change happens under one lock: it takes the next resourceVersion,
//! is appended to the history and broadcast while the lock is held, so a
//! watch that replays the history and subscribes under the same lock sees
//! every change exactly once and in order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::table::rfc3339;

/// A resource type the server serves (all core `v1`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    pub(crate) plural: &'static str,
    pub(crate) singular: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) short_names: &'static [&'static str],
    pub(crate) namespaced: bool,
    pub(crate) categories: &'static [&'static str],
}

pub(crate) const RESOURCES: &[Resource] = &[
    Resource {
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        short_names: &["cm"],
        namespaced: true,
        categories: &[],
    },
    Resource {
        plural: "events",
        singular: "event",
        kind: "Event",
        short_names: &["ev"],
        namespaced: true,
        categories: &[],
    },
    Resource {
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        short_names: &["ns"],
        namespaced: false,
        categories: &[],
    },
    Resource {
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        short_names: &["po"],
        namespaced: true,
        categories: &["all"],
    },
    Resource {
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        short_names: &[],
        namespaced: true,
        categories: &[],
    },
];

/// The resource named by its plural (as in URLs), singular, short name or kind.
pub(crate) fn resource(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| {
        r.plural == name
            || r.singular == name
            || r.kind.eq_ignore_ascii_case(name)
            || r.short_names.contains(&name)
    })
}

pub(crate) fn namespaces() -> &'static Resource {
    &RESOURCES[2]
}

/// An error answered as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

impl ApiError {
    fn with_details(
        code: u16,
        reason: &'static str,
        message: String,
        resource: &str,
        name: &str,
    ) -> Self {
        let mut details = json!({"kind": resource});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        Self {
            code,
            reason,
            message,
            details: Some(details),
        }
    }

    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        Self::with_details(
            404,
            "NotFound",
            format!("{resource} \"{name}\" not found"),
            resource,
            name,
        )
    }

    /// An unknown URL under `/api` or `/apis`.
    pub(crate) fn no_such_resource() -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".to_string(),
            details: Some(json!({})),
        }
    }

    pub(crate) fn already_exists(resource: &str, name: &str) -> Self {
        Self::with_details(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
            resource,
            name,
        )
    }

    pub(crate) fn conflict(resource: &str, name: &str) -> Self {
        Self::with_details(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
            resource,
            name,
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn invalid(kind: &str, name: &str, field: &str, problem: &str) -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{kind} \"{name}\" is invalid: {field}: {problem}"),
            details: Some(json!({
                "name": name,
                "kind": kind,
                "causes": [{"reason": "FieldValueRequired", "message": problem, "field": field}],
            })),
        }
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".to_string(),
            details: Some(json!({})),
        }
    }

    /// 410 as a watch reports it: reason `Expired` (a list would say `Gone`).
    pub(crate) fn expired(requested: u64, oldest: u64) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {requested} ({oldest})"),
            details: None,
        }
    }

    pub(crate) fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) kind: ChangeType,
    pub(crate) resource: &'static Resource,
    pub(crate) resource_version: u64,
    /// The new object (for `Deleted`: the object as it was, with the deletion's resourceVersion).
    pub(crate) object: Value,
    /// The object before a `Modified` change (to turn it into ADDED/DELETED for a selector).
    pub(crate) previous: Option<Value>,
}

impl Change {
    pub(crate) fn namespace(&self) -> &str {
        namespace_of(&self.object)
    }
}

pub(crate) fn name_of(object: &Value) -> &str {
    object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub(crate) fn namespace_of(object: &Value) -> &str {
    object
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

type Key = (&'static str, String, String);

/// What a new watch starts from.
pub(crate) struct WatchStart {
    /// Changes to replay (after the requested resourceVersion) or, without
    /// one, synthetic ADDED changes for every current object.
    pub(crate) backlog: Vec<Arc<Change>>,
    /// The resourceVersion the backlog brings the watcher up to.
    pub(crate) resource_version: u64,
    pub(crate) live: broadcast::Receiver<Arc<Change>>,
}

pub(crate) struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Arc<Change>>,
    logs: broadcast::Sender<LogChunk>,
    /// The last body rendered by [`Store::list_body`] and what it lists.
    list_body: Mutex<Option<(ListKey, Bytes)>>,
}

/// What a rendered list body shows: the resource, the namespace (`None`: all)
/// and the resourceVersion it was rendered at. Every change takes a new
/// resourceVersion, so a body with the current one is still the truth.
type ListKey = (&'static str, Option<String>, u64);

struct Inner {
    resource_version: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Changes up to this resourceVersion are no longer in the history.
    compacted: u64,
    logs: HashMap<(String, String), String>,
}

/// Appended log text, for `pods/log?follow=true`.
#[derive(Debug, Clone)]
pub(crate) struct LogChunk {
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) text: String,
}

pub(crate) const DEFAULT_HISTORY: usize = 1000;

impl Store {
    pub(crate) fn new() -> Self {
        let (changes, _) = broadcast::channel(4096);
        let (logs, _) = broadcast::channel(1024);
        let store = Self {
            inner: Mutex::new(Inner {
                resource_version: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_limit: DEFAULT_HISTORY,
                compacted: 0,
                logs: HashMap::new(),
            }),
            changes,
            logs,
            list_body: Mutex::new(None),
        };
        for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Err(e) = store.create(namespaces(), "", namespace, false) {
                unreachable!("creating the built-in namespace {ns}: {e:?}");
            }
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every change
        // is committed in one step), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    pub(crate) fn get(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let key = key(resource, namespace, name);
        self.lock().objects.get(&key).cloned()
    }

    /// Objects of `resource`, in one namespace or (`None`) all, sorted by
    /// namespace and name; and the current resourceVersion.
    pub(crate) fn list(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
    ) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let objects = inner
            .objects
            .iter()
            .filter(|((r, ns, _), _)| *r == resource.plural && namespace.is_none_or(|n| n == ns))
            .map(|(_, object)| object.clone())
            .collect();
        (objects, inner.resource_version)
    }

    /// The body of an unfiltered list, rendered by `render` from [`Store::list`]'s
    /// answer, or the same bytes again while nothing changed. A benchmark
    /// lists 1,000 pods over and over: rendering them each time (cloning the
    /// objects, serializing ~600 KB) cost the server ~40 ms of CPU per request,
    /// time that both clients being compared would wait for and that only
    /// widened the spread of their difference.
    pub(crate) fn list_body(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        render: impl FnOnce(Vec<Value>, u64) -> Bytes,
    ) -> Bytes {
        let mut cached = self.list_body.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.resource_version();
        if let Some(((plural, listed_namespace, at), body)) = cached.as_ref()
            && (*plural, listed_namespace.as_deref(), *at) == (resource.plural, namespace, now)
        {
            return body.clone();
        }
        let (objects, rv) = self.list(resource, namespace);
        let body = render(objects, rv);
        *cached = Some((
            (resource.plural, namespace.map(str::to_string), rv),
            body.clone(),
        ));
        body
    }

    fn commit(&self, inner: &mut Inner, change: Change) {
        let change = Arc::new(change);
        inner.history.push_back(change.clone());
        while inner.history.len() > inner.history_limit {
            if let Some(dropped) = inner.history.pop_front() {
                inner.compacted = dropped.resource_version;
            }
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// Creates an object (POST). `namespace` is "" for cluster-scoped resources.
    pub(crate) fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        check_type(resource, &mut object)?;
        fill_name(resource, &mut object)?;
        let name = name_of(&object).to_string();
        set_namespace(resource, namespace, &mut object)?;
        let mut inner = self.lock();
        if resource.namespaced
            && !inner
                .objects
                .contains_key(&key(namespaces(), "", namespace))
        {
            return Err(ApiError::not_found("namespaces", namespace));
        }
        let key = key(resource, namespace, &name);
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource.plural, &name));
        }
        let rv = inner.resource_version + 1;
        let metadata = metadata_mut(&mut object);
        metadata.insert("uid".into(), json!(new_uid()));
        metadata.insert(
            "creationTimestamp".into(),
            json!(rfc3339(SystemTime::now())),
        );
        metadata.insert("resourceVersion".into(), json!(rv.to_string()));
        defaults(resource, &mut object);
        if dry_run {
            return Ok(object);
        }
        inner.resource_version = rv;
        inner.objects.insert(key, object.clone());
        self.commit(
            &mut inner,
            Change {
                kind: ChangeType::Added,
                resource,
                resource_version: rv,
                object: object.clone(),
                previous: None,
            },
        );
        Ok(object)
    }

    /// Replaces an object (PUT, or the result of a PATCH). A resourceVersion
    /// in the new object must match the stored one (optimistic concurrency).
    pub(crate) fn update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        check_type(resource, &mut object)?;
        set_namespace(resource, namespace, &mut object)?;
        match name_of(&object) {
            "" => {
                metadata_mut(&mut object).insert("name".into(), json!(name));
            }
            n if n == name => {}
            _ => {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
        }
        let mut inner = self.lock();
        let key = key(resource, namespace, name);
        let Some(old) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(resource.plural, name));
        };
        let wanted = object
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let current = old["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !wanted.is_empty() && wanted != current {
            return Err(ApiError::conflict(resource.plural, name));
        }
        let rv = inner.resource_version + 1;
        let metadata = metadata_mut(&mut object);
        for kept in ["uid", "creationTimestamp", "deletionTimestamp"] {
            match old["metadata"].get(kept) {
                Some(v) => metadata.insert(kept.into(), v.clone()),
                None => metadata.remove(kept),
            };
        }
        metadata.insert("resourceVersion".into(), json!(rv.to_string()));
        defaults(resource, &mut object);
        if dry_run {
            return Ok(object);
        }
        inner.resource_version = rv;
        inner.objects.insert(key, object.clone());
        self.commit(
            &mut inner,
            Change {
                kind: ChangeType::Modified,
                resource,
                resource_version: rv,
                object: object.clone(),
                previous: Some(old),
            },
        );
        Ok(object)
    }

    /// Deletes an object at once (no graceful deletion, no finalizers); a
    /// namespace takes its objects with it. Returns the object as deleted.
    pub(crate) fn delete(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let key = key(resource, namespace, name);
        let Some(object) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(resource.plural, name));
        };
        if dry_run {
            return Ok(object);
        }
        if resource.plural == "namespaces" {
            let contents: Vec<Key> = inner
                .objects
                .keys()
                .filter(|(_, ns, _)| ns == name)
                .cloned()
                .collect();
            for key in contents {
                if let (Some(resource), Some(object)) =
                    (self::resource(key.0), inner.objects.remove(&key))
                {
                    self.record_deletion(&mut inner, resource, object);
                }
                inner.logs.remove(&(key.1.clone(), key.2.clone()));
            }
        }
        inner.objects.remove(&key);
        if resource.plural == "pods" {
            inner
                .logs
                .remove(&(namespace.to_string(), name.to_string()));
        }
        Ok(self.record_deletion(&mut inner, resource, object))
    }

    fn record_deletion(
        &self,
        inner: &mut Inner,
        resource: &'static Resource,
        mut object: Value,
    ) -> Value {
        let rv = inner.resource_version + 1;
        inner.resource_version = rv;
        metadata_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        self.commit(
            inner,
            Change {
                kind: ChangeType::Deleted,
                resource,
                resource_version: rv,
                object: object.clone(),
                previous: None,
            },
        );
        object
    }

    /// Where a watch of `resource` starts. `from`: the requested
    /// resourceVersion; `None` (or 0) means "current state as ADDED, then live".
    pub(crate) fn watch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let live = self.changes.subscribe();
        let in_scope = |change: &Change| {
            change.resource == resource && namespace.is_none_or(|n| n == change.namespace())
        };
        let backlog = match from {
            None | Some(0) => inner
                .objects
                .iter()
                .filter(|((r, ns, _), _)| {
                    *r == resource.plural && namespace.is_none_or(|n| n == ns)
                })
                .map(|(_, object)| {
                    Arc::new(Change {
                        kind: ChangeType::Added,
                        resource,
                        resource_version: inner.resource_version,
                        object: object.clone(),
                        previous: None,
                    })
                })
                .collect(),
            Some(rv) if rv < inner.compacted => return Err(ApiError::expired(rv, inner.compacted)),
            Some(rv) => inner
                .history
                .iter()
                .filter(|c| c.resource_version > rv && in_scope(c))
                .cloned()
                .collect(),
        };
        Ok(WatchStart {
            backlog,
            resource_version: inner.resource_version,
            live,
        })
    }

    /// Forgets the watch history: watches from any resourceVersion before
    /// now get `410 Expired`, as after an etcd compaction.
    pub(crate) fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted = inner.resource_version;
    }

    pub(crate) fn set_history_limit(&self, limit: usize) {
        let mut inner = self.lock();
        inner.history_limit = limit;
        while inner.history.len() > limit {
            if let Some(dropped) = inner.history.pop_front() {
                inner.compacted = dropped.resource_version;
            }
        }
    }

    pub(crate) fn log(&self, namespace: &str, pod: &str) -> String {
        let key = (namespace.to_string(), pod.to_string());
        self.lock().logs.get(&key).cloned().unwrap_or_default()
    }

    /// Appends to a pod's log (and to the `follow` streams of that log).
    pub(crate) fn append_log(&self, namespace: &str, pod: &str, text: &str) {
        let mut inner = self.lock();
        inner
            .logs
            .entry((namespace.to_string(), pod.to_string()))
            .or_default()
            .push_str(text);
        let _ = self.logs.send(LogChunk {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            text: text.to_string(),
        });
    }

    /// The log so far and a subscription to what is appended after it.
    pub(crate) fn follow_log(
        &self,
        namespace: &str,
        pod: &str,
    ) -> (
        String,
        broadcast::Receiver<LogChunk>,
        broadcast::Receiver<Arc<Change>>,
    ) {
        let inner = self.lock();
        let key = (namespace.to_string(), pod.to_string());
        let so_far = inner.logs.get(&key).cloned().unwrap_or_default();
        (so_far, self.logs.subscribe(), self.changes.subscribe())
    }
}

fn key(resource: &Resource, namespace: &str, name: &str) -> Key {
    let namespace = if resource.namespaced { namespace } else { "" };
    (resource.plural, namespace.to_string(), name.to_string())
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(metadata)) => metadata,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// `kind`/`apiVersion` must match the URL; missing ones are filled in.
fn check_type(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ));
    };
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(resource.kind));
        }
        Some(k) if k == resource.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data (v1) does not match the expected API version (v1); \
                 kind {k} does not match {}",
                resource.kind
            )));
        }
    }
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!("v1"));
        }
        Some("v1") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({other}) does not match the expected API version (v1)"
            )));
        }
    }
    if map
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

fn fill_name(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
    if !name_of(object).is_empty() {
        return Ok(());
    }
    let generate = object
        .get("metadata")
        .and_then(|m| m.get("generateName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if generate.is_empty() {
        return Err(ApiError::invalid(
            resource.kind,
            "",
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bits = random_u64();
    let suffix: String = (0..5)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            c
        })
        .collect();
    metadata_mut(object).insert("name".into(), json!(format!("{generate}{suffix}")));
    Ok(())
}

fn set_namespace(resource: &Resource, namespace: &str, object: &mut Value) -> Result<(), ApiError> {
    let metadata = metadata_mut(object);
    if !resource.namespaced {
        metadata.remove("namespace");
        return Ok(());
    }
    match metadata.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            metadata.insert("namespace".into(), json!(namespace));
            Ok(())
        }
        Some(n) if n == namespace => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// What kube-apiserver's registry strategies set on every write.
fn defaults(resource: &Resource, object: &mut Value) {
    match resource.plural {
        "secrets" => {
            if object
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                object["type"] = json!("Opaque");
            }
            // stringData is write-only: merged into data, base64-encoded.
            if let Some(Value::Object(string_data)) =
                object.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                use base64::Engine as _;
                if !object.get("data").is_some_and(Value::is_object) {
                    object["data"] = json!({});
                }
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    object["data"][k] =
                        json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
        }
        "namespaces" => {
            let name = name_of(object).to_string();
            let metadata = metadata_mut(object);
            if !metadata.get("labels").is_some_and(Value::is_object) {
                metadata.insert("labels".into(), json!({}));
            }
            metadata["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if !object.get("spec").is_some_and(Value::is_object) {
                object["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if !object.get("status").is_some_and(Value::is_object) {
                object["status"] = json!({"phase": "Active"});
            }
        }
        "pods" if !object.get("status").is_some_and(Value::is_object) => {
            object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        _ => {}
    }
}

pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((COUNTER.fetch_add(1, Ordering::Relaxed), SystemTime::now()))
}

/// A version-4 UUID.
fn new_uid() -> String {
    let (a, b) = (random_u64(), random_u64());
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        8 + (b >> 60) % 4,
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new()
    }

    #[test]
    fn create_update_delete_and_watch_history() {
        let store = store();
        let cms = resource("cm").expect("configmaps");
        let rv0 = store.resource_version();
        let created = store
            .create(
                cms,
                "default",
                json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
                false,
            )
            .expect("create");
        assert_eq!(created["kind"], "ConfigMap");
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(
            created["metadata"]["resourceVersion"],
            (rv0 + 1).to_string()
        );
        assert_eq!(
            store.create(cms, "default", json!({"metadata": {"name": "a"}}), false),
            Err(ApiError::already_exists("configmaps", "a"))
        );
        assert_eq!(
            store.create(cms, "nope", json!({"metadata": {"name": "a"}}), false),
            Err(ApiError::not_found("namespaces", "nope"))
        );
        let stale = json!({"metadata": {"name": "a", "resourceVersion": "1"}});
        assert_eq!(
            store.update(cms, "default", "a", stale, false).map(|_| ()),
            Err(ApiError::conflict("configmaps", "a"))
        );
        let updated = store
            .update(
                cms,
                "default",
                "a",
                json!({"metadata": {"name": "a"}, "data": {}}),
                false,
            )
            .expect("update");
        assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
        store.delete(cms, "default", "a", false).expect("delete");
        let start = store.watch(cms, Some("default"), Some(rv0)).expect("watch");
        let kinds: Vec<_> = start.backlog.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [ChangeType::Added, ChangeType::Modified, ChangeType::Deleted]
        );
        store.compact();
        assert!(matches!(
            store.watch(cms, None, Some(rv0)),
            Err(ApiError {
                code: 410,
                reason: "Expired",
                ..
            })
        ));
    }

    #[test]
    fn uids_look_like_uuids() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4');
        assert_ne!(uid, new_uid());
    }
}
