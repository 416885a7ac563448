//! What a component is (tool or channel) and which capabilities its imports need.
//!
//! Must not: instantiate or run a component; it only reads its types.

use std::collections::BTreeSet;

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::capability::Capability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Tool,
    Channel,
}

/// Which version of `channel-adapter` a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    V0_1,
    V0_2,
}

impl ContractVersion {
    /// From the exported interface's name (`chela:plugin/channel-adapter@0.2.0`).
    pub fn of_export(export: &str) -> Option<ContractVersion> {
        match export.rsplit_once('@').map(|(_, v)| v) {
            Some("0.1.0") => Some(ContractVersion::V0_1),
            Some("0.2.0") => Some(ContractVersion::V0_2),
            _ => None,
        }
    }
}

/// The facts `chela plugins inspect` prints and the loader decides on.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginManifest {
    pub kind: PluginKind,
    /// The exported interface that identifies the world, with its version.
    pub world_export: String,
    pub exports: Vec<String>,
    /// Every import, with the capability it maps to (`None`: always linked).
    pub imports: Vec<(String, Option<Capability>)>,
    pub needs: BTreeSet<Capability>,
}

pub fn inspect(engine: &Engine, component: &Component) -> Result<PluginManifest, String> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let mut imports = Vec::new();
    let mut needs = BTreeSet::new();
    let mut unknown = Vec::new();
    for (name, _) in ty.imports(engine) {
        match Capability::for_import(name) {
            Ok(cap) => {
                needs.extend(cap);
                imports.push((name.to_string(), cap));
            }
            Err(e) => unknown.push(e),
        }
    }
    if !unknown.is_empty() {
        return Err(format!("{}; a plugin may import only chela:plugin/* and WASI 0.2", unknown.join(", ")));
    }
    let find = |iface: &str| exports.iter().find(|e| e.split('@').next() == Some(iface)).cloned();
    let (kind, world_export) = match (find("chela:plugin/tool"), find("chela:plugin/channel-adapter")) {
        (Some(e), None) => (PluginKind::Tool, e),
        (None, Some(e)) => (PluginKind::Channel, e),
        (Some(_), Some(_)) => return Err("exports both `tool` and `channel-adapter`; one plugin is one of them".into()),
        (None, None) => {
            return Err(format!(
                "exports neither chela:plugin/tool nor chela:plugin/channel-adapter (exports: {})",
                if exports.is_empty() { "none".to_string() } else { exports.join(", ") }
            ))
        }
    };
    let speaks = match kind {
        PluginKind::Tool => world_export.ends_with("@0.1.0"),
        PluginKind::Channel => ContractVersion::of_export(&world_export).is_some(),
    };
    if !speaks {
        return Err(format!(
            "`{world_export}`: this host speaks chela:plugin@0.1.0 tools and chela:plugin@0.1.0 or @0.2.0 channel adapters"
        ));
    }
    Ok(PluginManifest { kind, world_export, exports, imports, needs })
}
