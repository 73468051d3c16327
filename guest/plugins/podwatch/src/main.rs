//! `kubectl podwatch [-n NS | -A]`: the pods, then one line per change as it
//! happens, through kube-rs `Api::watch` over the SDK's streaming wasi:http
//! transport.
//!
//! The loop is list, then watch from the list's resourceVersion; when the server
//! ends a watch (its timeout) it resumes from the last version seen; when the
//! version is too old (410 Gone) it lists again and prints what changed in between.
//! [`pods`] holds the pure parts (what a line shows, which events are noise).

mod args;
mod pods;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use krew_wasm_sdk::Error;
use krew_wasm_sdk::futures::{StreamExt, TryStreamExt};
use krew_wasm_sdk::k8s_openapi::api::core::v1::Pod;
use krew_wasm_sdk::kube::api::{Api, ListParams, WatchEvent, WatchParams};

use crate::args::{Invocation, Options, USAGE};
use crate::pods::{Change, Summary, Tracker};

/// How long one watch request lasts before the server ends it and we resume.
const WATCH_SECONDS: u32 = 290;

fn main() {
    let options = match args::parse(std::env::args().skip(1)) {
        Ok(Invocation::Watch(options)) => options,
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(err) => {
            eprintln!("error: {err}\n\n{USAGE}");
            std::process::exit(1);
        }
    };
    krew_wasm_sdk::run(watch(options));
}

async fn watch(options: Options) -> Result<(), Error> {
    let client = krew_wasm_sdk::client()?;
    let namespace = match &options.namespace {
        Some(namespace) => namespace.clone(),
        None => krew_wasm_sdk::view()?.namespace().to_string(),
    };
    let api: Api<Pod> = if options.all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, &namespace)
    };
    let mut out = Printer {
        all_namespaces: options.all_namespaces,
    };
    out.header()?;

    let mut tracker = Tracker::default();
    let mut first = true;
    loop {
        let list = api.list(&ListParams::default()).await?;
        let version = list.metadata.resource_version.clone().unwrap_or_default();
        let summaries = list.items.iter().map(Summary::of).collect();
        for (change, pod) in tracker.relist(summaries, first) {
            out.line(change, &pod)?;
        }
        if first && tracker.is_empty() {
            let scope = if options.all_namespaces {
                "any namespace".to_string()
            } else {
                format!("namespace {namespace}")
            };
            eprintln!("No pods in {scope} yet; waiting for changes.");
        }
        first = false;
        watch_from(&api, version, &mut tracker, &mut out).await?;
        eprintln!("(the watch expired; listing again)");
    }
}

/// Watches from `version` until the server says the version is gone (410).
async fn watch_from(
    api: &Api<Pod>,
    mut version: String,
    tracker: &mut Tracker,
    out: &mut Printer,
) -> Result<(), Error> {
    loop {
        let params = WatchParams::default().timeout(WATCH_SECONDS);
        let stream = match api.watch(&params, &version).await {
            Err(krew_wasm_sdk::kube::Error::Api(status)) if status.code == 410 => return Ok(()),
            other => other?,
        };
        let mut stream = stream.boxed();
        while let Some(event) = stream.try_next().await? {
            let (change, pod) = match event {
                WatchEvent::Added(pod) => (Change::Added, pod),
                WatchEvent::Modified(pod) => (Change::Modified, pod),
                WatchEvent::Deleted(pod) => (Change::Deleted, pod),
                WatchEvent::Bookmark(bookmark) => {
                    version = bookmark.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(status) if status.code == 410 => return Ok(()),
                WatchEvent::Error(status) => {
                    return Err(krew_wasm_sdk::kube::Error::Api(status).into());
                }
            };
            if let Some(v) = &pod.metadata.resource_version {
                version.clone_from(v);
            }
            if let Some((change, summary)) = tracker.apply(change, Summary::of(&pod)) {
                out.line(change, &summary)?;
            }
        }
        // The server closed the watch (its timeout): carry on from `version`.
    }
}

/// Writes lines to stdout, flushed one by one so a pipe sees each change at once.
struct Printer {
    all_namespaces: bool,
}

impl Printer {
    fn header(&mut self) -> Result<(), Error> {
        self.write(&pods::header(self.all_namespaces))
    }

    fn line(&mut self, change: Change, pod: &Summary) -> Result<(), Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.write(&pods::line(
            &pods::time_of_day(now),
            change,
            pod,
            self.all_namespaces,
        ))
    }

    fn write(&mut self, text: &str) -> Result<(), Error> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")?;
        stdout.flush()?;
        Ok(())
    }
}
