//! The `kiln` commands people read: tables and the lineage tree, snapshotted against a real
//! server (ids are replaced by their role so the snapshots are stable).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use expect_test::expect;
use kiln::api::{CreateModel, CreateModelVersion, RunInputs};

struct Server {
    child: std::process::Child,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("KILN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("kiln server listening on ").unwrap().to_owned();
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap().trim().to_owned();
    Server { child, url, token, _dir: dir }
}

/// What a command printed (stdout, then stderr) and, last, its exit code (the documented
/// 0 success, 1 failure, 2 usage), so every snapshot checks the code too.
fn kiln(server: &Server, args: &[&str], names: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).env("KILN_SERVER", &server.url).env("KILN_TOKEN", &server.token).output().unwrap();
    let mut text = String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
    text += &format!("exit {}\n", output.status.code().map_or_else(|| format!("{:?}", output.status), |c| c.to_string()));
    for (id, name) in names {
        text = text.replace(id, name).replace(&id[..8], &name[..8.min(name.len())]);
    }
    text
}

#[test]
fn tables_and_lineage() {
    let server = server();
    let client = kiln::Client::new(&server.url, Some(server.token.clone()));
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for (i, lr) in ["0.1", "0.01"].iter().enumerate() {
        let mut run = kiln::ActiveRun::start(client.clone(), "mnist", Some(&format!("lr-{lr}"))).unwrap();
        run.log_param("lr", lr).unwrap();
        run.log_metric("acc", 0.9 + i as f64 / 20.0, 10).unwrap();
        ids.push(run.id().to_owned());
        names.push((run.id().to_owned(), format!("<RUN{i}:::>")));
        run.end().unwrap();
    }
    let dataset = client
        .register_dataset_version(
            "digits",
            &kiln::api::RegisterDatasetVersion { fingerprint: "e".repeat(64), size: 1024, rows: Some(10), ..Default::default() },
        )
        .unwrap();
    client.add_run_inputs(&ids[1], &RunInputs { dataset_versions: vec![dataset.id], ..Default::default() }).unwrap();
    client.create_model(&CreateModel { name: "mnist".into(), ..Default::default() }).unwrap();
    client.create_model_version("mnist", &CreateModelVersion { source: "artifact:abc".into(), run_id: Some(ids[1].clone()), ..Default::default() }).unwrap();
    client.set_alias("mnist", "champion", 1).unwrap();
    let names: Vec<(&str, &str)> = names.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();

    expect![[r#"
        ┌──────────┬─────────┬──────────┬─────────┬──────────┐
        │ run      ┆ name    ┆ status   ┆ params  ┆ metrics  │
        ╞══════════╪═════════╪══════════╪═════════╪══════════╡
        │ <RUN1::: ┆ lr-0.01 ┆ FINISHED ┆ lr=0.01 ┆ acc=0.95 │
        │ <RUN0::: ┆ lr-0.1  ┆ FINISHED ┆ lr=0.1  ┆ acc=0.9  │
        └──────────┴─────────┴──────────┴─────────┴──────────┘
        exit 0
    "#]]
    .assert_eq(&kiln(&server, &["runs", "list", "--order-by", "metrics.acc DESC"], &names));
    expect![[r#"
        ┌─────────────┬───────────────────┬────────────────────┐
        │             ┆ lr-0.1 (<RUN0:::) ┆ lr-0.01 (<RUN1:::) │
        ╞═════════════╪═══════════════════╪════════════════════╡
        │ params.lr   ┆ 0.1               ┆ 0.01               │
        │ metrics.acc ┆ 0.9               ┆ 0.95               │
        └─────────────┴───────────────────┴────────────────────┘
        exit 0
    "#]]
    .assert_eq(&kiln(&server, &["runs", "compare", &ids[0], &ids[1]], &names));
    expect![[r#"
        ┌───────┬────────┬─────────────┐
        │ model ┆ latest ┆ aliases     │
        ╞═══════╪════════╪═════════════╡
        │ mnist ┆ v1     ┆ champion→v1 │
        └───────┴────────┴─────────────┘
        exit 0
    "#]]
    .assert_eq(&kiln(&server, &["models", "list"], &names));
    expect![[r#"
        model mnist@v1 (champion)
          source artifact:abc
          run <RUN1:::> "lr-0.01" FINISHED (external)
            param lr = 0.01
            metric acc = 0.95 (step 10)
            read dataset digits eeeeeeee (1024 bytes, 10 rows)
        exit 0
    "#]]
    .assert_eq(&kiln(&server, &["lineage", "mnist@champion"], &names));
    expect![[r#"
        error: invalid value 'mnist' for '<REFERENCE>': 'mnist' is not MODEL@VERSION (e.g. visual_recognition@3 or visual_recognition@champion)

        For more information, try '--help'.
        exit 2
    "#]]
    .assert_eq(&kiln(&server, &["lineage", "mnist"], &names));
    expect![[r#"
        kiln: fetching run nope: GET /runs/nope: HTTP 404: run 'nope' not found
        exit 1
    "#]]
    .assert_eq(&kiln(&server, &["runs", "show", "nope"], &names));
    // A token made by the CLI writes; it may not make tokens itself.
    let made = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["token", "create", "ci-bot"])
        .env("KILN_SERVER", &server.url)
        .env("KILN_TOKEN", &server.token)
        .output()
        .unwrap();
    assert!(made.status.success());
    let secret = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(secret.starts_with("kiln_") && secret.len() == 69, "{secret:?}");
    let bot = kiln::Client::new(&server.url, Some(secret.clone()));
    bot.create_experiment("from-ci").unwrap();
    let refused =
        Command::new(env!("CARGO_BIN_EXE_kiln")).args(["token", "create", "more"]).env("KILN_SERVER", &server.url).env("KILN_TOKEN", &secret).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    expect![[r#"
        kiln: POST /tokens: HTTP 403: token 'ci-bot' is not an admin token
    "#]]
    .assert_eq(&String::from_utf8(refused.stderr).unwrap());
}

#[test]
fn show_prints_the_step_graph_and_exits_1_on_problems() {
    let dir = tempfile::tempdir().unwrap();
    let cell = |tags: &[&str], source: &str| serde_json::json!({"cell_type": "code", "metadata": {"tags": tags}, "source": source, "outputs": [], "execution_count": null});
    let notebook = |cells: Vec<serde_json::Value>| {
        serde_json::json!({"nbformat": 4, "nbformat_minor": 4, "metadata": {"kernelspec": {"name": "kiln", "language": "rust"}}, "cells": cells}).to_string()
    };
    let good = dir.path().join("good.ipynb");
    std::fs::write(
        &good,
        notebook(vec![
            cell(&["data"], "let xs = vec![1.0f64];"),
            cell(&["train"], "let w = xs[0];"),
            cell(&["infer"], "fn infer(w: &f64, x: f64) -> f64 { w * x }"),
        ]),
    )
    .unwrap();
    let bad = dir.path().join("bad.ipynb");
    std::fs::write(&bad, notebook(vec![cell(&[], "let scale = 2.0;"), cell(&["data"], "let xs = vec![scale];")])).unwrap();
    let run = |path: &std::path::Path| {
        let handle = format!("show-{}", path.file_stem().unwrap().to_string_lossy());
        let output = Command::new(env!("CARGO_BIN_EXE_kiln")).arg("show").arg(path).args(["--handle", &handle]).output().unwrap();
        let text = String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
        // The step lines say how long they took.
        let text: Vec<&str> = text.lines().filter(|l| !l.starts_with('✓')).collect();
        (output.status.code(), text.join("\n").replace(&dir.path().display().to_string(), "DIR"))
    };
    let (code, text) = run(&good);
    assert_eq!(code, Some(0));
    expect![[r#"
        data       cells 0
        train      cells 1
        infer      cells 2

        data ──► train ──► infer
          data → train
            xs: Vec<f64> as json  (cell 0, line 1)
          train → infer
            w: f64 as json  (cell 1, line 1)
          served: fn infer(w: &f64, x: f64) -> f64  (cell 2, line 1)"#]]
    .assert_eq(&text);
    let (code, text) = run(&bad);
    assert_eq!(code, Some(1));
    expect![[r#"
        data       cells 1
        untagged   cells 0 (left out)

        error: cell 1, line 1: `scale` is defined only in untagged cell 0 (exploration is left out of components); tag that cell or move the definition
        error: notebook: no `fn infer(…)` in the cells tagged infer: the served component calls it
        kiln: DIR/bad.ipynb: 2 problem(s)"#]]
    .assert_eq(&text);
}

/// The extension asks about the notebook as it is in the editor: content on stdin, the file
/// on disk (saved before the edit) only says where the notebook lives.
#[test]
fn show_reads_unsaved_content_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cell = |id: &str, tags: &[&str], source: &str| serde_json::json!({"cell_type": "code", "id": id, "metadata": {"tags": tags}, "source": source, "outputs": [], "execution_count": null});
    let notebook = |cells: Vec<serde_json::Value>| {
        serde_json::json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "kiln", "language": "rust"}}, "cells": cells}).to_string()
    };
    let saved = notebook(vec![cell("a", &["data"], "let xs = vec![1.0f64];")]);
    let path = dir.path().join("edited.ipynb");
    std::fs::write(&path, &saved).unwrap();
    let unsaved = notebook(vec![cell("a", &[], "let scale = 2.0;"), cell("b", &["data"], "let xs = vec![1.0f64];\nlet ys = vec![scale];")]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("show")
        .arg(&path)
        .args(["--stdin", "--json", "--syntax-only"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(unsaved.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "problems exit 1: {}", String::from_utf8_lossy(&output.stderr));
    let analysis: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    expect![[r#"
        [
          {
            "cell": 1,
            "cell_id": "b",
            "line": 2,
            "message": "`scale` is defined only in untagged cell 0 (id a) (exploration is left out of components); tag that cell or move the definition"
          },
          {
            "cell": null,
            "cell_id": null,
            "line": 0,
            "message": "no `fn infer(…)` in the cells tagged infer: the served component calls it"
          }
        ]"#]]
    .assert_eq(&serde_json::to_string_pretty(&analysis["diagnostics"]).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), saved, "the saved notebook is left as it was");
}

/// What a failure says names the place once: each cause appears once on the line.
#[test]
fn failures_say_each_cause_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln")).args(["show", "/nonexistent/notebook.ipynb", "--syntax-only"]).output().unwrap();
    let text = String::from_utf8(output.stderr).unwrap();
    let text: Vec<&str> = text.lines().filter(|l| !l.starts_with('✗')).collect();
    expect![[r#"
        kiln: reading /nonexistent/notebook.ipynb: No such file or directory (os error 2)"#]]
    .assert_eq(&text.join("\n"));
}

#[test]
fn a_reader_that_goes_away_ends_a_listing_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let server = server();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["experiments", "list"])
        .env("KILN_SERVER", &server.url)
        .env("KILN_TOKEN", &server.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `kiln experiments list | head -0`: the read end closes before anything is printed.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.signal(), Some(13), "ended by SIGPIPE: {:?}", output.status);
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let server = server();
    let cases: &[(&[&str], i32)] = &[
        (&["runs", "list", "--experiment", "none-yet"], 0),
        (&["--help"], 0),
        // Failures: the store said no, or the input was wrong in a way only running can tell.
        (&["runs", "show", "nope"], 1),
        (&["models", "show", "no-such-model"], 1),
        (&["show", "/nonexistent/notebook.ipynb"], 1),
        // Usage: clap refused the command line.
        (&["frobnicate"], 2),
        (&["runs", "show"], 2),
        (&["runs", "list", "--no-such-flag"], 2),
        (&["lineage", "mnist"], 2),
        (&["lineage", "@3"], 2),
        // Well formed, but nothing is registered under it.
        (&["lineage", "mnist@3"], 1),
    ];
    for (args, code) in cases {
        let text = kiln(&server, args, &[]);
        assert!(text.ends_with(&format!("exit {code}\n")), "kiln {}: want exit {code}, got\n{text}", args.join(" "));
    }
}

/// `kiln componentize` asks the registry and the store before it builds anything: a run
/// that could not push or register fails in a moment, saying which and why, and leaves no
/// generated crate, image or code package behind.
#[test]
fn componentize_asks_the_registry_and_the_store_first() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let notebook = dir.path().join("petals.ipynb");
    std::fs::write(&notebook, r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}"#).unwrap();
    let work = dir.path().join("work");
    let cases: &[(&str, &[&str], &str, &str)] = &[
        ("registry down", &["--handle", "petals", "--registry", "127.0.0.1:1"], &server.url, &server.token),
        ("store down", &["--handle", "petals"], "http://127.0.0.1:1", "t"),
        ("token refused", &["--handle", "petals"], &server.url, "not-a-token"),
        ("handle not an image name", &["--handle", "Petals Two", "--registry", "127.0.0.1:1"], &server.url, &server.token),
    ];
    let mut said = String::new();
    for (case, args, url, token) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("componentize")
            .arg(&notebook)
            .args(*args)
            .arg("--work-dir")
            .arg(&work)
            .env("KILN_SERVER", url)
            .env("KILN_TOKEN", token)
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap().replace(&server.url, "STORE");
        // The step's time varies; what it says does not.
        let stderr: String =
            stderr.lines().map(|l| if l.starts_with('✗') { l.split(" after ").next().unwrap_or(l) } else { l }).map(|l| format!("{l}\n")).collect();
        said += &format!("{case}: exit {}\n{stderr}", output.status.code().unwrap_or(-1));
        assert!(!work.exists(), "{case}: nothing is generated");
    }
    assert!(server_packages(&server).is_empty(), "nothing is registered");
    // An empty KILN_SERVER names no store, as an unset one: nothing to ask.
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("componentize")
        .arg(&notebook)
        .args(["--handle", "petals", "--work-dir"])
        .arg(&work)
        .env("KILN_SERVER", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("connect") && !stderr.contains("store"), "{stderr}");
    expect![[r#"
        registry down: exit 1
        ✗ connect    failed
        kiln: the registry at 127.0.0.1:1 does not answer (Connection refused (os error 111)); nothing was built
        store down: exit 1
        ✗ connect    failed
        kiln: the store at http://127.0.0.1:1 does not answer (io: Connection refused (os error 111)); nothing was built
        token refused: exit 1
        ✗ connect    failed
        kiln: the store at STORE refused the token (HTTP 401: the bearer token is not known to this server); nothing was built
        handle not an image name: exit 1
        ✗ connect    failed
        kiln: `Petals Two` cannot be a handle: use lowercase letters, digits and single `.`, `_` or `-` between them (it names images and the model); nothing was built
    "#]]
    .assert_eq(&said);
}

fn server_packages(server: &Server) -> Vec<kiln::api::CodePackage> {
    kiln::Client::new(&server.url, Some(server.token.clone())).code_packages("").unwrap()
}
