//! The dependency rules of ARCHITECTURE.md ("Arrows point down", "`kiln-api` does no IO",
//! "componentize knows no HTTP or SQL", "the kernel knows no HTTP"), checked over
//! `cargo metadata` so a change that breaks one fails `cargo xtask test` instead of waiting
//! for a reader to notice.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::env;

/// Crates that speak HTTP or SQL (or reach a registry or object store over the network).
const HTTP_OR_SQL: &[&str] = &[
    "axum",
    "http",
    "hyper",
    "reqwest",
    "ureq",
    "sqlx",
    "sqlx-core",
    "rusqlite",
    "libsqlite3-sys",
    "postgres",
    "tokio-postgres",
    "oci-client",
    "object_store",
];

/// One rule: what a workspace crate must not reach through its normal (linked) dependencies.
struct Rule {
    krate: &'static str,
    /// `Direct`: only what its manifest names; `Linked`: anything it links, transitively.
    reach: Reach,
    forbidden: Forbidden,
    why: &'static str,
}

#[derive(Clone, Copy, PartialEq)]
enum Reach {
    Direct,
    Linked,
}

enum Forbidden {
    Crates(&'static [&'static str]),
    /// Anything but these.
    AllBut(&'static [&'static str]),
}

const RULES: &[Rule] = &[
    Rule {
        krate: "kiln-api",
        reach: Reach::Direct,
        // serde_path_to_error: the JSON decoder whose errors name the field (pure serde).
        forbidden: Forbidden::AllBut(&["serde", "serde_json", "serde_path_to_error", "thiserror"]),
        why: "kiln-api does no IO: wire types only",
    },
    Rule { krate: "kiln-api", reach: Reach::Linked, forbidden: Forbidden::Crates(HTTP_OR_SQL), why: "kiln-api needs no HTTP or SQL crate" },
    Rule {
        krate: "kiln-protocol",
        reach: Reach::Direct,
        forbidden: Forbidden::AllBut(&["serde", "serde_json"]),
        why: "kiln-protocol is the text a cell shares with Kiln, nothing more",
    },
    Rule { krate: "kiln-server", reach: Reach::Direct, forbidden: Forbidden::Crates(&["kiln"]), why: "the server does not depend on the SDK" },
    Rule { krate: "kiln-componentize", reach: Reach::Linked, forbidden: Forbidden::Crates(HTTP_OR_SQL), why: "componentize knows no HTTP or SQL" },
    Rule {
        krate: "kiln-kernel",
        reach: Reach::Linked,
        forbidden: Forbidden::Crates(&["kiln", "kiln-server", "kiln-componentize", "axum", "http", "hyper", "reqwest", "ureq", "sqlx", "sqlx-core"]),
        why: "the kernel knows no HTTP or SQL (it shares only kiln-protocol with the SDK)",
    },
    Rule {
        krate: "kiln",
        reach: Reach::Linked,
        forbidden: Forbidden::Crates(&["sqlx", "sqlx-core", "rusqlite", "libsqlite3-sys", "kiln-server"]),
        why: "the SDK knows no SQL",
    },
];

/// Runs `cargo metadata` on the workspace and fails with every broken rule.
pub fn check() -> anyhow::Result<()> {
    let output = env::cargo().args(["metadata", "--format-version", "1", "--locked"]).output().context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
    let broken = violations(&metadata)?;
    if !broken.is_empty() {
        bail!("ARCHITECTURE.md's dependency rules are broken:\n  {}", broken.join("\n  "));
    }
    eprintln!("xtask: ARCHITECTURE.md's dependency rules hold");
    Ok(())
}

/// The workspace's dependency graph: package name → (direct normal deps, names).
struct Graph {
    /// id → name.
    names: BTreeMap<String, String>,
    /// id → ids of its normal (linked) dependencies.
    normal: BTreeMap<String, Vec<String>>,
    /// id → ids that depend on it in any way (normal, dev or build).
    users: BTreeMap<String, Vec<String>>,
    members: Vec<String>,
}

fn graph(metadata: &Value) -> anyhow::Result<Graph> {
    let mut names = BTreeMap::new();
    for package in metadata["packages"].as_array().context("metadata: packages")? {
        let id = package["id"].as_str().context("metadata: package id")?;
        names.insert(id.to_owned(), package["name"].as_str().context("metadata: package name")?.to_owned());
    }
    let mut normal: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().context("metadata: resolve")? {
        let id = node["id"].as_str().context("metadata: node id")?.to_owned();
        for dep in node["deps"].as_array().into_iter().flatten() {
            let pkg = dep["pkg"].as_str().context("metadata: dep pkg")?.to_owned();
            let linked = dep["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null());
            if linked {
                normal.entry(id.clone()).or_default().push(pkg.clone());
            }
            users.entry(pkg).or_default().push(id.clone());
        }
    }
    let members =
        metadata["workspace_members"].as_array().context("metadata: workspace_members")?.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect();
    Ok(Graph { names, normal, users, members })
}

impl Graph {
    fn id(&self, name: &str) -> Option<&String> {
        self.members.iter().find(|id| self.names.get(*id).map(String::as_str) == Some(name))
    }

    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }

    /// Names of what `id` links: directly, or through any chain of normal dependencies.
    fn reached(&self, id: &str, reach: Reach) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = self.normal.get(id).into_iter().flatten().map(String::as_str).collect();
        while let Some(next) = todo.pop() {
            if seen.insert(next.to_owned()) && reach == Reach::Linked {
                todo.extend(self.normal.get(next).into_iter().flatten().map(String::as_str));
            }
        }
        seen.iter().map(|id| self.name(id).to_owned()).collect()
    }
}

/// Every broken rule, as a line naming the crate, what it reaches and the rule.
fn violations(metadata: &Value) -> anyhow::Result<Vec<String>> {
    let graph = graph(metadata)?;
    let mut broken = Vec::new();
    for rule in RULES {
        let Some(id) = graph.id(rule.krate) else {
            broken.push(format!("{}: not in the workspace (ARCHITECTURE.md names it)", rule.krate));
            continue;
        };
        let reached = graph.reached(id, rule.reach);
        let bad: Vec<&String> = reached
            .iter()
            .filter(|name| match &rule.forbidden {
                Forbidden::Crates(crates) => crates.contains(&name.as_str()),
                Forbidden::AllBut(allowed) => !allowed.contains(&name.as_str()),
            })
            .collect();
        if !bad.is_empty() {
            let how = if rule.reach == Reach::Direct { "depends on" } else { "links" };
            broken.push(format!("{} {how} {}: {}", rule.krate, bad.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "), rule.why));
        }
    }
    // Nothing uses the CLI.
    if let Some(cli) = graph.id("kiln-cli") {
        for user in graph.users.get(cli).into_iter().flatten() {
            broken.push(format!("{} depends on kiln-cli: nothing uses the CLI", graph.name(user)));
        }
    }
    Ok(broken)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A dependency and its kind (`None`: normal, else `"dev"` or `"build"`).
    type Dep<'a> = (&'a str, Option<&'a str>);
    /// A crate and what its manifest names.
    type Crate<'a> = (&'a str, &'a [Dep<'a>]);

    /// A workspace as `cargo metadata` describes it.
    fn metadata(crates: &[Crate]) -> Value {
        let packages: Vec<Value> = crates.iter().map(|(name, _)| json!({ "id": format!("{name} 0.1.0"), "name": name })).collect();
        let nodes: Vec<Value> = crates
            .iter()
            .map(|(name, deps)| {
                let deps: Vec<Value> = deps.iter().map(|(dep, kind)| json!({ "pkg": format!("{dep} 0.1.0"), "dep_kinds": [{ "kind": kind }] })).collect();
                json!({ "id": format!("{name} 0.1.0"), "deps": deps })
            })
            .collect();
        let members: Vec<Value> = crates.iter().map(|(name, _)| json!(format!("{name} 0.1.0"))).collect();
        json!({ "packages": packages, "resolve": { "nodes": nodes }, "workspace_members": members })
    }

    const GOOD: &[Crate] = &[
        ("kiln-api", &[("serde", None), ("serde_json", None), ("thiserror", None), ("expect-test", Some("dev"))]),
        ("kiln-protocol", &[("serde", None), ("serde_json", None)]),
        ("kiln", &[("kiln-api", None), ("kiln-protocol", None), ("ureq", None), ("kiln-server", Some("dev"))]),
        ("kiln-server", &[("kiln-api", None), ("axum", None), ("sqlx", None), ("kiln", Some("dev"))]),
        ("kiln-componentize", &[("kiln-api", None), ("kiln-protocol", None), ("syn", None)]),
        ("kiln-kernel", &[("kiln-protocol", None), ("evcxr", None)]),
        ("kiln-cli", &[("kiln", None), ("kiln-server", None), ("kiln-componentize", None)]),
        ("evcxr", &[("syn", None)]),
        ("ureq", &[("http", None)]),
        ("axum", &[("hyper", None), ("http", None)]),
        ("serde", &[]),
        ("serde_json", &[]),
        ("thiserror", &[]),
        ("expect-test", &[]),
        ("syn", &[]),
        ("sqlx", &[]),
        ("http", &[]),
        ("hyper", &[]),
    ];

    #[test]
    fn the_rules_hold_for_a_workspace_that_keeps_them() {
        assert_eq!(violations(&metadata(GOOD)).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases: &[(&str, Dep, &[&str])] = &[
            (
                "kiln-api",
                ("ureq", None),
                &[
                    "kiln-api depends on ureq: kiln-api does no IO: wire types only",
                    "kiln-api links http, ureq: kiln-api needs no HTTP or SQL crate",
                    // It reaches componentize through kiln-api.
                    "kiln-componentize links http, ureq: componentize knows no HTTP or SQL",
                ],
            ),
            (
                "kiln-kernel",
                ("kiln", None),
                &["kiln-kernel links http, kiln, ureq: the kernel knows no HTTP or SQL (it shares only kiln-protocol with the SDK)"],
            ),
            ("kiln-componentize", ("axum", None), &["kiln-componentize links axum, http, hyper: componentize knows no HTTP or SQL"]),
            ("kiln-server", ("kiln", None), &["kiln-server depends on kiln: the server does not depend on the SDK"]),
            ("kiln", ("kiln-cli", Some("dev")), &["kiln depends on kiln-cli: nothing uses the CLI"]),
            ("evcxr", ("ureq", None), &["kiln-kernel links http, ureq: the kernel knows no HTTP or SQL (it shares only kiln-protocol with the SDK)"]),
        ];
        for (krate, added, expected) in cases {
            let mut crates: Vec<(&str, Vec<Dep>)> = GOOD.iter().map(|(n, d)| (*n, d.to_vec())).collect();
            crates.iter_mut().find(|(n, _)| n == krate).expect(krate).1.push(*added);
            let borrowed: Vec<Crate> = crates.iter().map(|(n, d)| (*n, d.as_slice())).collect();
            assert_eq!(violations(&metadata(&borrowed)).unwrap(), *expected, "{krate} + {added:?}");
        }
    }

    #[test]
    fn this_workspace_keeps_the_rules() {
        // The real graph, as `cargo xtask test` checks it before the suites.
        check().unwrap();
    }
}
