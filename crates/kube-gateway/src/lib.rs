//! The host side of Kubernetes API access for krew-wasm plugins.
//!
//! A plugin never holds a credential. Instead:
//!
//! - [`KubectlFlags`] reads `--kubeconfig`, `--context`, `--cluster`,
//!   `--user` and `-n`/`--namespace` from the plugin's argv (they stay there
//!   for the plugin too);
//! - [`Selection::load`] applies kubectl's loading rules to pick the cluster,
//!   user and namespace, and [`Selection::view_json`] writes the
//!   credential-free kubeconfig view the plugin reads;
//! - [`ApiGateway`] is the `wasi:http` hook: a request reaches the network
//!   only if its scheme, host and port are the selected API server's and it
//!   carries no credential header; it then goes out through a kube-rs client
//!   built from the real kubeconfig (token, client certificate, exec plugin,
//!   basic auth, CA, proxy…), and the response streams back to the plugin.
//!
//! ```no_run
//! use krew_wasm_kube_gateway::{ApiGateway, KubeconfigSources, KubectlFlags, Selection};
//! let argv = ["secret", "tls", "-n", "prod"];
//! let selection = Selection::load(&KubectlFlags::from_args(&argv), &KubeconfigSources::from_env());
//! let view = selection.as_ref().map(Selection::view_json).ok(); // for the plugin's /krew-wasm/kubeconfig
//! let gateway = ApiGateway::new("decoder", selection);           // for the runtime's wasi:http
//! ```
//!
//! The kube client is built on the first request, so plugins that never
//! call the API pay nothing for it and run without any kubeconfig at all.
//! The contract with the guest is written down in `docs/guest-contract.md`.

mod flags;
mod gateway;
mod origin;
mod selection;
mod transport;

pub use flags::KubectlFlags;
pub use gateway::ApiGateway;
pub use origin::Origin;
pub use selection::{KubeconfigSources, Selection, SelectionError};
