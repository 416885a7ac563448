//! The deployment files against the code they package: the container config
//! loads without problems, every agent has its own workspace volume in the
//! Deployment, every plugin the Dockerfile builds exists in `plugins/`, and
//! the image runs chela under an init that its runtime stage installs.
//! (The manifests' schemas are checked by `cargo xtask validate-deploy`.)
//!
//! Must not: run a container or a cluster; it checks files against the code.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_container_config_is_valid_and_each_agent_has_its_own_volume() {
    let text = read("deploy/chela.json5");
    let loaded = chela_core::config::load_str(&text, Some("deploy/chela.json5")).expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let env = chela_core::config::paths::Environment::default();
    let problems = chela_core::config::validate::validate(&loaded, &env);
    assert!(problems.is_empty(), "{problems:?}");
    let deployment = read("deploy/kubernetes/base/deployment.yaml");
    let pvcs = read("deploy/kubernetes/base/pvc.yaml");
    let roster = chela_core::roster::Roster::from_config(&loaded.config);
    let ids = roster.ids();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for id in ids {
        let workspace = format!("/workspaces/{id}");
        assert!(text.contains(&format!("workspace: \"{workspace}\"")), "{id}: workspace not under /workspaces");
        assert!(deployment.contains(&format!("mountPath: {workspace}")), "{id}: no volume mounted at {workspace}");
        let seeded = deployment.lines().find(|l| l.trim_start().starts_with("for agent in")).unwrap_or_default();
        assert!(seeded.split_whitespace().any(|w| w.trim_end_matches(';') == id), "init container seeds {id}");
        assert!(pvcs.contains(&format!("name: chela-workspace-{id}")), "{id}: no PVC");
        assert!(repo().join("examples/workspaces").join(&id).join("SOUL.md").exists(), "{id}: no persona to seed");
    }
}

#[test]
fn the_dockerfile_builds_plugins_that_exist() {
    let docker = read("Dockerfile");
    let packages: Vec<&str> = docker
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "-p" && w[1].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .map(|w| w[1])
        .collect();
    assert!(packages.contains(&"chela") && packages.len() > 10, "{packages:?}");
    for p in packages.iter().filter(|p| **p != "chela") {
        assert!(repo().join("plugins").join(p).join("Cargo.toml").exists(), "Dockerfile builds `{p}`: not in plugins/");
    }
    for line in docker.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let src = line.split_whitespace().nth(1).unwrap_or_default();
        if src != "." {
            assert!(repo().join(src).exists(), "Dockerfile copies `{src}`: not in the repo");
        }
    }
}

/// chela spawns child processes (`exec`): as PID 1 it would have to reap
/// them and handle signals itself, so the image runs it under tini.
#[test]
fn the_image_runs_chela_under_an_init() {
    let docker = read("Dockerfile");
    let runtime = docker.rsplit("\nFROM ").next().unwrap_or_default();
    let entrypoint =
        runtime.lines().find(|l| l.starts_with("ENTRYPOINT ")).expect("the runtime stage has an ENTRYPOINT");
    assert!(
        entrypoint.starts_with(r#"ENTRYPOINT ["/usr/bin/tini", "--", "chela"]"#),
        "chela is not started by tini: {entrypoint}"
    );
    let installs = runtime.lines().any(|l| l.contains("apt-get install") && l.split_whitespace().any(|w| w == "tini"));
    assert!(installs, "the runtime stage does not install tini");
}
