//! Routing: authentication, the RBAC-like check, discovery, the resource
//! verbs, `Status` errors and Table responses.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::RecordedRequest;
use super::auth::{Auth, Identity};
use super::select::{FieldSelector, LabelSelector, Selectors};
use super::store::{ApiError, RESOURCES, Resource, Store, namespaces};
use super::table::{IncludeObject, table};
use super::watch::{WatchRequest, error_line, fixed_stream, spawn_log_follow, spawn_watch};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Request bodies above this are refused (413).
const MAX_BODY: usize = 16 << 20;

/// The version `/version` reports: kubectl 1.32's, so kubectl prints no skew warning.
pub(crate) const GIT_VERSION: &str = "v1.32.0-krew-wasm-test";

/// Everything the connection tasks share with the test thread.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) auth: Auth,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) port: u16,
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn response(code: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    response(code, "application/json", full(bytes))
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.status())
}

fn unauthorized() -> Response<Body> {
    let status = ApiError {
        code: 401,
        reason: "Unauthorized",
        message: "Unauthorized".to_string(),
        details: None,
    };
    error_response(&status)
}

/// The entry point for every request on a TLS connection.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    certificate: Option<Identity>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(error_response(&ApiError {
                code: 413,
                reason: "RequestEntityTooLarge",
                message: "the request body is too large or was cut off".to_string(),
                details: None,
            }));
        }
    };
    let authorization = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = shared
        .auth
        .authenticate(certificate.as_ref(), authorization)
        .ok();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
        user: identity.as_ref().map(|i| i.user.clone()),
        groups: identity
            .as_ref()
            .map(|i| i.groups.clone())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(recorded);
    let Some(identity) = identity else {
        return Ok(unauthorized());
    };
    let accept = parts
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let query = Query::parse(parts.uri.query().unwrap_or(""));
    let call = Call {
        shared: &shared,
        identity: &identity,
        method: &parts.method,
        query: &query,
        accept,
        content_type,
        body: &body,
    };
    Ok(route(&call, parts.uri.path()))
}

/// One authenticated request.
struct Call<'a> {
    shared: &'a Shared,
    identity: &'a Identity,
    method: &'a Method,
    query: &'a Query,
    accept: &'a str,
    content_type: &'a str,
    body: &'a [u8],
}

/// Query parameters, percent-decoded (`+` is a space, as in Go's `url.ParseQuery`).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: &str) -> Self {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Self(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(pair), String::new()),
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Go's `strconv.ParseBool` truth values.
    fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }
}

fn route(call: &Call<'_>, path: &str) -> Response<Body> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let discovery = |document: Value| {
        if call.method == Method::GET {
            json_response(200, &document)
        } else {
            error_response(&ApiError::method_not_allowed())
        }
    };
    match segments.as_slice() {
        ["version"] => discovery(version()),
        ["api"] => discovery(api_versions(call.shared.port)),
        ["apis"] => discovery(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})),
        ["api", "v1"] => discovery(api_resources()),
        ["healthz" | "livez" | "readyz"] => response(200, "text/plain; charset=utf-8", full("ok")),
        ["api", "v1", rest @ ..] => match resource_request(call, rest) {
            Ok(response) => response,
            Err(error) => error_response(&error),
        },
        ["openapi", "v3"] => discovery(openapi_v3_root()),
        ["openapi", "v3", "api", "v1"] => discovery(openapi_v3_core()),
        ["api" | "apis" | "openapi", ..] => error_response(&ApiError::no_such_resource()),
        _ => response(
            404,
            "text/plain; charset=utf-8",
            full("404 page not found\n"),
        ),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_versions(port: u16) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}],
    })
}

fn api_resources() -> Value {
    const VERBS: [&str; 8] = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let mut resources = Vec::new();
    for r in RESOURCES {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        if r.plural == "pods" {
            resources.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
        }
    }
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": resources})
}

/// `/openapi/v3`: where each group-version's document is.
fn openapi_v3_root() -> Value {
    json!({"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=krew-wasm-test"}}})
}

/// `/openapi/v3/api/v1`, reduced to what kubectl looks for before `apply`
/// and `create -f`: a PATCH operation per kind taking the `fieldValidation`
/// query parameter, so kubectl leaves validation to the server instead of
/// downloading schemas. No request body or schemas: kubectl then computes
/// strategic merge patches from its compiled-in types.
fn openapi_v3_core() -> Value {
    let mut paths = Map::new();
    for r in RESOURCES {
        let path = if r.namespaced {
            format!("/api/v1/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/api/v1/{}/{{name}}", r.plural)
        };
        let operation = json!({
            "operationId": format!("patchCoreV1{}", r.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": r.kind},
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "force", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": operation}));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

/// What a URL under `/api/v1` names.
struct Target {
    resource: &'static Resource,
    /// The namespace in the URL (`None`: all namespaces, or cluster-scoped).
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    /// The deprecated `/api/v1/watch/…` form.
    watch_path: bool,
}

fn plural(name: &str) -> Result<&'static Resource, ApiError> {
    RESOURCES
        .iter()
        .find(|r| r.plural == name)
        .ok_or_else(ApiError::no_such_resource)
}

fn parse_target(segments: &[&str]) -> Result<Target, ApiError> {
    let (watch_path, segments) = match segments {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, segments),
    };
    let target =
        |resource, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
            resource,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
            watch_path,
        };
    match segments {
        [r] => Ok(target(plural(r)?, None, None, None)),
        ["namespaces", name] => Ok(target(namespaces(), None, Some(name), None)),
        ["namespaces", ns, r] if plural(r).is_ok_and(|r| r.namespaced) => {
            Ok(target(plural(r)?, Some(ns), None, None))
        }
        ["namespaces", ns, r, name] if plural(r).is_ok_and(|r| r.namespaced) => {
            Ok(target(plural(r)?, Some(ns), Some(name), None))
        }
        ["namespaces", ns, r, name, sub] if plural(r).is_ok_and(|r| r.namespaced) => {
            Ok(target(plural(r)?, Some(ns), Some(name), Some(sub)))
        }
        [r, name] if plural(r).is_ok_and(|r| !r.namespaced) => {
            Ok(target(plural(r)?, None, Some(name), None))
        }
        _ => Err(ApiError::no_such_resource()),
    }
}

impl Target {
    /// The namespace an authorizer sees (for a namespace, its own name).
    fn authz_namespace(&self) -> Option<&str> {
        if self.resource.plural == "namespaces" {
            self.name.as_deref()
        } else {
            self.namespace.as_deref()
        }
    }

    /// The store's namespace argument: "" for cluster-scoped objects.
    fn store_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

fn forbidden(identity: &Identity, verb: &str, target: &Target) -> ApiError {
    let resource = match &target.subresource {
        Some(sub) => format!("{}/{sub}", target.resource.plural),
        None => target.resource.plural.to_string(),
    };
    let subject = match &target.name {
        Some(name) => format!("{} \"{name}\"", target.resource.plural),
        None => target.resource.plural.to_string(),
    };
    let scope = match target.authz_namespace() {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut details = json!({"kind": target.resource.plural});
    if let Some(name) = &target.name {
        details["name"] = json!(name);
    }
    ApiError {
        code: 403,
        reason: "Forbidden",
        message: format!(
            "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"\" {scope}",
            identity.user
        ),
        details: Some(details),
    }
}

fn selectors(query: &Query) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?,
        fields: FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?,
    })
}

/// Whether a list is filtered by labels or fields.
fn has_selectors(query: &Query) -> bool {
    ["labelSelector", "fieldSelector"]
        .iter()
        .any(|name| query.get(name).is_some_and(|value| !value.is_empty()))
}

/// A POST or PUT body: JSON, or protobuf from kubectl's typed clients.
fn parse_object(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if super::protobuf::is_protobuf(content_type) {
        return super::protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        });
    }
    parse_json(body)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

/// `application/json;as=Table;v=v1;g=meta.k8s.io` (or v1beta1) anywhere in Accept.
fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

/// A `<Kind>List` of `objects` at resourceVersion `rv`.
fn list_object(resource: &Resource, objects: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": "v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "items": objects.into_iter().map(list_item).collect::<Vec<_>>(),
    })
}

/// List items carry no kind/apiVersion on the wire (the list says what they are).
fn list_item(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    object
}

fn resource_request(call: &Call<'_>, segments: &[&str]) -> Result<Response<Body>, ApiError> {
    let target = parse_target(segments)?;
    let query = call.query;
    let watch = target.watch_path || query.flag("watch");
    let verb = match (call.method, target.name.is_some()) {
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed()),
    };
    if call.shared.auth.is_forbidden(call.identity) {
        return Err(forbidden(call.identity, verb, &target));
    }
    if let Some(sub) = &target.subresource {
        return match (target.resource.plural, sub.as_str(), verb) {
            ("pods", "log", "get") => pod_log(call, &target),
            ("pods", "log", _) => Err(ApiError::method_not_allowed()),
            _ => Err(ApiError::no_such_resource()),
        };
    }
    // A namespaced collection without a namespace only lists and watches.
    if target.resource.namespaced && target.namespace.is_none() && !matches!(verb, "list" | "watch")
    {
        return Err(ApiError::method_not_allowed());
    }
    let dry_run = query.get("dryRun") == Some("All");
    let store = &call.shared.store;
    let resource = target.resource;
    let ns = target.store_namespace();
    let table_mode =
        wants_table(call.accept).then(|| IncludeObject::parse(query.get("includeObject")));
    match verb {
        "get" => {
            let name = target.name.as_deref().unwrap_or("");
            let object = store
                .get(resource, ns, name)
                .ok_or_else(|| ApiError::not_found(resource.plural, name))?;
            Ok(match table_mode {
                Some(include) => {
                    let rv = object["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|rv| rv.parse().ok());
                    json_response(200, &table(resource, &[object], rv, include))
                }
                None => json_response(200, &object),
            })
        }
        "list" if table_mode.is_none() && !has_selectors(query) => {
            let body = store.list_body(resource, target.namespace.as_deref(), |objects, rv| {
                Bytes::from(
                    serde_json::to_vec(&list_object(resource, objects, rv)).unwrap_or_default(),
                )
            });
            Ok(response(200, "application/json", full(body)))
        }
        "list" => {
            let selectors = selectors(query)?;
            let (objects, rv) = store.list(resource, target.namespace.as_deref());
            let objects: Vec<Value> = objects
                .into_iter()
                .filter(|o| selectors.matches(o))
                .collect();
            Ok(match table_mode {
                Some(include) => json_response(200, &table(resource, &objects, Some(rv), include)),
                None => json_response(200, &list_object(resource, objects, rv)),
            })
        }
        "watch" => start_watch(call, &target, table_mode),
        "create" => {
            let object = parse_object(call.content_type, call.body)?;
            let created = store.create(resource, ns, object, dry_run)?;
            Ok(json_response(201, &created))
        }
        "update" => {
            let name = target.name.as_deref().unwrap_or("");
            let object = parse_object(call.content_type, call.body)?;
            Ok(json_response(
                200,
                &store.update(resource, ns, name, object, dry_run)?,
            ))
        }
        "patch" => patch(call, &target, dry_run),
        "delete" => {
            let name = target.name.as_deref().unwrap_or("");
            let deleted = store.delete(resource, ns, name, dry_run)?;
            Ok(json_response(200, &deleted_response(resource, deleted)))
        }
        "deletecollection" => {
            let selectors = selectors(query)?;
            let (objects, _) = store.list(resource, target.namespace.as_deref());
            let mut deleted = Vec::new();
            for object in objects.into_iter().filter(|o| selectors.matches(o)) {
                let name = super::store::name_of(&object).to_string();
                let namespace = super::store::namespace_of(&object).to_string();
                if let Ok(object) = store.delete(resource, &namespace, &name, dry_run) {
                    deleted.push(list_item(object));
                }
            }
            let rv = store.resource_version();
            Ok(json_response(
                200,
                &json!({
                    "kind": format!("{}List", resource.kind),
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": deleted,
                }),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// kube-apiserver answers a DELETE with the object for resources that are
/// deleted gracefully (pods, namespaces) and with a Success Status for the others.
fn deleted_response(resource: &Resource, deleted: Value) -> Value {
    if matches!(resource.plural, "pods" | "namespaces") {
        return deleted;
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": super::store::name_of(&deleted),
            "kind": resource.plural,
            "uid": deleted["metadata"]["uid"],
        },
    })
}

fn start_watch(
    call: &Call<'_>,
    target: &Target,
    table_mode: Option<IncludeObject>,
) -> Result<Response<Body>, ApiError> {
    let query = call.query;
    let selectors = selectors(query)?;
    let initial_events = query.flag("sendInitialEvents");
    let from = match query.get("resourceVersion") {
        _ if initial_events => None,
        None | Some("") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?,
        ),
    };
    let timeout = match query.get("timeoutSeconds") {
        None | Some("") => None,
        Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("invalid timeoutSeconds: {t:?}"))
        })?)),
    };
    let request = WatchRequest {
        resource: target.resource,
        namespace: target.namespace.clone(),
        selectors,
        timeout,
        bookmarks: query.flag("allowWatchBookmarks"),
        initial_events_end: initial_events,
        table: table_mode,
    };
    let body = match call
        .shared
        .store
        .watch(target.resource, target.namespace.as_deref(), from)
    {
        Ok(start) => spawn_watch(request, start),
        Err(expired) => fixed_stream(vec![error_line(&expired)]),
    };
    // The body has no known length, so hyper sends it chunked, a chunk per event.
    Ok(response(200, "application/json", body.boxed()))
}

fn pod_log(call: &Call<'_>, target: &Target) -> Result<Response<Body>, ApiError> {
    let store = &call.shared.store;
    let ns = target.store_namespace();
    let name = target.name.as_deref().unwrap_or("");
    if store.get(target.resource, ns, name).is_none() {
        return Err(ApiError::not_found("pods", name));
    }
    if call.query.flag("follow") {
        let (so_far, chunks, changes) = store.follow_log(ns, name);
        let body = spawn_log_follow(ns.to_string(), name.to_string(), so_far, chunks, changes);
        return Ok(response(200, "text/plain", body.boxed()));
    }
    Ok(response(200, "text/plain", full(store.log(ns, name))))
}

/// PATCH. `json-patch+json` is RFC 6902; `merge-patch+json` RFC 7386, which
/// also serves for `strategic-merge-patch+json` (lists are replaced, not
/// merged by key; `$patch`-style directives are dropped) and for
/// `apply-patch+yaml` with a JSON body, as kubectl sends it (server-side
/// apply without field ownership: creates a missing object, else merges).
fn patch(call: &Call<'_>, target: &Target, dry_run: bool) -> Result<Response<Body>, ApiError> {
    let store = &call.shared.store;
    let resource = target.resource;
    let ns = target.store_namespace();
    let name = target.name.as_deref().unwrap_or("");
    let media = call
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    enum Kind {
        Json,
        Merge,
        Apply,
    }
    let kind = match media.as_str() {
        "application/json-patch+json" => Kind::Json,
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => Kind::Merge,
        "application/apply-patch+yaml" | "application/apply-patch+json" => Kind::Apply,
        _ => {
            return Err(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml, application/strategic-merge-patch+json (got {media})"
                ),
                details: None,
            });
        }
    };
    let mut patch = parse_json(call.body)?;
    strip_directives(&mut patch);
    let Some(mut current) = store.get(resource, ns, name) else {
        if matches!(kind, Kind::Apply) {
            let created = store.create(resource, ns, patch, dry_run)?;
            return Ok(json_response(201, &created));
        }
        return Err(ApiError::not_found(resource.plural, name));
    };
    let stored_rv = current["metadata"]["resourceVersion"].clone();
    match kind {
        Kind::Json => json_patch(&mut current, &patch).map_err(|message| ApiError {
            code: 422,
            reason: "Invalid",
            message,
            details: None,
        })?,
        Kind::Merge | Kind::Apply => merge_patch(&mut current, &patch),
    }
    // A resourceVersion the patch sets is a precondition; otherwise the
    // patch applies to whatever is stored.
    if let Some(metadata) = current.get_mut("metadata").and_then(Value::as_object_mut)
        && metadata.get("resourceVersion") == Some(&stored_rv)
    {
        metadata.remove("resourceVersion");
    }
    Ok(json_response(
        200,
        &store.update(resource, ns, name, current, dry_run)?,
    ))
}

/// RFC 6902 (add, remove, replace, move, copy, test).
pub(crate) fn json_patch(document: &mut Value, operations: &Value) -> Result<(), String> {
    let operations = operations
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for operation in operations {
        let op = operation["op"]
            .as_str()
            .ok_or("a JSON patch operation without \"op\"")?;
        let path = operation["path"]
            .as_str()
            .ok_or("a JSON patch operation without \"path\"")?;
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or(format!("{op} {path}: no \"value\""))
        };
        let from = || {
            operation["from"]
                .as_str()
                .ok_or(format!("{op} {path}: no \"from\""))
        };
        match op {
            "add" => pointer_add(document, path, value()?)?,
            "remove" => drop(pointer_remove(document, path)?),
            "replace" => {
                pointer_remove(document, path)?;
                pointer_add(document, path, value()?)?;
            }
            "move" => {
                let moved = pointer_remove(document, from()?)?;
                pointer_add(document, path, moved)?;
            }
            "copy" => {
                let from = from()?;
                let copied = document
                    .pointer(from)
                    .cloned()
                    .ok_or(format!("copy: {from} does not exist"))?;
                pointer_add(document, path, copied)?;
            }
            "test" => {
                if document.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path}"));
                }
            }
            _ => return Err(format!("unknown JSON patch operation {op:?}")),
        }
    }
    Ok(())
}

/// `/a/b~1c` -> (`/a`, `b/c`).
fn split_pointer(path: &str) -> Result<(&str, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or(format!("{path:?} is not a JSON pointer"))?;
    Ok((parent, last.replace("~1", "/").replace("~0", "~")))
}

fn pointer_add(document: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *document = value;
        return Ok(());
    }
    let (parent, key) = split_pointer(path)?;
    match document.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if key == "-" {
                items.len()
            } else {
                key.parse::<usize>()
                    .map_err(|_| format!("add: {path}: not an index"))?
            };
            if index > items.len() {
                return Err(format!("add: {path}: index out of range"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!(
            "add operation does not apply: doc is missing path: {path}"
        )),
    }
}

fn pointer_remove(document: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, key) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path}");
    match document.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&key).ok_or_else(missing),
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(index) if index < items.len() => Ok(items.remove(index)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

/// RFC 7386.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Drops strategic-merge-patch directives (`$patch`, `$setElementOrder/…`,
/// `$retainKeys`, `$deleteFromPrimitiveList/…`).
fn strip_directives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !key.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn json_patch_follows_rfc6902() {
        let mut doc = json!({"data": {"a": "1", "b/c": "2"}, "list": [1, 2]});
        let ops = json!([
            {"op": "remove", "path": "/data/b~1c"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "replace", "path": "/data/a", "value": "x"},
            {"op": "move", "from": "/list/0", "path": "/first"},
            {"op": "test", "path": "/first", "value": 1},
        ]);
        assert_eq!(json_patch(&mut doc, &ops), Ok(()));
        assert_eq!(doc, json!({"data": {"a": "x"}, "list": [2, 3], "first": 1}));
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(json_patch(&mut doc, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn targets() {
        let t = parse_target(&["namespaces", "ns", "pods", "p", "log"]).expect("pod log");
        assert_eq!(
            (
                t.resource.plural,
                t.namespace.as_deref(),
                t.subresource.as_deref()
            ),
            ("pods", Some("ns"), Some("log"))
        );
        let t = parse_target(&["namespaces", "ns"]).expect("a namespace");
        assert_eq!(
            (t.resource.plural, t.name.as_deref()),
            ("namespaces", Some("ns"))
        );
        let t = parse_target(&["watch", "pods"]).expect("old watch path");
        assert!(t.watch_path && t.namespace.is_none());
        assert!(parse_target(&["services"]).is_err());
        assert!(parse_target(&["namespaces", "ns", "namespaces"]).is_err());
    }

    #[test]
    fn tables_are_recognised_in_accept() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }

    #[test]
    fn queries_are_decoded() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier&watch=1&x=a+b");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), Some("a b"));
    }
}
