//! `cargo xtask layers`: the dependency table of ARCHITECTURE.md, enforced.
//!
//! Reads `cargo metadata` and fails when a crate's normal or build
//! dependencies name a crate its layer may not use. Dev-dependencies are
//! exempt: tests and benches may compare against anything.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Result, cargo};

/// Which crates each workspace crate must never depend on.
///
/// Keep in step with the table in ARCHITECTURE.md.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "dndm-core",
        &[
            "dndm-codec",
            "dndm-transport",
            "dndm-router",
            "dndm-scope",
            "dndm",
        ],
    ),
    (
        "dndm-codec",
        &[
            "dndm-core",
            "dndm-transport",
            "dndm-router",
            "dndm-scope",
            "dndm",
        ],
    ),
    ("dndm-transport", &["dndm-router", "dndm-scope", "dndm"]),
    (
        "dndm-router",
        &["dndm-transport", "dndm-scope", "dndm", "mio"],
    ),
    ("dndm-scope", &["dndm-transport", "dndm"]),
];

/// One workspace member.
pub(crate) struct Member {
    pub(crate) name: String,
    /// Folder name below the workspace root (`core`, `facade`, …).
    pub(crate) folder: String,
    pub(crate) dir: PathBuf,
    /// (dependency name, kind) with kind `normal`, `dev` or `build`.
    deps: Vec<(String, String)>,
}

pub(crate) fn members(root: &Path) -> Result<Vec<Member>> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no `packages` array")?;
    let mut members = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
        let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
        let folder = dir
            .strip_prefix(root)
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|_| dir.to_string_lossy().into_owned());
        let deps = p["dependencies"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .map(|d| {
                        (
                            d["name"].as_str().unwrap_or_default().to_string(),
                            d["kind"].as_str().unwrap_or("normal").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        members.push(Member {
            name,
            folder,
            dir,
            deps,
        });
    }
    Ok(members)
}

pub(crate) fn check(root: &Path) -> Result {
    let members = members(root)?;
    let mut violations = Vec::new();
    for m in &members {
        let Some((_, banned)) = FORBIDDEN.iter().find(|(n, _)| *n == m.name) else {
            continue;
        };
        for (dep, kind) in &m.deps {
            if kind != "dev" && banned.contains(&dep.as_str()) {
                violations.push(format!("{} ({}) depends on {dep}", m.name, m.folder));
            }
        }
    }
    for (name, _) in FORBIDDEN {
        if !members.iter().any(|m| m.name == *name) {
            violations.push(format!("workspace has no crate named {name}"));
        }
    }
    if violations.is_empty() {
        eprintln!(
            "layers: {} crates follow the dependency table",
            members.len()
        );
        Ok(())
    } else {
        Err(format!("layering violated:\n  {}", violations.join("\n  ")))
    }
}
