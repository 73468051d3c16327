//! `kubectl {{name}}`: lists the pods of the current namespace (`-n` to pick
//! another; krew-wasm applies it when it builds the kubeconfig view).

use krew_wasm_sdk::k8s_openapi::api::core::v1::Pod;
use krew_wasm_sdk::kube::{Api, api::ListParams};

fn main() {
    krew_wasm_sdk::run(async {
        let view = krew_wasm_sdk::view()?;
        let pods: Api<Pod> = Api::namespaced(krew_wasm_sdk::client()?, view.namespace());
        let list = pods.list(&ListParams::default()).await?;
        if list.items.is_empty() {
            println!("No pods in namespace {} (context {}).", view.namespace(), view.context());
        }
        for pod in list {
            let phase = pod
                .status
                .and_then(|status| status.phase)
                .unwrap_or_else(|| "Unknown".to_string());
            println!("{:<50} {phase}", pod.metadata.name.unwrap_or_default());
        }
        Ok::<_, krew_wasm_sdk::Error>(())
    })
}
