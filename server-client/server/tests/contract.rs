//! The store contract: one suite, run on SQLite and on a real PostgreSQL, through the SDK
//! (and raw HTTP where the SDK would refuse the input before sending it).

mod support;

use kiln::api::{
    AttachArtifact, CreateModel, CreateModelVersion, CreateRun, CreateSchedule, ErrorCode, HistoryAxis, HistoryRequest, Lifecycle, LogBatch, Metric, ModelRef,
    Param, RunStatus, SearchRuns, Tag, UpdateRun,
};
use serde_json::json;
use support::{Backend, TestServer};

contract_tests!(
    experiments_are_unique_by_name,
    a_run_logs_params_metrics_and_tags,
    params_are_write_once_and_batches_all_or_nothing,
    a_finished_run_takes_metrics_and_a_deleted_one_nothing,
    search_filters_orders_and_pages,
    pages_stay_stable_while_runs_start_and_changes_are_polled,
    histories_are_down_sampled_keeping_the_ends_and_every_extreme,
    artifacts_are_content_addressed,
    writes_need_a_token,
    bad_input_names_the_field,
    the_sdk_batches_metrics_in_the_background,
    models_have_numbered_versions_and_moving_aliases,
    lineage_links_a_model_version_to_its_data_and_code,
    a_notebooks_code_packages_register_together,
    schedules_fire_their_workflow_and_record_how_it_ended,
    deployments_route_count_traffic_and_reach_lineage,
    deployment_changes_are_whole_checked_and_attributed,
);

fn code(error: &kiln::Error) -> (u16, ErrorCode) {
    match error {
        kiln::Error::Api { status, error, .. } => (*status, error.error_code),
        other => panic!("expected an API error, got {other}"),
    }
}

fn metric(key: &str, value: f64, step: i64) -> Metric {
    Metric { key: key.into(), value, timestamp: 1_700_000_000_000 + step, step }
}

fn new_run(client: &kiln::Client, experiment: &str, name: &str) -> String {
    client
        .create_run(&CreateRun {
            experiment: experiment.into(),
            name: Some(name.into()),
            source: kiln::api::RunSource::External,
            start_time: None,
            tags: vec![],
        })
        .expect("run created")
        .id
}

fn experiments_are_unique_by_name(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let created = client.create_experiment("mnist").unwrap();
    assert_eq!(code(&client.create_experiment("mnist").unwrap_err()), (400, ErrorCode::ResourceAlreadyExists));
    assert_eq!(client.experiment("mnist").unwrap(), created);
    assert_eq!(client.experiment(&created.id).unwrap(), created);
    assert_eq!(code(&client.experiment("nope").unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    // A run in a new experiment creates it.
    new_run(&client, "cifar", "r1");
    let names: Vec<String> = client.experiments().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["Default", "mnist", "cifar"], "experiment 0, 'Default', is where MLflow clients start");
}

fn a_run_logs_params_metrics_and_tags(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let id = new_run(&client, "mnist", "baseline");
    client
        .log_batch(
            &id,
            &LogBatch {
                params: vec![Param { key: "lr".into(), value: "0.01".into() }],
                metrics: vec![metric("loss", 0.9, 0), metric("loss", 0.5, 1), metric("loss", 0.7, 2), metric("acc", 0.8, 2)],
                tags: vec![Tag { key: "stage".into(), value: "dev".into() }],
            },
        )
        .unwrap();
    // Out of order: an earlier step arriving late does not become the latest value.
    client.log_batch(&id, &LogBatch { metrics: vec![metric("loss", 0.1, 1)], ..Default::default() }).unwrap();
    client.log_batch(&id, &LogBatch { tags: vec![Tag { key: "stage".into(), value: "prod".into() }], ..Default::default() }).unwrap();
    let view = client.run(&id).unwrap();
    assert_eq!(view.run.status, RunStatus::Running);
    assert_eq!(view.params, [Param { key: "lr".into(), value: "0.01".into() }]);
    let latest: Vec<(String, f64, i64)> = view.metrics.iter().map(|m| (m.key.clone(), m.value, m.step)).collect();
    assert_eq!(latest, [("acc".to_owned(), 0.8, 2), ("loss".to_owned(), 0.7, 2)]);
    assert_eq!(view.tags, [Tag { key: "stage".into(), value: "prod".into() }]);
    let history: Vec<(i64, f64)> = client.metric_history(&id, "loss").unwrap().points.iter().map(|p| (p.step, p.value)).collect();
    assert_eq!(history, [(0, 0.9), (1, 0.5), (1, 0.1), (2, 0.7)]);
    let ended = client.update_run(&id, &UpdateRun { status: Some(RunStatus::Finished), ..Default::default() }).unwrap();
    assert_eq!(ended.status, RunStatus::Finished);
    assert!(ended.end_time.is_some(), "a finished run has an end time");
}

fn params_are_write_once_and_batches_all_or_nothing(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let id = new_run(&client, "e", "r");
    let lr = |v: &str| Param { key: "lr".into(), value: v.into() };
    client.log_batch(&id, &LogBatch { params: vec![lr("0.1")], ..Default::default() }).unwrap();
    client.log_batch(&id, &LogBatch { params: vec![lr("0.1")], ..Default::default() }).expect("the same value again is fine");
    let refused = client
        .log_batch(&id, &LogBatch { params: vec![lr("0.2")], metrics: vec![metric("loss", 1.0, 0)], tags: vec![Tag { key: "t".into(), value: "v".into() }] })
        .unwrap_err();
    assert_eq!(code(&refused), (400, ErrorCode::InvalidParameterValue));
    assert_eq!(refused.api_error().unwrap().field.as_deref(), Some("params[0].value"));
    let view = client.run(&id).unwrap();
    assert_eq!(view.params, [lr("0.1")]);
    assert!(view.metrics.is_empty() && view.tags.is_empty(), "nothing of the refused batch was written: {view:?}");
    assert!(client.metric_history(&id, "loss").unwrap().points.is_empty());
}

fn a_finished_run_takes_metrics_and_a_deleted_one_nothing(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let id = new_run(&client, "e", "r");
    new_run(&client, "e", "kept");
    client.update_run(&id, &UpdateRun { status: Some(RunStatus::Failed), ..Default::default() }).unwrap();
    // Evaluation after training: a finished run takes metrics, params and tags, as on MLflow.
    let late = LogBatch {
        metrics: vec![metric("test_acc", 0.9, 0)],
        params: vec![Param { key: "eval_set".into(), value: "holdout".into() }],
        tags: vec![Tag { key: "note".into(), value: "oom".into() }],
    };
    client.log_batch(&id, &late).unwrap();
    assert_eq!(client.run(&id).unwrap().metrics.len(), 1);

    // A deleted run is hidden from searches (unless asked for) and takes nothing.
    client.delete_run(&id).unwrap();
    let names = |lifecycle| -> Vec<String> {
        let page = client.search_runs(&SearchRuns { experiments: vec!["e".into()], lifecycle, ..Default::default() }).unwrap();
        let mut names: Vec<String> = page.runs.into_iter().map(|r| r.run.name).collect();
        names.sort();
        names
    };
    assert_eq!(names(Lifecycle::ActiveOnly), ["kept"]);
    assert_eq!(names(Lifecycle::DeletedOnly), ["r"]);
    assert_eq!(names(Lifecycle::All), ["kept", "r"]);
    assert!(client.run(&id).unwrap().run.deleted_at.is_some(), "a deleted run is still readable by id");
    let refused = client.log_batch(&id, &LogBatch { metrics: vec![metric("loss", 1.0, 1)], ..Default::default() }).unwrap_err();
    assert_eq!(code(&refused), (400, ErrorCode::InvalidParameterValue));
    assert!(refused.to_string().contains("must be in the 'active' state"), "{refused}");
    let refused = client.update_run(&id, &UpdateRun { name: Some("renamed".into()), ..Default::default() }).unwrap_err();
    assert_eq!(code(&refused), (400, ErrorCode::InvalidParameterValue));

    client.restore_run(&id).unwrap();
    assert!(client.run(&id).unwrap().run.deleted_at.is_none());
    client.log_batch(&id, &LogBatch { metrics: vec![metric("loss", 1.0, 1)], ..Default::default() }).unwrap();
    assert_eq!(names(Lifecycle::ActiveOnly), ["kept", "r"]);
    assert_eq!(code(&client.delete_run("no-such-run").unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
}

fn search_filters_orders_and_pages(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    for i in 0..12 {
        let experiment = if i % 2 == 0 { "even" } else { "odd" };
        let id = new_run(&client, experiment, &format!("run-{i:02}"));
        client
            .log_batch(
                &id,
                &LogBatch {
                    params: vec![Param { key: "lr".into(), value: format!("0.{i}") }],
                    metrics: vec![metric("acc", f64::from(i) / 10.0, 1)],
                    tags: vec![Tag { key: "owner".into(), value: if i < 6 { "Ann".into() } else { "bob".into() } }],
                },
            )
            .unwrap();
        if i == 3 {
            client.update_run(&id, &UpdateRun { status: Some(RunStatus::Finished), ..Default::default() }).unwrap();
        }
    }
    let names = |filter: &str, order: &[&str], experiments: &[&str]| -> Vec<String> {
        let page = client
            .search_runs(&SearchRuns {
                experiments: experiments.iter().map(|e| e.to_string()).collect(),
                filter: filter.into(),
                order_by: order.iter().map(|o| o.to_string()).collect(),
                ..Default::default()
            })
            .unwrap();
        page.runs.into_iter().map(|r| r.run.name).collect()
    };
    assert_eq!(names("metrics.acc >= 0.9", &["metrics.acc DESC"], &[]), ["run-11", "run-10", "run-09"]);
    assert_eq!(names("metrics.acc > 0.5 and params.lr = '0.8'", &[], &[]), ["run-08"]);
    assert_eq!(names("tags.owner LIKE 'A%'", &["run_name"], &["odd"]), ["run-01", "run-03", "run-05"]);
    assert_eq!(names("tags.owner ILIKE 'a%' and metrics.acc < 0.2", &["run_name"], &[]), ["run-00", "run-01"]);
    assert_eq!(names("status = 'FINISHED'", &[], &[]), ["run-03"]);
    assert_eq!(names("attributes.run_name IN ('run-02', 'run-07')", &["run_name DESC"], &[]), ["run-07", "run-02"]);
    assert_eq!(names("params.missing = 'x'", &[], &[]), Vec::<String>::new());
    // Pages of 5, in a stable order, cover every run exactly once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .search_runs(&SearchRuns { order_by: vec!["metrics.acc ASC".into()], max_results: Some(5), page_token: token.clone(), ..Default::default() })
            .unwrap();
        seen.extend(page.runs.into_iter().map(|r| r.run.name));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..12).map(|i| format!("run-{i:02}")).collect();
    assert_eq!(seen, expected);
    let bad = client.search_runs(&SearchRuns { filter: "metrics.acc > 'x'".into(), ..Default::default() }).unwrap_err();
    assert_eq!(code(&bad), (400, ErrorCode::InvalidParameterValue));
    assert_eq!(bad.api_error().unwrap().field.as_deref(), Some("filter"));
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

fn pages_stay_stable_while_runs_start_and_changes_are_polled(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let ids: Vec<String> = (0..5).map(|i| new_run(&client, "live", &format!("run-{i}"))).collect();
    let page = |token: Option<String>, since: Option<i64>| {
        let order_by = vec!["run_name DESC".into()];
        client
            .search_runs(&SearchRuns {
                experiments: vec!["live".into()],
                order_by,
                max_results: Some(2),
                page_token: token,
                changed_since: since,
                ..Default::default()
            })
            .unwrap()
    };
    let names = |page: &kiln::api::RunPage| page.runs.iter().map(|r| r.run.name.clone()).collect::<Vec<_>>();
    // A run that starts while someone pages neither repeats nor hides one of the first answer.
    let first = page(None, None);
    assert!(first.cursor <= now_millis(), "a cursor from the server's clock: {}", first.cursor);
    new_run(&client, "live", "started-while-paging");
    let mut seen = names(&first);
    let mut token = first.next_page_token.clone();
    while let Some(next) = token {
        let answer = page(Some(next), None);
        seen.extend(names(&answer));
        token = answer.next_page_token;
    }
    assert_eq!(seen, ["run-4", "run-3", "run-2", "run-1", "run-0"]);
    assert_eq!(names(&page(None, None))[0], "started-while-paging", "a new answer has it");

    // Changes since a moment: status, name, metrics, tags and a registered version each count.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let moment = now_millis();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(page(None, Some(moment)).runs.is_empty(), "nothing changed since");
    client.log_batch(&ids[1], &LogBatch { metrics: vec![metric("loss", 0.5, 7)], ..Default::default() }).unwrap();
    client.update_run(&ids[3], &UpdateRun { name: Some("renamed".into()), ..Default::default() }).unwrap();
    let changed = page(None, Some(moment));
    assert_eq!(names(&changed), ["run-1", "renamed"]);
    assert_eq!(changed.runs[0].metrics, [metric("loss", 0.5, 7)], "a change comes with the run's latest values");
    client.create_model(&CreateModel { name: "m".into(), description: String::new(), tags: vec![] }).unwrap();
    let after_rename = now_millis();
    std::thread::sleep(std::time::Duration::from_millis(50));
    client.create_model_version("m", &CreateModelVersion { source: "s".into(), run_id: Some(ids[0].clone()), ..Default::default() }).unwrap();
    let changed = page(None, Some(after_rename));
    assert_eq!(names(&changed), ["run-0"]);
    assert_eq!(changed.runs[0].models, [ModelRef { name: "m".into(), version: 1 }]);
    // A token that is not this server's is refused by name.
    let bad = client.search_runs(&SearchRuns { page_token: Some("x.y".into()), ..Default::default() }).unwrap_err();
    assert_eq!(bad.api_error().unwrap().field.as_deref(), Some("page_token"));
}

fn histories_are_down_sampled_keeping_the_ends_and_every_extreme(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let long = new_run(&client, "curves", "long");
    let short = new_run(&client, "curves", "short");
    let value = |step: i64| match step {
        4321 => 100.0,
        7000 => -100.0,
        _ => (step as f64 / 300.0).sin(),
    };
    for chunk in (0..10_000i64).collect::<Vec<_>>().chunks(1000) {
        client.log_batch(&long, &LogBatch { metrics: chunk.iter().map(|&s| metric("loss", value(s), s)).collect(), ..Default::default() }).unwrap();
    }
    client.log_batch(&short, &LogBatch { metrics: (0..10).map(|s| metric("loss", s as f64, s)).collect(), ..Default::default() }).unwrap();
    // The same points logged from the last step back, in uneven batches: the store folds
    // each batch into what it holds, and must give the very answer the first run gets.
    let shuffled = new_run(&client, "curves", "shuffled");
    for chunk in (0..10_000i64).rev().collect::<Vec<_>>().chunks(777) {
        client.log_batch(&shuffled, &LogBatch { metrics: chunk.iter().map(|&s| metric("loss", value(s), s)).collect(), ..Default::default() }).unwrap();
    }
    let ask = |runs: &[&str], from: Option<i64>, to: Option<i64>, axis: HistoryAxis| {
        client.histories(&HistoryRequest {
            runs: runs.iter().map(|r| r.to_string()).collect(),
            keys: vec!["loss".into(), "acc".into()],
            max_points: 400,
            axis,
            from,
            to,
        })
    };
    let answer = ask(&[long.as_str(), short.as_str()], None, None, HistoryAxis::Step).unwrap();
    let shape: Vec<(&str, &str, u64, bool)> = answer.series.iter().map(|s| (s.run_id.as_str(), s.key.as_str(), s.total, s.sampled)).collect();
    assert_eq!(
        shape,
        [(long.as_str(), "loss", 10_000, true), (long.as_str(), "acc", 0, false), (short.as_str(), "loss", 10, false), (short.as_str(), "acc", 0, false)]
    );
    let sampled = &answer.series[0];
    // At most 100 buckets (whole blocks of steps each): each keeps two to four points.
    assert!((100..=400).contains(&sampled.values.len()), "{} points", sampled.values.len());
    assert_eq!((sampled.steps.first(), sampled.steps.last()), (Some(&0), Some(&9_999)), "the ends stay");
    assert!(sampled.steps.windows(2).all(|w| w[0] < w[1]), "in step order, each point once");
    for (step, expected) in [(4321, 100.0), (7000, -100.0)] {
        let at = sampled.steps.iter().position(|&s| s == step).unwrap_or_else(|| panic!("the spike at step {step} was dropped"));
        assert_eq!((sampled.values[at], sampled.timestamps[at]), (expected, 1_700_000_000_000 + step));
    }
    // Every bucket's lowest and highest point is kept: the sampled curve spans the full one's range.
    let (min, max) = sampled.values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    assert_eq!((min, max), (-100.0, 100.0));
    assert_eq!(answer.series[2].values, (0..10).map(|s| s as f64).collect::<Vec<_>>(), "a short series comes whole");
    for (from, to) in [(None, None), (Some(1_234), Some(9_876)), (Some(4_000), None)] {
        let same = |run: &str| {
            let answer = ask(&[run], from, to, HistoryAxis::Step).unwrap();
            let s = &answer.series[0];
            (s.total, s.sampled, s.steps.clone(), s.timestamps.clone(), s.values.clone())
        };
        assert_eq!(same(&shuffled), same(&long), "{from:?}..{to:?}");
    }

    // Zooming asks for the range again: the detail comes back whole when it fits.
    let zoom = ask(&[long.as_str()], Some(4_300), Some(4_350), HistoryAxis::Step).unwrap();
    assert_eq!((zoom.series[0].total, zoom.series[0].sampled), (51, false));
    assert_eq!(zoom.series[0].steps, (4_300..=4_350).collect::<Vec<_>>());
    let by_time = ask(&[long.as_str()], Some(1_700_000_000_000 + 4_300), Some(1_700_000_000_000 + 4_350), HistoryAxis::Time).unwrap();
    assert_eq!(by_time.series[0].steps, zoom.series[0].steps);

    // Refusals name what is wrong.
    let unknown = ask(&[long.as_str(), "nope"], None, None, HistoryAxis::Step).unwrap_err();
    assert_eq!(code(&unknown).0, 404);
    assert!(unknown.to_string().contains("runs[1]: run 'nope' not found"), "{unknown}");
    let (status, body) =
        server.raw("POST", "/api/v1/metrics/history", Some(&json!({"runs": [long], "keys": ["loss"], "max_points": 2}).to_string()), Some(&server.token));
    assert_eq!((status, body["field"].as_str()), (400, Some("max_points")), "{body}");
}

fn artifacts_are_content_addressed(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let first = client.upload_bytes(&bytes).unwrap();
    let second = client.upload(std::io::Cursor::new(bytes.clone())).unwrap();
    assert_eq!(first, second);
    assert_eq!(first.size, bytes.len() as u64);
    // The id is the content: the sha256 of the bytes, in lower-case hex.
    assert_eq!(first.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    assert_eq!(client.download(&first.sha256).unwrap(), bytes);
    let id = new_run(&client, "e", "r");
    let attached = client
        .attach_artifact(
            &id,
            &AttachArtifact { path: "model/weights.safetensors".into(), sha256: first.sha256.clone(), media_type: "application/x-safetensors".into() },
        )
        .unwrap();
    assert_eq!(client.run(&id).unwrap().artifacts, [attached]);
    let unknown = "0".repeat(64);
    let refused = client.attach_artifact(&id, &AttachArtifact { path: "x".into(), sha256: unknown.clone(), media_type: "a/b".into() }).unwrap_err();
    assert_eq!(code(&refused), (400, ErrorCode::InvalidParameterValue));
    assert_eq!(code(&client.download(&unknown).unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    // Large enough for a multipart upload on S3 (parts of 8 MiB).
    let large: Vec<u8> = (0..17u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let stored = client.upload(std::io::Cursor::new(large.clone())).unwrap();
    assert_eq!(stored.size, large.len() as u64);
    assert_eq!(stored.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&large)));
    assert!(client.download(&stored.sha256).unwrap() == large, "17 MiB round trip");
    let escape = client.attach_artifact(&id, &AttachArtifact { path: "../etc".into(), sha256: first.sha256.clone(), media_type: "a/b".into() });
    assert!(matches!(escape, Err(kiln::Error::Api { status: 400, .. })), "{escape:?}");
}

fn writes_need_a_token(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = server.client();
    let anonymous = server.anonymous();
    assert_eq!(code(&anonymous.create_experiment("e").unwrap_err()), (401, ErrorCode::Unauthenticated));
    assert_eq!(code(&anonymous.experiments().unwrap_err()), (401, ErrorCode::Unauthenticated), "reads are closed by default");
    let forged = kiln::Client::new(&server.url, Some("kiln_forged".into()));
    assert_eq!(code(&forged.experiments().unwrap_err()), (401, ErrorCode::Unauthenticated));
    let user = admin.create_token("ci", false).unwrap();
    let user = kiln::Client::new(&server.url, Some(user.token));
    user.create_experiment("by-ci").expect("a user token writes");
    assert_eq!(code(&user.create_token("more", false).unwrap_err()), (403, ErrorCode::PermissionDenied));
    assert_eq!(code(&admin.create_token("ci", false).unwrap_err()), (400, ErrorCode::ResourceAlreadyExists));
    // The database holds hashes only.
    if let Backend::Sqlite = backend {
        let db = std::fs::read(server.dir.path().join("kiln.db")).unwrap();
        let wal = std::fs::read(server.dir.path().join("kiln.db-wal")).unwrap_or_default();
        let haystack = [db, wal].concat();
        assert!(!haystack.windows(server.token.len()).any(|w| w == server.token.as_bytes()), "the admin secret is stored in clear");
    }
    // Open reads: GETs without a token, writes still refused.
    let open = TestServer::start_with(backend, |config| config.open_reads = true);
    assert!(open.anonymous().experiments().is_ok());
    // Searches and histories are reads, though POSTed.
    assert!(open.anonymous().search_runs(&SearchRuns::default()).is_ok());
    let history = HistoryRequest { runs: vec!["none".into()], keys: vec!["loss".into()], max_points: 100, axis: HistoryAxis::Step, from: None, to: None };
    assert_eq!(code(&open.anonymous().histories(&history).unwrap_err()).0, 404, "past authentication, to the missing run");
    assert_eq!(code(&open.anonymous().create_experiment("e").unwrap_err()), (401, ErrorCode::Unauthenticated));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.dir.path().join("admin.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Raw bodies the SDK would refuse to send: each gets a 4xx naming the field, nothing written.
fn bad_input_names_the_field(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let id = new_run(&client, "e", "r");
    let log = format!("/api/v1/runs/{id}/log");
    let long_key = "k".repeat(251);
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        ("POST", log.clone(), "{\"metrics\": [".into(), 400, "metrics"),
        ("POST", log.clone(), "not json".into(), 400, "body"),
        ("POST", log.clone(), json!({"metrics": [{"key": "loss", "value": "high", "timestamp": 1}]}).to_string(), 400, "metrics[0].value"),
        ("POST", log.clone(), json!({"metrics": [{"key": "loss", "value": 1.0}]}).to_string(), 400, "metrics[0]"),
        ("POST", log.clone(), json!({"metrics": [{"key": "loss", "value": 1.0, "timestamp": 1, "step": 1.5}]}).to_string(), 400, "metrics[0].step"),
        ("POST", log.clone(), "{\"metrics\": [{\"key\": \"loss\", \"value\": 1e999, \"timestamp\": 1}]}".into(), 400, "metrics[0].value"),
        ("POST", log.clone(), json!({"params": [{"key": long_key, "value": "1"}]}).to_string(), 400, "params[0].key"),
        ("POST", log.clone(), json!({"params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}).to_string(), 400, "params[1].value"),
        ("POST", log.clone(), json!({"tags": [{"key": "bad\"key", "value": "1"}]}).to_string(), 400, "tags[0].key"),
        (
            "POST",
            log.clone(),
            json!({"metrics": (0..1001).map(|i| json!({"key": "m", "value": i, "timestamp": 1})).collect::<Vec<_>>()}).to_string(),
            400,
            "batch",
        ),
        ("POST", "/api/v1/runs/nope/log".into(), json!({"tags": []}).to_string(), 404, ""),
        ("POST", "/api/v1/runs".into(), json!({"experiment": ""}).to_string(), 400, "experiment"),
        ("POST", "/api/v1/runs".into(), json!({"name": "x"}).to_string(), 400, "body"),
        ("PATCH", format!("/api/v1/runs/{id}"), json!({"status": "DONE"}).to_string(), 400, "status"),
        ("POST", "/api/v1/runs/search".into(), json!({"max_results": 0}).to_string(), 400, "max_results"),
        ("POST", "/api/v1/runs/search".into(), json!({"page_token": "abc"}).to_string(), 400, "page_token"),
        ("POST", "/api/v1/runs/search".into(), json!({"order_by": ["metrics.acc sideways"]}).to_string(), 400, "order_by"),
        ("GET", "/api/v1/artifacts/xyz".into(), String::new(), 400, "sha256"),
        ("GET", "/api/v1/no-such-thing".into(), String::new(), 404, ""),
        ("POST", log.clone(), format!("{{\"tags\": [{{\"key\": \"big\", \"value\": \"{}\"}}]}}", "x".repeat(1_100_000)), 400, "body"),
    ];
    let mut report = Vec::new();
    for (method, path, body, status, field) in &cases {
        let (got_status, reply) = server.raw(method, path, Some(body), Some(&server.token));
        let got_field = reply.get("field").and_then(|f| f.as_str()).unwrap_or("");
        if got_status != *status || got_field != *field || reply.get("error_code").is_none() {
            report.push(format!("{method} {path} {}: got {got_status} {reply}", &body[..body.len().min(80)]));
        }
    }
    assert!(report.is_empty(), "unexpected replies:\n{}", report.join("\n"));
    let view = client.run(&id).unwrap();
    assert!(view.params.is_empty() && view.metrics.is_empty() && view.tags.is_empty(), "a refused request wrote something: {view:?}");
}

fn the_sdk_batches_metrics_in_the_background(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let mut run = kiln::ActiveRun::start(client.clone(), "sdk", Some("loop")).unwrap();
    run.log_param("epochs", 3).unwrap();
    run.set_tag("model", "mlp").unwrap();
    for step in 0..2500 {
        run.log_metric("loss", 1.0 / f64::from(step + 1), i64::from(step)).unwrap();
    }
    assert!(matches!(run.log_metric("loss", f64::NAN, 0), Err(kiln::Error::Invalid(_))), "NaN is refused at once");
    assert!(matches!(run.log_param("epochs", 4), Err(kiln::Error::Api { status: 400, .. })), "a changed param is refused at once");
    let id = run.id().to_owned();
    run.flush().unwrap();
    assert_eq!(client.metric_history(&id, "loss").unwrap().points.len(), 2500);
    run.log_metric("acc", 0.97, 3).unwrap();
    drop(run);
    let view = client.run(&id).unwrap();
    assert_eq!(view.run.status, RunStatus::Finished, "dropping a run flushes and ends it");
    assert_eq!(view.metrics.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["acc", "loss"]);
    assert_eq!(view.run.source, kiln::api::RunSource::External);
}

fn models_have_numbered_versions_and_moving_aliases(backend: Backend) {
    let server = TestServer::start(backend);
    let client = server.client();
    let run = new_run(&client, "train", "r");
    let model = client.create_model(&CreateModel { name: "visual_recognition".into(), ..Default::default() }).unwrap();
    assert_eq!(model.latest_version, None);
    assert_eq!(
        code(&client.create_model(&CreateModel { name: "visual_recognition".into(), ..Default::default() }).unwrap_err()),
        (400, ErrorCode::ResourceAlreadyExists)
    );
    let version = |source: &str| CreateModelVersion { source: source.into(), run_id: Some(run.clone()), ..Default::default() };
    let v1 = client.create_model_version("visual_recognition", &version("artifact:aa")).unwrap();
    let v2 = client.create_model_version("visual_recognition", &version("artifact:bb")).unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v2.run_id.as_deref(), Some(run.as_str()));
    client.set_alias("visual_recognition", "champion", 1).unwrap();
    assert_eq!(client.version_by_alias("visual_recognition", "champion").unwrap().source, "artifact:aa");
    let moved = client.set_alias("visual_recognition", "champion", 2).unwrap();
    assert_eq!(moved.aliases, ["champion"]);
    assert!(client.model_version("visual_recognition", 1).unwrap().aliases.is_empty(), "the alias moved off version 1");
    let model = client.model("visual_recognition").unwrap();
    assert_eq!(model.latest_version, Some(2));
    assert_eq!(model.aliases, [kiln::api::ModelAlias { alias: "champion".into(), version: 2 }]);
    assert_eq!(client.model_versions("visual_recognition").unwrap().iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    // Refusals: unknown version, reserved alias, unknown run, unknown model.
    assert_eq!(code(&client.set_alias("visual_recognition", "staging", 9).unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    assert!(matches!(client.set_alias("visual_recognition", "v3", 1), Err(kiln::Error::Invalid(_))));
    let (status, reply) = server.raw("PUT", "/api/v1/models/visual_recognition/aliases/latest", Some("{\"version\": 1}"), Some(&server.token));
    assert_eq!((status, reply["field"].as_str()), (400, Some("alias")));
    let ghost = CreateModelVersion { source: "x".into(), run_id: Some("nope".into()), ..Default::default() };
    assert_eq!(code(&client.create_model_version("visual_recognition", &ghost).unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    assert_eq!(code(&client.create_model_version("nope", &version("x")).unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    client.delete_alias("visual_recognition", "champion").unwrap();
    assert_eq!(code(&client.version_by_alias("visual_recognition", "champion").unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
}

fn lineage_links_a_model_version_to_its_data_and_code(backend: Backend) {
    use kiln::api::{Column, RegisterCodePackage, Role, RunInputs};
    let server = TestServer::start(backend);
    let client = server.client();
    // The data step produces a dataset version (registered twice: the same version back).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rows.csv"), "x,y\n1,2\n").unwrap();
    let manifest = kiln::dataset::Manifest::of_dir(dir.path()).unwrap();
    let mut data_run = kiln::ActiveRun::start(client.clone(), "visual_recognition", Some("data")).unwrap();
    let mut registration = manifest.registration();
    registration.rows = Some(1);
    registration.schema = vec![Column { name: "x".into(), dtype: "i64".into() }, Column { name: "y".into(), dtype: "i64".into() }];
    let produced = data_run.log_dataset("pets", registration.clone()).unwrap();
    assert_eq!(data_run.log_dataset("pets", registration).unwrap(), produced, "same fingerprint, same version");
    assert_eq!(produced.fingerprint, manifest.fingerprint());
    let data_run_id = data_run.id().to_owned();
    data_run.end().unwrap();
    // The train step reads it, runs a code package, and its model is registered.
    let package = |role: Role, digest: char| RegisterCodePackage {
        handle: "visual_recognition".into(),
        role,
        image: format!("127.0.0.1:5000/visual_recognition-{}:latest", role.as_str()),
        digest: format!("sha256:{}", digest.to_string().repeat(64)),
        notebook_sha256: "a".repeat(64),
        cell_sha256: vec!["b".repeat(64), "c".repeat(64)],
        cargo_lock_sha256: "d".repeat(64),
        git_commit: Some("0123abc".into()),
    };
    let train_package = client.register_code_package(&package(Role::Train, 'e')).unwrap();
    assert_eq!(client.register_code_package(&package(Role::Train, 'e')).unwrap(), train_package, "idempotent");
    client.register_code_package(&package(Role::Infer, 'f')).unwrap();
    assert_eq!(client.code_packages("visual_recognition").unwrap().len(), 2);
    let mut train_run = kiln::ActiveRun::start(client.clone(), "visual_recognition", Some("train")).unwrap();
    train_run.use_dataset(&produced).unwrap();
    client.add_run_inputs(train_run.id(), &RunInputs { code_packages: vec![train_package.id.clone()], ..Default::default() }).unwrap();
    let weights = train_run.log_json("model/weights.json", &vec![0.5f32, -1.25]).unwrap();
    assert_eq!(client.load_json::<Vec<f32>>(&weights.sha256).unwrap(), [0.5, -1.25]);
    let train_run_id = train_run.id().to_owned();
    train_run.end().unwrap();
    client.create_model(&CreateModel { name: "visual_recognition".into(), ..Default::default() }).unwrap();
    let version = client
        .create_model_version(
            "visual_recognition",
            &CreateModelVersion { source: format!("artifact:{}", weights.sha256), run_id: Some(train_run_id.clone()), ..Default::default() },
        )
        .unwrap();
    let lineage = client.lineage("visual_recognition", version.version).unwrap();
    assert_eq!(lineage.run.as_ref().map(|r| r.run.id.as_str()), Some(train_run_id.as_str()));
    assert_eq!(lineage.datasets_read, std::slice::from_ref(&produced));
    assert_eq!(lineage.datasets_read[0].run_id.as_deref(), Some(data_run_id.as_str()), "and the dataset knows which run made it");
    assert_eq!(lineage.code_packages, [train_package]);
    assert_eq!(lineage.run.unwrap().artifacts[0].path, "model/weights.json");
    // Refusals name the field.
    let bad = client.add_run_inputs(&train_run_id, &RunInputs { dataset_versions: vec!["nope".into()], ..Default::default() }).unwrap_err();
    assert_eq!(bad.api_error().unwrap().field.as_deref(), Some("dataset_versions[0]"));
    let mut bad_package = package(Role::Data, 'a');
    bad_package.digest = "latest".into();
    assert_eq!(client.register_code_package(&bad_package).unwrap_err().api_error().unwrap().field.as_deref(), Some("digest"));
    assert_eq!(code(&client.lineage("visual_recognition", 7).unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    assert_eq!(client.datasets().unwrap()[0].versions, 1);
}

/// `kiln componentize` registers a notebook's three components in one request: all of them
/// or, when one is refused, none (nothing half-registered), the refusal naming its place.
fn a_notebooks_code_packages_register_together(backend: Backend) {
    use kiln::api::{RegisterCodePackage, Role};
    let server = TestServer::start(backend);
    let client = server.client();
    let package = |role: Role| RegisterCodePackage {
        handle: "petals".into(),
        role,
        image: format!("127.0.0.1:5000/petals-{}:latest", role.as_str()),
        digest: format!("sha256:{}", "e".repeat(64)),
        notebook_sha256: "a".repeat(64),
        cell_sha256: vec!["b".repeat(64)],
        cargo_lock_sha256: "d".repeat(64),
        git_commit: None,
    };
    let mut bad = vec![package(Role::Data), package(Role::Train), package(Role::Infer)];
    bad[1].cargo_lock_sha256 = "Cargo.lock".into();
    let refused = client.register_code_packages(&bad).unwrap_err();
    assert_eq!(code(&refused), (400, ErrorCode::InvalidParameterValue));
    assert_eq!(refused.api_error().unwrap().field.as_deref(), Some("packages[1].cargo_lock_sha256"));
    assert_eq!(client.code_packages("petals").unwrap(), [], "none of the three was registered");
    assert_eq!(code(&client.register_code_packages(&[]).unwrap_err()), (400, ErrorCode::InvalidParameterValue));

    let good = [package(Role::Data), package(Role::Train), package(Role::Infer)];
    let registered = client.register_code_packages(&good).unwrap();
    assert_eq!(registered.iter().map(|p| p.role).collect::<Vec<_>>(), [Role::Data, Role::Train, Role::Infer]);
    assert_eq!(client.register_code_packages(&good).unwrap(), registered, "the same three again are the first three");
    let mut stored = client.code_packages("petals").unwrap();
    stored.sort_by_key(|p| p.role.as_str());
    let mut expected = registered.clone();
    expected.sort_by_key(|p| p.role.as_str());
    assert_eq!(stored, expected);
}

fn schedules_fire_their_workflow_and_record_how_it_ended(backend: Backend) {
    // The workflow command stands in for `kiln run` (tested end to end in
    // tests/componentize): a shell that writes down its arguments and environment, prints a
    // summary and exits 3.
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let script = format!("echo \"$* $KILN_SCHEDULE\" >> {}; echo '{{\"run_id\": \"r-7\"}}'; exit 3", seen.display());
    let server = TestServer::start_with(backend, |config| {
        config.kiln = Some(kiln_server::scheduler::KilnCommand(vec!["/bin/sh".into(), "-c".into(), script, "sh".into()]));
    });
    let client = server.client();
    let every_second = client
        .create_schedule(&CreateSchedule {
            handle: "iris".into(),
            cron: "* * * * * *".into(),
            params: [("epochs".to_owned(), "5".to_owned())].into(),
            runner: Some("process".into()),
        })
        .unwrap();
    let nightly = client.create_schedule(&CreateSchedule { handle: "iris".into(), cron: "0 3 * * *".into(), ..Default::default() }).unwrap();
    assert!(nightly.next_at > every_second.next_at);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let fired = loop {
        let s = client.schedule(&every_second.id).unwrap();
        if s.last_exit.is_some() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the schedule never fired");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!((fired.last_exit, fired.last_run_id.as_deref()), (Some(3), Some("r-7")));
    assert!(fired.next_at > fired.last_fired_at.unwrap());
    let line = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(line.lines().next().unwrap(), format!("run iris --json --param epochs=5 --runner process {}", every_second.id));
    assert_eq!(client.schedule(&nightly.id).unwrap().last_fired_at, None, "not due yet");
    assert_eq!(client.schedules("iris").unwrap().len(), 2);
    client.delete_schedule(&every_second.id).unwrap();
    assert_eq!(code(&client.schedule(&every_second.id).unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    assert_eq!(code(&client.delete_schedule(&every_second.id).unwrap_err()), (404, ErrorCode::ResourceDoesNotExist));
    // Refusals name the field; reading needs no write rights, writing does.
    let bad = client.create_schedule(&CreateSchedule { handle: "iris".into(), cron: "61 * * * *".into(), ..Default::default() }).unwrap_err();
    assert_eq!(bad.api_error().unwrap().field.as_deref(), Some("cron"));
    let bad = client
        .create_schedule(&CreateSchedule { handle: "iris".into(), cron: "0 3 * * *".into(), runner: Some("docker".into()), ..Default::default() })
        .unwrap_err();
    assert_eq!(bad.api_error().unwrap().field.as_deref(), Some("runner"));
    assert_eq!(
        code(&server.anonymous().create_schedule(&CreateSchedule { handle: "iris".into(), cron: "0 3 * * *".into(), ..Default::default() }).unwrap_err()).0,
        401
    );
}

/// Stands in for `kiln instance` (tested end to end with the real infer component in
/// tests/production/test_serving.py): answers OIP v2 health, metadata and infer, saying
/// which version it serves and echoing the request's id.
const STAND_IN_INSTANCE: &str = r#"
import json, os, socket, socketserver, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
args = sys.argv[1:]
handle, version = args[1], args[args.index("--model-version") + 1]
listen = args[args.index("--listen") + 1]
if version == "3":
    print("loading iris@3: the weights file is truncated", file=sys.stderr)
    sys.exit(3)
if version == "4":
    # The store stops taking writes while this instance starts: it holds the SQLite store's
    # write lock (beside `instances/sockets/NAME/oip.sock` in the server's data dir) until
    # it is stopped.
    import pathlib, sqlite3
    data_dir = pathlib.Path(listen[len("unix:"):]).parents[3]
    lock = sqlite3.connect(str(data_dir / "kiln.db"), isolation_level=None, timeout=30)
    lock.execute("BEGIN EXCLUSIVE")

class Instance(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path in ("/v2/health/ready", "/v2/health/live"):
            self.reply(200, {})
        else:
            self.reply(200, {"name": handle, "versions": [version], "platform": "stand-in", "inputs": [], "outputs": []})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.reply(200, {"model_name": handle, "model_version": version, "id": request.get("id"), "outputs": []})

    def log_message(self, *args):
        pass

class UnixServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0

    def get_request(self):
        return self.socket.accept()[0], ("local", 0)

if listen.startswith("unix:"):
    path = listen[len("unix:"):]
    if os.path.exists(path):
        os.remove(path)
    UnixServer(path, Instance).serve_forever()
else:
    host, port = listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Instance).serve_forever()
"#;

/// A server whose gateway starts the stand-in instance (`STAND_IN_INSTANCE`), with the folder
/// holding the script (kept as long as the server).
fn stand_in_gateway(backend: Backend) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("instance.py");
    std::fs::write(&script, STAND_IN_INSTANCE).unwrap();
    let server = TestServer::start_with(backend, |config| {
        config.kiln = Some(kiln_server::scheduler::KilnCommand(vec!["python3".into(), script.display().to_string()]));
    });
    (dir, server)
}

/// A model `iris` with `versions` versions and an infer image to serve them with.
fn iris_with_versions(client: &kiln::Client, versions: usize) {
    use kiln::api::{RegisterCodePackage, Role};
    client.create_model(&CreateModel { name: "iris".into(), ..Default::default() }).unwrap();
    for _ in 0..versions {
        client.create_model_version("iris", &CreateModelVersion { source: "artifact:weights".into(), ..Default::default() }).unwrap();
    }
    let infer = RegisterCodePackage {
        handle: "iris".into(),
        role: Role::Infer,
        image: "127.0.0.1:5000/iris-infer:latest".into(),
        digest: format!("sha256:{}", "f".repeat(64)),
        notebook_sha256: "a".repeat(64),
        cell_sha256: vec!["b".repeat(64)],
        cargo_lock_sha256: "d".repeat(64),
        git_commit: None,
    };
    client.register_code_package(&infer).unwrap();
}

/// Deployment changes: made from a revision (a stale one is refused, naming the change that
/// came first), recorded with who made them, followed step by step in the status, and
/// whole or not at all (an instance that cannot start switches nothing; a version without
/// an infer image is refused before anything starts).
fn deployment_changes_are_whole_checked_and_attributed(backend: Backend) {
    use kiln::api::Strategy;
    let (_dir, server) = stand_in_gateway(backend);
    let client = server.client();
    // No infer image yet: refused, naming the field, with nothing deployed.
    client.create_model(&CreateModel { name: "bare".into(), ..Default::default() }).unwrap();
    client.create_model_version("bare", &CreateModelVersion { source: "artifact:weights".into(), ..Default::default() }).unwrap();
    let deploy = |handle: &str, version: i64, strategy: Strategy, expected: Option<i64>| {
        let body = json!({"model_version": version, "strategy": strategy.to_string(), "expected_revision": expected});
        server.raw_with("PUT", &format!("/api/v1/deployments/{handle}"), Some(&body.to_string()), Some(&server.token), &[("Kiln-Actor", "ada")])
    };
    let (status, body) = deploy("bare", 1, Strategy::BlueGreen, Some(0));
    assert_eq!((status, body["field"].as_str()), (400, Some("model_version")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("no infer image"), "{body}");
    assert_eq!(code(&client.deployment("bare").unwrap_err()).0, 404);

    iris_with_versions(&client, 3);
    let (status, body) = deploy("iris", 1, Strategy::BlueGreen, Some(0));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revision"].as_i64(), Some(1), "{body}");
    assert!(body["history"][0]["actor"].as_str().unwrap().starts_with("ada (token admin-"), "{body}");
    let status_of = || server.raw("GET", "/api/v1/deployments/iris/status", None, Some(&server.token)).1;
    let steps = |status: &serde_json::Value| -> Vec<String> {
        status["change"]["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap().to_owned()).collect()
    };
    let first = status_of();
    assert_eq!(steps(&first), ["starting", "ready", "saved", "switched", "done"], "{first}");
    assert_eq!(
        first["instances"].as_array().unwrap().iter().map(|i| (i["version"].as_i64(), i["state"].as_str())).collect::<Vec<_>>(),
        [(Some(1), Some("ready"))]
    );

    // Two users decided on revision 1; the first to change wins, the second is told what
    // changed and changes nothing.
    let (status, body) = deploy("iris", 2, Strategy::Canary { percent: 30 }, Some(1));
    assert_eq!(status, 200, "{body}");
    let (status, body) = deploy("iris", 2, Strategy::Canary { percent: 80 }, Some(1));
    assert_eq!((status, body["error_code"].as_str()), (409, Some("RESOURCE_CONFLICT")), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("canary: 30% to version 2") && message.contains("by ada"), "{message}");
    let (status, body) = server.raw("POST", "/api/v1/deployments/iris/promote", Some(r#"{"expected_revision": 1}"#), Some(&server.token));
    assert_eq!(status, 409, "{body}");
    let now = client.deployment("iris").unwrap();
    assert_eq!((now.revision, now.strategy, now.candidate), (2, Strategy::Canary { percent: 30 }, Some(2)));
    // Without a revision, or with the current one, a change goes through.
    let (status, body) = deploy("iris", 2, Strategy::Canary { percent: 50 }, Some(2));
    assert_eq!((status, body["strategy"].as_str()), (200, Some("canary:50")), "{body}");

    // Version 3's instance cannot start: the reason, and version 1 and 2 still serve.
    let (status, body) = deploy("iris", 3, Strategy::BlueGreen, None);
    assert_eq!(status, 500, "{body}");
    assert!(body["message"].as_str().unwrap().contains("weights file is truncated"), "{body}");
    let failed = status_of();
    assert_eq!(steps(&failed), ["ready", "starting", "failed"], "{failed}");
    assert!(failed["change"]["error"].as_str().unwrap().contains("weights file is truncated"), "{failed}");
    let kept = client.deployment("iris").unwrap();
    assert_eq!((kept.revision, kept.stable, kept.candidate), (3, 1, Some(2)));
    let mut versions: Vec<i64> = failed["instances"].as_array().unwrap().iter().map(|i| i["version"].as_i64().unwrap()).collect();
    versions.dedup();
    assert_eq!(versions, [1, 2]);
    for _ in 0..10 {
        let (status, body) = server.raw("POST", "/v2/models/iris/infer", Some(r#"{"inputs": []}"#), None);
        assert!(status == 200 && ["1", "2"].contains(&body["model_version"].as_str().unwrap()), "{body}");
    }
    // The SDK's client names the local user (when it has one) and the token.
    let history = client.rollback("iris").unwrap().history;
    assert_eq!(history.len(), 4);
    let actor = history[3].actor.as_deref().unwrap();
    assert!(actor.contains("token admin-"), "{actor}");
}

/// The store stops taking writes after a change's instances are ready (its SQLite file is
/// locked by another process): the change fails with the store's reason, the instance it
/// started is stopped, and traffic stays where it was. SQLite only: the lock is SQLite's.
#[test]
fn a_store_that_stops_taking_writes_mid_deploy_switches_nothing() {
    use kiln::api::{Deploy, Strategy};
    let (_dir, server) = stand_in_gateway(Backend::Sqlite);
    let client = server.client();
    iris_with_versions(&client, 4);
    client.deploy("iris", &Deploy { model_version: 1, strategy: Strategy::BlueGreen, runner: None, expected_revision: Some(0) }).unwrap();
    let error =
        client.deploy("iris", &Deploy { model_version: 4, strategy: Strategy::Canary { percent: 20 }, runner: None, expected_revision: Some(1) }).unwrap_err();
    assert!(error.to_string().contains("locked"), "{error}");
    let (_, status) = server.raw("GET", "/api/v1/deployments/iris/status", None, Some(&server.token));
    assert!(status["change"]["error"].as_str().unwrap().starts_with("saving the change"), "{status}");
    let kinds: Vec<&str> = status["change"]["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ready", "starting", "ready", "failed"], "{status}");
    assert_eq!(status["instances"].as_array().unwrap().iter().map(|i| i["version"].as_i64().unwrap()).collect::<Vec<_>>(), [1], "{status}");
    let kept = client.deployment("iris").unwrap();
    assert_eq!((kept.revision, kept.strategy, kept.candidate), (1, Strategy::BlueGreen, None));
    for _ in 0..10 {
        let (status, body) = server.raw("POST", "/v2/models/iris/infer", Some(r#"{"inputs": []}"#), None);
        assert_eq!((status, body["model_version"].as_str()), (200, Some("1")), "{body}");
    }
    // Once the instance holding the lock is stopped, the store takes the change.
    let canary =
        client.deploy("iris", &Deploy { model_version: 2, strategy: Strategy::Canary { percent: 20 }, runner: None, expected_revision: Some(1) }).unwrap();
    assert_eq!((canary.revision, canary.candidate), (2, Some(2)));
}

fn deployments_route_count_traffic_and_reach_lineage(backend: Backend) {
    use kiln::api::{Deploy, Strategy};
    let (_dir, server) = stand_in_gateway(backend);
    let client = server.client();
    iris_with_versions(&client, 2);
    let infer = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|_| {
                let (status, body) = server.raw("POST", "/v2/models/iris/infer", Some(r#"{"inputs": []}"#), None);
                assert_eq!(status, 200, "{body}");
                (body["model_version"].as_str().unwrap().to_owned(), body["id"].as_str().unwrap().to_owned())
            })
            .collect()
    };

    let deployed = client.deploy("iris", &Deploy { model_version: 1, strategy: Strategy::BlueGreen, runner: None, expected_revision: None }).unwrap();
    assert_eq!((deployed.stable, deployed.candidate, deployed.standby), (1, None, None));
    assert!(infer(20).iter().all(|(version, _)| version == "1"));
    let canary =
        client.deploy("iris", &Deploy { model_version: 2, strategy: Strategy::Canary { percent: 50 }, runner: None, expected_revision: None }).unwrap();
    assert_eq!((canary.stable, canary.candidate), (1, Some(2)));
    let answers = infer(100);
    let to_candidate = answers.iter().filter(|(version, _)| version == "2").count();
    assert!((20..=80).contains(&to_candidate), "{to_candidate} of 100 to the 50% canary");
    // Feedback names an answer by its id; the gateway knows which version gave it.
    let (version, id) = &answers[0];
    let (status, body) = server.raw("POST", "/v2/models/iris/feedback", Some(&json!({"id": id, "reward": 1.0}).to_string()), None);
    assert_eq!((status, body["model_version"].as_str()), (200, Some(version.as_str())), "{body}");
    let promoted = client.promote("iris").unwrap();
    assert_eq!((promoted.stable, promoted.candidate), (2, None));
    let green = client.deploy("iris", &Deploy { model_version: 1, strategy: Strategy::BlueGreen, runner: None, expected_revision: None }).unwrap();
    assert_eq!((green.stable, green.standby), (1, Some(2)));
    let back = client.rollback("iris").unwrap();
    assert_eq!((back.stable, back.standby), (2, Some(1)));
    let history: Vec<String> = client.deployment("iris").unwrap().history.into_iter().map(|e| e.action).collect();
    assert_eq!(history, ["deploy", "deploy", "promote", "deploy", "rollback"]);
    assert_eq!(client.deployments().unwrap().len(), 1);
    // Instances listen on Unix sockets beside their logs, in a folder only this user can
    // enter; a stopped one's socket is gone.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(server.dir.path().join("instances/sockets")).unwrap().permissions().mode() & 0o777, 0o700);
    let sockets: Vec<String> =
        std::fs::read_dir(server.dir.path().join("instances/sockets")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut versions: Vec<&str> = sockets.iter().map(|name| name.strip_prefix("iris-").and_then(|rest| rest.split('-').next()).unwrap_or(name)).collect();
    versions.sort();
    assert_eq!(versions, ["1", "2"], "{sockets:?}");

    // Traffic per version and minute, as the gateway counted it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let buckets = loop {
        let traffic = client.traffic("iris", 0).unwrap();
        if traffic.buckets.iter().map(|b| b.requests).sum::<u64>() == 120 && traffic.buckets.iter().any(|b| b.rewards > 0) {
            break traffic.buckets;
        }
        assert!(std::time::Instant::now() < deadline, "traffic never reached 120 requests: {traffic:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let requests = |v: i64| buckets.iter().filter(|b| b.version == v).map(|b| b.requests).sum::<u64>();
    assert_eq!(requests(2) as usize, to_candidate);
    assert_eq!(requests(1) as usize, 120 - to_candidate);
    assert!(buckets.iter().all(|b| b.errors == 0 && b.p99_ms >= b.p95_ms && b.p95_ms >= b.p50_ms && b.p50_ms > 0.0), "{buckets:?}");
    let rewarded: Vec<_> = buckets.iter().filter(|b| b.rewards > 0).collect();
    assert_eq!((rewarded.len(), rewarded[0].version.to_string(), rewarded[0].mean_reward), (1, version.clone(), Some(1.0)));
    // The same counts in 10-second buckets, for a live chart: the same totals per version.
    let fine = client.traffic_by("iris", 0, 10_000).unwrap();
    assert_eq!(fine.bucket_ms, 10_000);
    assert!(fine.buckets.iter().all(|b| b.start % 10_000 == 0), "{fine:?}");
    let fine_requests = |v: i64| fine.buckets.iter().filter(|b| b.version == v).map(|b| b.requests).sum::<u64>();
    assert_eq!((fine_requests(1), fine_requests(2)), (requests(1), requests(2)));
    assert_eq!(fine.buckets.iter().map(|b| b.rewards).sum::<u64>(), 1);
    let (status, body) = server.raw("GET", "/api/v1/deployments/iris/traffic?bucket_ms=5000", None, Some(&server.token));
    assert_eq!((status, body["field"].as_str()), (400, Some("bucket_ms")), "{body}");

    // Lineage reaches the deployments serving a version.
    let lineage = client.lineage("iris", 1).unwrap();
    assert_eq!(lineage.deployments.iter().map(|d| (d.handle.as_str(), d.stable, d.standby)).collect::<Vec<_>>(), [("iris", 2, Some(1))]);

    // Refusals name the field and change nothing.
    let bad = client.deploy("iris", &Deploy { model_version: 9, strategy: Strategy::BlueGreen, runner: None, expected_revision: None }).unwrap_err();
    assert_eq!(bad.api_error().unwrap().field.as_deref(), Some("model_version"));
    let (status, body) = server.raw("PUT", "/api/v1/deployments/iris", Some(r#"{"model_version": 1, "strategy": "canary:150"}"#), Some(&server.token));
    assert_eq!((status, body["field"].as_str()), (400, Some("strategy")), "{body}");
    assert_eq!(code(&client.promote("nope").unwrap_err()).0, 404);
    assert_eq!(
        code(
            &server.anonymous().deploy("iris", &Deploy { model_version: 1, strategy: Strategy::BlueGreen, runner: None, expected_revision: None }).unwrap_err()
        )
        .0,
        401
    );
    assert_eq!(client.deployment("iris").unwrap().history.len(), 5);

    // A bandit: every second the gateway re-reads the arms' rewards from the store (summed by
    // the database), so routing follows the feedback only when that read works. Version 1
    // pleases: were the read to fail, both arms would look untried and version 2, the first,
    // would get everything.
    let bandit =
        client.deploy("iris", &Deploy { model_version: 1, strategy: Strategy::EpsilonGreedy { epsilon: 0.1 }, runner: None, expected_revision: None }).unwrap();
    assert_eq!(bandit.arms, [2, 1]);
    for (version, id) in infer(30) {
        let reward = if version == "1" { 1.0 } else { 0.0 };
        assert_eq!(server.raw("POST", "/v2/models/iris/feedback", Some(&json!({"id": id, "reward": reward}).to_string()), None).0, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let after_sync = infer(50).into_iter().filter(|(version, _)| version == "1").count();
    // ε = 0.1: about 45 of 50 (40 or fewer happens 2% of the time; 35 or fewer, 1e-6).
    assert!(after_sync > 35, "{after_sync} of 50 to the rewarded arm");
}
