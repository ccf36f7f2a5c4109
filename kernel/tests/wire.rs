//! Exact message sequences on the wire: busy/idle order, parent headers, counts, errors,
//! aborts, interrupt, comms, stdin and bad input.

mod support;

use std::time::{Duration, Instant};

use expect_test::{Expect, expect};
use jupyter_protocol::JupyterMessage;
use serde_json::json;
use support::{Kernel, content, render, render_one};

/// Runs each cell in order on one kernel and snapshots its iopub sequence and reply.
async fn check_cells(kernel: &mut Kernel, cases: &[(&str, Expect)]) {
    for (code, want) in cases {
        let (iopub, reply) = kernel.execute(code).await;
        for msg in iopub.iter().chain([&reply]) {
            assert_eq!(msg.header.session.len(), 36, "kernel session id");
        }
        want.assert_eq(&format!("{}\n{}", render(&iopub), render_one(&reply)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_sequences_counts_and_errors() {
    let mut k = Kernel::start().await;
    // kernel_info must not wait for evcxr to warm up (that takes seconds).
    let req = k.send_shell(k.request("kernel_info_request", json!({}))).await;
    let reply = k.shell_reply().await;
    let ready = k.started.elapsed();
    assert!(ready < Duration::from_secs(2), "kernel_info took {ready:?}");
    let info = content(&reply);
    assert_eq!(info["protocol_version"], "5.3");
    assert_eq!(info["language_info"]["name"], "rust");
    assert_eq!(info["language_info"]["pygments_lexer"], "rust");
    assert_eq!(info["debugger"], false);
    assert_eq!(reply.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
    expect![[r#"
        status busy
        status idle"#]]
    .assert_eq(&render(&k.iopub_for(&req).await));

    check_cells(
        &mut k,
        &[
            (
                "let x = 40;",
                expect![[r#"
                    status busy
                    execute_input [1] "let x = 40;"
                    status idle
                    execute_reply ok [1]"#]],
            ),
            (
                "x + 2",
                expect![[r#"
                    status busy
                    execute_input [2] "x + 2"
                    execute_result [2] {"text/plain":"42"}
                    status idle
                    execute_reply ok [2]"#]],
            ),
            (
                "println!(\"hello\");\nstd::thread::sleep(std::time::Duration::from_millis(200));\neprintln!(\"oops\");",
                expect![[r#"
                    status busy
                    execute_input [3] "println!(\"hello\");\nstd::thread::sleep(std::time::Duration::from_millis(200));\neprintln!(\"oops\");"
                    stream stdout "hello\n"
                    stream stderr "oops\n"
                    status idle
                    execute_reply ok [3]"#]],
            ),
            (
                "let s: String = 5;\nlet t: u8 = \"no\";",
                expect![[r#"
                    status busy
                    execute_input [4] "let s: String = 5;\nlet t: u8 = \"no\";"
                    error CompilationError: mismatched types
                    status idle
                    execute_reply error [4] CompilationError"#]],
            ),
            (
                "panic!(\"boom\")",
                expect![[r#"
                    status busy
                    execute_input [5] "panic!(\"boom\")"
                    error Panic: boom
                    status idle
                    execute_reply error [5] Panic"#]],
            ),
            (
                "x",
                expect![[r#"
                    status busy
                    execute_input [6] "x"
                    execute_result [6] {"text/plain":"40"}
                    status idle
                    execute_reply ok [6]"#]],
            ),
            (
                "for i in 0..3 { print!(\"{i} \"); }\nprintln!();\nprintln!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT\");",
                expect![[r#"
                    status busy
                    execute_input [7] "for i in 0..3 { print!(\"{i} \"); }\nprintln!();\nprintln!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT\");"
                    stream stdout "0 1 2 \n"
                    execute_result [7] {"text/html":"<b>bold</b>","text/plain":"<text/html>"}
                    status idle
                    execute_reply ok [7]"#]],
            ),
        ],
    )
    .await;

    // Both diagnostics of a failed cell are in its one error, located by the cell's lines.
    let (iopub, reply) = k.execute("let a: String = 5;\nlet b: u8 = \"no\";").await;
    let errors: Vec<_> = iopub.iter().filter(|m| m.header.msg_type == "error").collect();
    assert_eq!(errors.len(), 1);
    let traceback = content(&reply)["traceback"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect::<Vec<_>>().join("\n");
    assert!(traceback.contains("--> cell:1:17") && traceback.contains("--> cell:2:13"), "{traceback}");

    // silent: no iopub output and no count; store_history=false: no count either.
    let silent = k.request(
        "execute_request",
        json!({ "code": "println!(\"quiet\"); x", "silent": true, "store_history": true, "user_expressions": {}, "allow_stdin": false }),
    );
    let (iopub, reply) = k.run(silent).await;
    expect![[r#"
        status busy
        status idle
        execute_reply ok [8]"#]]
    .assert_eq(&format!("{}\n{}", render(&iopub), render_one(&reply)));
    let nohist = k.request(
        "execute_request",
        json!({ "code": "x * 2", "silent": false, "store_history": false, "user_expressions": { "double": "x * 2", "bad": "nope" }, "allow_stdin": false }),
    );
    let (iopub, reply) = k.run(nohist).await;
    expect![[r#"
        status busy
        execute_input [8] "x * 2"
        execute_result [8] {"text/plain":"80"}
        status idle
        execute_reply ok [8]"#]]
    .assert_eq(&format!("{}\n{}", render(&iopub), render_one(&reply)));
    let ue = &content(&reply)["user_expressions"];
    assert_eq!(ue["double"]["status"], "ok");
    assert_eq!(ue["double"]["data"]["text/plain"], "80");
    assert_eq!(ue["bad"]["status"], "error");

    // history: only stored executions, in order.
    let req = k.send_shell(k.request("history_request", json!({ "hist_access_type": "tail", "n": 2, "output": false, "raw": true }))).await;
    let reply = k.shell_reply().await;
    assert_eq!(reply.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
    assert_eq!(content(&reply)["history"][1], json!([1, 8, "let a: String = 5;\nlet b: u8 = \"no\";"]), "failed cells are in the history too");
    assert_eq!(content(&reply)["history"].as_array().unwrap().len(), 2);
    k.iopub_for(&req).await;
}

/// Every byte a cell writes is published under that cell: a partial line while it runs and
/// the rest before its idle; each display it prints is an output of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_belongs_to_the_cell_that_wrote_it() {
    let mut k = Kernel::start().await;
    let html = |body: &str| format!("println!(\"EVCXR_BEGIN_CONTENT text/html\\n{body}\\nEVCXR_END_CONTENT\");");
    let plain = |body: &str| format!("println!(\"EVCXR_BEGIN_CONTENT text/plain\\n{body}\\nEVCXR_END_CONTENT\");");
    let two_charts = format!("{}\n{}\n{}\nprintln!(\"done\");", html("<b>one</b>"), plain("one"), html("<b>two</b>"));
    let last_is_the_value = format!("{}\n{}", html("<i>first</i>"), html("<i>second</i>"));
    check_cells(
        &mut k,
        &[
            (
                "print!(\"abc\");",
                expect![[r#"
                    status busy
                    execute_input [1] "print!(\"abc\");"
                    stream stdout "abc"
                    status idle
                    execute_reply ok [1]"#]],
            ),
            (
                "println!(\"next\");",
                expect![[r#"
                    status busy
                    execute_input [2] "println!(\"next\");"
                    stream stdout "next\n"
                    status idle
                    execute_reply ok [2]"#]],
            ),
            (
                // The flusher runs every 50 ms: a second apart, the two halves are two messages.
                "print!(\"tick\");\nstd::thread::sleep(std::time::Duration::from_millis(1000));\nprint!(\" tock\");",
                expect![[r#"
                    status busy
                    execute_input [3] "print!(\"tick\");\nstd::thread::sleep(std::time::Duration::from_millis(1000));\nprint!(\" tock\");"
                    stream stdout "tick"
                    stream stdout " tock"
                    status idle
                    execute_reply ok [3]"#]],
            ),
            (
                "print!(\"almost\");\npanic!(\"boom\");",
                expect![[r#"
                    status busy
                    execute_input [4] "print!(\"almost\");\npanic!(\"boom\");"
                    stream stdout "almost"
                    error Panic: boom
                    status idle
                    execute_reply error [4] Panic"#]],
            ),
            (
                &two_charts,
                expect![[r#"
                    status busy
                    execute_input [5] "println!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>one</b>\\nEVCXR_END_CONTENT\");\nprintln!(\"EVCXR_BEGIN_CONTENT text/plain\\none\\nEVCXR_END_CONTENT\");\nprintln!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>two</b>\\nEVCXR_END_CONTENT\");\nprintln!(\"done\");"
                    display_data ["text/html", "text/plain"]
                    display_data ["text/html", "text/plain"]
                    stream stdout "done\n"
                    status idle
                    execute_reply ok [5]"#]],
            ),
            (
                &last_is_the_value,
                expect![[r#"
                    status busy
                    execute_input [6] "println!(\"EVCXR_BEGIN_CONTENT text/html\\n<i>first</i>\\nEVCXR_END_CONTENT\");\nprintln!(\"EVCXR_BEGIN_CONTENT text/html\\n<i>second</i>\\nEVCXR_END_CONTENT\");"
                    display_data ["text/html", "text/plain"]
                    execute_result [6] {"text/html":"<i>second</i>","text/plain":"<text/html>"}
                    status idle
                    execute_reply ok [6]"#]],
            ),
        ],
    )
    .await;
    // The displays carry their own content, in order.
    let (iopub, _) = k.execute(&two_charts).await;
    let shown: Vec<String> = iopub.iter().filter(|m| m.header.msg_type == "display_data").map(|m| content(m)["data"].to_string()).collect();
    assert_eq!(shown, [r#"{"text/html":"<b>one</b>","text/plain":"one"}"#, r#"{"text/html":"<b>two</b>","text/plain":"<text/html>"}"#]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_requests() {
    let mut k = Kernel::start().await;
    k.execute("let numbers = vec![1u8, 2, 3];").await;
    let cases = [(json!({ "code": "fn foo(" }), "incomplete"), (json!({ "code": "let = ;" }), "invalid"), (json!({ "code": "6*7" }), "complete")];
    for (req, want) in cases {
        let req = k.send_shell(k.request("is_complete_request", req)).await;
        let reply = k.shell_reply().await;
        assert_eq!(content(&reply)["status"], want, "{}", content(&req));
        k.iopub_for(&req).await;
    }

    // complete: code-point cursor positions, even after a multi-byte character.
    let code = "let é = 1; std::collections::HashM";
    let req = k.send_shell(k.request("complete_request", json!({ "code": code, "cursor_pos": code.chars().count() }))).await;
    let reply = k.shell_reply().await;
    let c = content(&reply);
    assert_eq!(c["status"], "ok");
    assert!(c["matches"].as_array().unwrap().contains(&json!("HashMap")), "{c}");
    assert_eq!(c["cursor_end"], code.chars().count());
    assert_eq!(c["cursor_start"], code.chars().count() - "HashM".len());
    expect![[r#"
        status busy
        status idle"#]]
    .assert_eq(&render(&k.iopub_for(&req).await));

    // A value's methods, without the display method the kernel gives every value
    // (`result_display`); nor are its hidden items offered.
    for (code, offered) in [("numbers.", Some("len")), ("__kiln", None)] {
        let req = k.send_shell(k.request("complete_request", json!({ "code": code, "cursor_pos": code.chars().count() }))).await;
        let c = content(&k.shell_reply().await);
        let matches: Vec<&str> = c["matches"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
        assert!(offered.is_none_or(|m| matches.contains(&m)), "{code}: {matches:?}");
        assert!(!matches.iter().any(|m| m.starts_with("evcxr_display") || m.starts_with("__kiln")), "{code}: {matches:?}");
        k.iopub_for(&req).await;
    }

    let code = "numbers.len()";
    let req = k.send_shell(k.request("inspect_request", json!({ "code": code, "cursor_pos": 10, "detail_level": 0 }))).await;
    let reply = k.shell_reply().await;
    let c = content(&reply);
    assert_eq!(c["status"], "ok");
    assert_eq!(c["found"], true, "{c}");
    assert!(c["data"]["text/plain"].as_str().unwrap().contains("len"), "{c}");
    k.iopub_for(&req).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_on_error_aborts_queued_cells() {
    let mut k = Kernel::start().await;
    let first = k.execute_request("let y: u8 = \"not a number\";");
    let second = k.execute_request("println!(\"never\");");
    let third = k.execute_request("println!(\"never either\");");
    for msg in [&first, &second, &third] {
        k.shell.send(msg.clone()).await.unwrap();
    }
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(k.shell_reply().await);
    }
    let rendered: Vec<String> = replies
        .iter()
        .map(|r| {
            format!(
                "{} for #{}",
                render_one(r),
                [&first, &second, &third].iter().position(|m| m.header.msg_id == r.parent_header.as_ref().unwrap().msg_id).unwrap() + 1
            )
        })
        .collect();
    expect![[r#"
        execute_reply error [1] CompilationError for #1
        execute_reply aborted [1] for #2
        execute_reply aborted [1] for #3"#]]
    .assert_eq(&rendered.join("\n"));
    for msg in [&second, &third] {
        expect![[r#"
            status busy
            status idle"#]]
        .assert_eq(&render(&k.iopub_for(msg).await));
    }
    // The kernel carries on: the next cell runs and counts on.
    let (_, reply) = k.execute("1 + 1").await;
    assert_eq!(render_one(&reply), "execute_reply ok [2]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_stops_a_cell_and_variables_come_back() {
    let mut k = Kernel::start().await;
    k.execute("let kept = vec![1, 2, 3];").await;
    k.execute("let mut total = 0u64; for v in &kept { total += *v as u64; }").await;

    let req = k.send_shell(k.execute_request("println!(\"started\");\nstd::thread::sleep(std::time::Duration::from_secs(60));")).await;
    // Wait until the cell runs (compiled and started: interrupting a compile keeps the
    // runtime alive, which another test covers), then interrupt.
    loop {
        let msg = k.iopub_next().await;
        if msg.header.msg_type == "stream" && content(&msg)["text"].as_str().unwrap_or("").contains("started") {
            break;
        }
    }
    let sent = Instant::now();
    let int = k.send_control(k.request("interrupt_request", json!({}))).await;
    let int_reply = k.control_reply().await;
    assert_eq!(content(&int_reply)["status"], "ok");
    assert_eq!(int_reply.parent_header.as_ref().unwrap().msg_id, int.header.msg_id);
    let reply = k.shell_reply().await;
    let stopped = sent.elapsed();
    assert_eq!(reply.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
    assert_eq!(content(&reply)["ename"], "Interrupted");
    assert!(stopped < Duration::from_secs(2), "interrupt took {stopped:?}");
    eprintln!("interrupt → execute_reply: {stopped:?}");

    // The next cell sees the variables again and is told how.
    let (iopub, reply) = k.execute("total + kept.len() as u64").await;
    let text = render(&iopub);
    assert!(text.contains("restored: kept, total"), "{text}");
    assert!(text.contains(r#"execute_result [4] {"text/plain":"9"}"#), "{text}");
    assert_eq!(content(&reply)["status"], "ok");

    // Interrupting a cell while it compiles stops the compiler; the runtime and its
    // variables stay (no restore needed).
    // The constant takes rustc minutes to evaluate, so the interrupt lands while it compiles
    // however fast the machine (and the cell cannot end on its own in time).
    let spin = "#[allow(long_running_const_eval)]\nconst SPIN: u64 = { let mut i = 0u64; let mut s = 0u64; \
                while i < 200_000_000 { s = s.wrapping_add(i ^ s); i += 1; } s };\nkept.len() + SPIN as usize";
    // At once: the kernel waits for the compiler (or the runtime, whichever starts first).
    let (req, ename) = interrupted_at_its_input(&mut k, spin).await;
    assert_eq!(ename, "Interrupted", "the interrupt must have stopped the cell");
    let iopub = render(&k.iopub_for(&req).await);
    assert!(!iopub.contains("restored"), "{iopub}");
    let (iopub, _) = k.execute("kept.len()").await;
    let text = render(&iopub);
    assert!(text.contains(r#"{"text/plain":"3"}"#) && !text.contains("restored"), "{text}");

    // A cell is interruptible from its `busy` on, before its own build: a `:fmt` cell first
    // makes the kernel rebuild its hidden display module, and an interrupt sent then stops
    // the cell (it would otherwise sleep its minute and succeed).
    let (_, ename) = interrupted_at_its_input(&mut k, ":fmt {:?}\nstd::thread::sleep(std::time::Duration::from_secs(60));").await;
    assert_eq!(ename, "Interrupted", "an interrupt before the cell's own build must stop it");
}

/// Sends `code`, interrupts it as soon as its `execute_input` shows, and returns the request
/// with its reply's `ename` (the reply checked to be the request's).
async fn interrupted_at_its_input(k: &mut Kernel, code: &str) -> (JupyterMessage, serde_json::Value) {
    let req = k.send_shell(k.execute_request(code)).await;
    loop {
        if k.iopub_next().await.header.msg_type == "execute_input" {
            break;
        }
    }
    k.send_control(k.request("interrupt_request", json!({}))).await;
    k.control_reply().await;
    let reply = k.shell_reply().await;
    assert_eq!(reply.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
    let ename = content(&reply)["ename"].clone();
    (req, ename)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_are_cell_errors_and_the_kernel_lives() {
    let mut k = Kernel::start().await;
    k.execute("let survivor = String::from(\"still here\");").await;
    let crashes = [
        ("std::process::exit(3);", "RuntimeCrash"),
        ("unsafe { std::ptr::null_mut::<u64>().write_volatile(7); }", "RuntimeCrash"),
        ("let v: Vec<u8> = Vec::new(); v[10]", "Panic"),
        // evcxr itself calls this a success; the cell's new variables are gone all the same.
        ("let lost = 1;\nlet r: Result<(), String> = Err(\"boom\".into());\nr?;", "Error"),
    ];
    for (code, ename) in crashes {
        let (iopub, reply) = k.execute(code).await;
        assert_eq!(content(&reply)["ename"], ename, "{code}: {}", render(&iopub));
        assert_eq!(iopub.iter().filter(|m| m.header.msg_type == "error").count(), 1);
        let (iopub, _) = k.execute("survivor.clone()").await;
        assert!(render(&iopub).contains(r#"{"text/plain":"\"still here\""}"#), "after {code}: {}", render(&iopub));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_round_trip() {
    let mut k = Kernel::start().await;
    let req = k.request(
        "execute_request",
        json!({ "code": ":dep evcxr_input = \"1\"\nlet name = evcxr_input::get_string(\"name? \");\nprintln!(\"hi {name}\");",
                "silent": false, "store_history": true, "user_expressions": {}, "allow_stdin": true }),
    );
    let req = k.send_shell(req).await;
    let input_request = tokio::time::timeout(support::TIMEOUT, k.stdin.read()).await.unwrap().unwrap();
    assert_eq!(input_request.header.msg_type, "input_request");
    assert_eq!(content(&input_request)["prompt"], "name? ");
    assert_eq!(content(&input_request)["password"], false);
    assert_eq!(input_request.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
    let mut answer = k.request("input_reply", json!({ "value": "Ada" }));
    answer.parent_header = Some(input_request.header.clone());
    k.stdin.send(answer).await.unwrap();
    let reply = k.shell_reply().await;
    assert_eq!(content(&reply)["status"], "ok");
    let text = render(&k.iopub_for(&req).await);
    assert!(text.contains(r#"stream stdout "hi Ada\n""#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comms_answer_while_a_cell_runs() {
    let mut k = Kernel::start().await;
    let mut tagged = k.execute_request("let rows = 3usize;");
    tagged.metadata = json!({ "cellId": "cell-a", "tags": ["data"] });
    k.run(tagged).await;
    k.execute("// kiln: train\nlet model = rows * 2;").await;

    // Unknown targets are closed at once.
    let req = k.send_shell(k.request("comm_open", json!({ "comm_id": "c0", "target_name": "nope", "data": {} }))).await;
    expect![[r#"
        status busy
        comm_close {"comm_id":"c0","data":{}}
        status idle"#]]
    .assert_eq(&render(&k.iopub_for(&req).await));

    let req = k.send_shell(k.request("comm_open", json!({ "comm_id": "c1", "target_name": "kiln", "data": {} }))).await;
    let opened = render(&k.iopub_for(&req).await);
    assert!(opened.contains(r#""event":"ready""#), "{opened}");

    // A long cell runs; the comm still answers right away.
    let running = k.send_shell(k.execute_request("std::thread::sleep(std::time::Duration::from_secs(8));")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let req = k.send_shell(k.request("comm_msg", json!({ "comm_id": "c1", "data": { "request": "cells" } }))).await;
    let msgs = k.iopub_for(&req).await;
    assert!(asked.elapsed() < Duration::from_secs(2), "comm answer waited {:?}", asked.elapsed());
    let answer = msgs.iter().find(|m| m.header.msg_type == "comm_msg").expect("comm answer");
    let cells = content(answer)["data"]["cells"].clone();
    let summary: Vec<String> =
        cells.as_array().unwrap().iter().map(|c| format!("{} {} {} {}", c["cell_id"], c["tags"], c["outcome"], c["variables"])).collect();
    expect![[r#"
        "cell-a" ["data"] "ok" {"rows":"usize"}
        "execution-2" ["train"] "ok" {"model":"usize"}"#]]
    .assert_eq(&summary.join("\n"));

    let req = k.send_shell(k.request("comm_info_request", json!({ "target_name": "kiln" }))).await;
    let reply = k.shell_reply().await;
    assert_eq!(content(&reply)["comms"], json!({ "c1": { "target_name": "kiln" } }));
    k.iopub_for(&req).await;
    let _ = k.shell_reply().await; // the sleeping cell
    k.iopub_for(&running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_never_fatal() {
    use zeromq::{SocketSend, ZmqMessage};
    let mut k = Kernel::start().await;

    // A wrong signature: answered with an error, not acted on.
    let forged = k.request("execute_request", json!({ "code": "println!(\"forged\")", "silent": false }));
    let header = serde_json::to_vec(&forged.header).unwrap();
    let frames: Vec<bytes::Bytes> = vec![
        b"<IDS|MSG>".to_vec().into(),
        b"0000000000000000000000000000000000000000000000000000000000000000".to_vec().into(),
        header.into(),
        b"{}".to_vec().into(),
        b"{}".to_vec().into(),
        serde_json::to_vec(&json!({ "code": "println!(\"forged\")" })).unwrap().into(),
    ];
    k.shell.socket.send(ZmqMessage::try_from(frames).unwrap()).await.unwrap();
    let reply = k.shell_reply().await;
    assert_eq!(content(&reply)["status"], "error");
    assert_eq!(content(&reply)["ename"], "BadMessage");
    assert_eq!(reply.header.msg_type, "execute_reply");

    // Frames with no delimiter: logged and dropped.
    k.shell.socket.send(ZmqMessage::from(b"garbage".to_vec())).await.unwrap();

    // Well-signed but malformed content for a known type.
    let bad = k.request("execute_request", json!({ "code": 5 }));
    k.send_shell(bad).await;
    let reply = k.shell_reply().await;
    assert_eq!(content(&reply)["ename"], "BadMessage");
    assert!(content(&reply)["evalue"].as_str().unwrap().contains("execute_request"), "{}", content(&reply));

    // An unknown request type.
    let req = k.send_shell(k.request("frobnicate_request", json!({}))).await;
    let reply = k.shell_reply().await;
    assert_eq!(reply.header.msg_type, "frobnicate_reply");
    assert_eq!(content(&reply)["ename"], "UnknownMessageType");
    k.iopub_for(&req).await;

    // And the kernel still works.
    let (iopub, _) = k.execute("6*7").await;
    assert!(render(&iopub).contains(r#"{"text/plain":"42"}"#));
}

/// The engine's debug line about the last cell that ran, from the kernel's log.
fn last_cell_ran(kernel: &Kernel) -> String {
    kernel.log().lines().rfind(|l| l.contains("cell ran")).unwrap_or_default().to_owned()
}

/// The phases evcxr reported for the last cell the engine ran, from the kernel's log.
fn last_phases(kernel: &Kernel) -> String {
    last_cell_ran(kernel).split("phases=").nth(1).unwrap_or_default().to_owned()
}

/// Runs each (cell, text its execute_result must contain, whether evcxr built it twice) on one
/// kernel. Cells with `Opaque` must fail.
async fn check_final_expressions(cases: &[(&str, Option<&str>, bool)]) {
    let mut k = Kernel::start_logged().await;
    for &(code, result, falls_back) in cases {
        let (iopub, reply) = k.execute(code).await;
        let text = render(&iopub);
        let failed = content(&reply)["status"] != "ok";
        assert_eq!(failed, code.contains("Opaque"), "{code}: {text}");
        match result {
            Some(want) => assert!(text.contains("execute_result") && text.contains(want), "{code}: want {want} in\n{text}"),
            None => assert!(!text.contains("execute_result"), "{code}: {text}"),
        }
        // The engine logs the phases of cells that ran.
        if !code.starts_with(':') && !failed {
            let phases = last_phases(&k);
            assert_eq!(phases.contains("Fallback"), falls_back, "{code}: phases {phases}");
        }
    }
}

/// How the last cell that ran was built ("replayed" without cargo, or "cargo"), from the log.
fn last_build(kernel: &Kernel) -> &'static str {
    let line = last_cell_ran(kernel);
    if line.contains("replayed") {
        "replayed"
    } else if line.contains("cargo") {
        "cargo"
    } else {
        "unknown"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_build_without_cargo_while_only_the_cell_changes() {
    let mut k = Kernel::start_logged().await;
    let sdk = format!(":dep kiln = {{ path = {:?} }}", support::sdk_path().display().to_string());
    // (cell, text its output must contain ("": no output at all), how it must be built; None:
    // not logged, the first cell or a failed one)
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("let x = 1;".into(), "", None),
        ("x + 1".into(), r#"{"text/plain":"2"}"#, Some("replayed")),
        ("let y = x + 1;\ny * 10".into(), r#"{"text/plain":"20"}"#, Some("replayed")),
        // Compiler errors come through a replayed build as through cargo: message and line.
        ("let z: u8 = 1;\nlet w: u8 = \"s\";".into(), "mismatched types", None),
        ("println!(\"{}\", y);".into(), r#"stream stdout "2\n""#, Some("replayed")),
        // A path dependency: cargo would see it edited, a replay would not, so cargo builds.
        (sdk, "", Some("cargo")),
        ("x + 3".into(), r#"{"text/plain":"4"}"#, Some("cargo")),
    ];
    for (code, want, build) in cases {
        let (iopub, reply) = k.execute(&code).await;
        let text = render(&iopub);
        if want.is_empty() {
            let outputs: Vec<&str> = text.lines().filter(|l| !l.starts_with("status ") && !l.starts_with("execute_input ")).collect();
            assert!(outputs.is_empty(), "{code}: want no output, got\n{text}");
        } else {
            assert!(text.contains(want), "{code}: want {want} in\n{text}");
        }
        match build {
            Some(build) => {
                assert_eq!(content(&reply)["status"], "ok", "{code}: {text}");
                assert_eq!(last_build(&k), build, "{code}");
            }
            None if code.contains("\"s\"") => {
                assert_eq!(content(&reply)["status"], "error", "{code}: {text}");
                assert!(text.contains("w: u8"), "the error names the cell's line: {text}");
            }
            None => assert_eq!(content(&reply)["status"], "ok", "{code}: {text}"),
        }
    }
}

/// The version of `name` that the lock file of the slot under `base` holds.
fn locked_version(base: &std::path::Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(base.join("slot-0/Cargo.lock")).ok()?;
    let lock: toml::Table = text.parse().ok()?;
    lock.get("package")?
        .as_array()?
        .iter()
        .find_map(|package| (package.get("name")?.as_str()? == name).then(|| package.get("version")?.as_str().map(str::to_owned))?)
}

/// After a restart, evcxr's fresh manifest makes cargo prune the notebook's dependencies from
/// the lock file; the kernel puts them back, so the notebook gets the versions it ran with
/// (and that the slot holds built), not whatever the registry has newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kernel_keeps_the_versions_its_slot_locked() {
    let base = tempfile::tempdir().expect("tempdir");
    let cell = |dep: &str| format!(":dep itoa = {dep:?}\nitoa::Buffer::new().format(42).to_owned()");
    {
        let mut k = Kernel::start_in(base.path(), &[]).await;
        let (iopub, reply) = k.execute(&cell("=1.0.1")).await;
        assert_eq!(content(&reply)["status"], "ok", "{}", render(&iopub));
    }
    assert_eq!(locked_version(base.path(), "itoa").as_deref(), Some("1.0.1"));
    // The same notebook, now asking for any 1.x: newer ones exist, the lock keeps 1.0.1.
    {
        let mut k = Kernel::start_in(base.path(), &[]).await;
        let (iopub, reply) = k.execute(&cell("1")).await;
        let text = render(&iopub);
        assert_eq!(content(&reply)["status"], "ok", "{text}");
        assert!(text.contains(r#"{"text/plain":"\"42\""}"#), "{text}");
    }
    assert_eq!(locked_version(base.path(), "itoa").as_deref(), Some("1.0.1"));
}

/// evcxr checks each new `:dep` on a throwaway manifest over the slot's, and cargo prunes the
/// lock for it; the kernel puts the lock back, so adding a dependency leaves the versions
/// already locked alone, as `cargo add` would. (Without the shared dependency library: its
/// manifest repeats the notebook's requirements, which would pin `itoa` by themselves.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_dependency_keeps_the_versions_already_locked() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut k = Kernel::start_in(base.path(), &[("KILN_SHARED_DEPS", "0")]).await;
    let cases = [
        (":dep itoa = \"=1.0.1\"", "1.0.1"),
        // Any 1.x now: 1.0.1 is locked and accepted, so it stays.
        (":dep itoa = \"1\"", "1.0.1"),
        // A new dependency: evcxr's check of it would have dropped itoa from the lock.
        (":dep ryu = \"1\"\nitoa::Buffer::new().format(1).len() + ryu::Buffer::new().format(1.5).len()", "1.0.1"),
    ];
    for (code, itoa) in cases {
        let (iopub, reply) = k.execute(code).await;
        assert_eq!(content(&reply)["status"], "ok", "{code}: {}", render(&iopub));
        assert_eq!(locked_version(base.path(), "itoa").as_deref(), Some(itoa), "after {code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_expressions_build_once_and_print_as_evcxr_does() {
    check_final_expressions(&[
        ("let x = 1;\nlet s = String::from(\"a\");", None, false),
        ("x + 1", Some(r#"{"text/plain":"2"}"#), false),
        // A bare variable, not declared `mut`.
        ("x", Some(r#"{"text/plain":"1"}"#), false),
        ("s", Some(r#"{"text/plain":"\"a\""}"#), false),
        ("&s[..]", Some(r#"{"text/plain":"\"a\""}"#), false),
        ("(&x, 1)", Some(r#"{"text/plain":"(1, 1)"}"#), false),
        ("()", Some(r#"{"text/plain":"()"}"#), false),
        // No Debug: the cell fails, as in evcxr.
        ("struct Opaque;\nOpaque", None, true),
        // `:fmt` and `:types` are evcxr's to honour: its fallback shows every value from then on.
        (":fmt {:#?}", Some("Output format"), false),
        ("vec![x]", Some(r#"{"text/plain":"[\n    1,\n]"}"#), true),
        (":types", Some("Types: true"), false),
        ("x + 1", Some(r#"{"text/plain":": i32 = 2"}"#), true),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_expressions_beside_the_sdk_display() {
    let sdk = format!(":dep kiln = {{ path = {:?} }}\nuse kiln::prelude::*;", support::sdk_path().display().to_string());
    check_final_expressions(&[
        ("let x = 1;", None, false),
        ("x", Some(r#"{"text/plain":"1"}"#), false),
        // From the cell that names the SDK on, its display wins and nothing is ambiguous.
        (&format!("{sdk}\nTable::new([\"a\"]).row([1])"), Some("kiln-table"), false),
        ("let t = Table::new([\"b\"]).row([2]);", None, false),
        ("t", Some("kiln-table"), false),
        ("x + 2", Some(r#"{"text/plain":"3"}"#), false),
        // Borrows a local: method lookup ignores lifetimes, so the SDK's method is picked, its
        // `'static` bound fails and evcxr falls back; the value still shows.
        ("(&x, 1)", Some(r#"{"text/plain":"(1, 1)"}"#), true),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_output_from_the_sdk() {
    let mut k = Kernel::start().await;
    let sdk = support::sdk_path();
    let (iopub, reply) = k.execute(&format!(":dep kiln = {{ path = {:?} }}\nuse kiln::prelude::*;", sdk.display().to_string())).await;
    assert_eq!(content(&reply)["status"], "ok", "{}", render(&iopub));
    let code = r#"let first = show("first");
let second = show(MimeBundle::html("<i>second</i>", "second"));
first.update("first, updated");
let mut bar = Progress::new(3, "steps");
for _ in 0..3 { bar.inc(1); }
Table::new(["a", "b"]).row([1, 2])"#;
    let (iopub, _) = k.execute(code).await;
    let text = render(&iopub);
    expect![[r#"
        status busy
        execute_input [2] "let first = show(\"first\");\nlet second = show(MimeBundle::html(\"<i>second</i>\", \"second\"));\nfirst.update(\"first, updated\");\nlet mut bar = Progress::new(3, \"steps\");\nfor _ in 0..3 { bar.inc(1); }\nTable::new([\"a\", \"b\"]).row([1, 2])"
        display_data (with display_id) ["text/plain"]
        display_data (with display_id) ["text/html", "text/plain"]
        update_display_data (with display_id) ["text/plain"]
        display_data (with display_id) ["text/html", "text/plain"]
        update_display_data (with display_id) ["text/html", "text/plain"]
        execute_result [2] {"text/html":"<div class=\"kiln-table\"><small>shape: (1, 2)</small><table class=\"dataframe\"><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table></div>","text/plain":"shape: (1, 2)\n+---+---+\n| a | b |\n+---+---+\n| 1 | 2 |\n+---+---+"}
        status idle"#]]
    .assert_eq(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_idle_interrupt_and_shutdown() {
    let mut k = Kernel::start().await;
    // Heartbeat echoes while the kernel is busy warming up.
    let mut hb = jupyter_zmq_client::create_client_heartbeat_connection(&k.info).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), hb.single_heartbeat()).await.expect("heartbeat").unwrap();

    k.execute("let precious = 7;").await;
    // An interrupt while nothing runs must not cost the variables.
    k.send_control(k.request("interrupt_request", json!({}))).await;
    assert_eq!(content(&k.control_reply().await)["status"], "ok");
    let (iopub, _) = k.execute("precious").await;
    assert!(render(&iopub).contains(r#"{"text/plain":"7"}"#), "{}", render(&iopub));

    // kernel_info on control too.
    k.send_control(k.request("kernel_info_request", json!({}))).await;
    assert_eq!(content(&k.control_reply().await)["implementation"], "kiln");

    let req = k.send_control(k.request("shutdown_request", json!({ "restart": false }))).await;
    let reply = k.control_reply().await;
    assert_eq!(reply.header.msg_type, "shutdown_reply");
    assert_eq!(content(&reply), json!({ "status": "ok", "restart": false }));
    assert_eq!(reply.parent_header.as_ref().unwrap().msg_id, req.header.msg_id);
    let status = k.wait_exit(Duration::from_secs(10)).expect("kernel exits after shutdown");
    assert!(status.success(), "{status:?}");
}
