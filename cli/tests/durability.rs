//! Acknowledged writes survive `kill -9` of `kiln server`: a writer logs batches as fast as it
//! can, the server is killed at a varying moment, restarted on the same data dir, and every
//! batch the server had answered 200 to must be there. Five rounds, one growing store.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kiln::api::{CreateRun, LogBatch, Metric, RunSource};

fn start(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("KILN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kiln server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("address line");
    let url = line.trim().strip_prefix("kiln server listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
    (child, url)
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<(String, i64)> = Vec::new(); // (run, last acknowledged step)
    let mut artifacts: Vec<(String, Vec<u8>)> = Vec::new();
    for round in 0..5u64 {
        let t0 = std::time::Instant::now();
        let (mut server, url) = start(dir.path());
        eprintln!("round {round}: started in {:?}", t0.elapsed());
        let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap().trim().to_owned();
        let client = kiln::Client::new(&url, Some(token));
        // Everything acknowledged in earlier rounds is still there.
        for (run, last_step) in &acknowledged {
            let points = client.metric_history(run, "x").unwrap().points;
            let steps: Vec<i64> = points.iter().map(|p| p.step).collect();
            assert!(steps.len() as i64 > *last_step, "run {run}: acknowledged up to step {last_step}, found {} points", steps.len());
            assert_eq!(steps[..=*last_step as usize], (0..=*last_step).collect::<Vec<_>>()[..]);
        }
        for (sha, bytes) in &artifacts {
            assert_eq!(&client.download(sha).unwrap(), bytes, "artifact {sha} lost");
        }
        let run = client
            .create_run(&CreateRun {
                experiment: "durability".into(),
                name: Some(format!("round-{round}")),
                source: RunSource::External,
                start_time: None,
                tags: vec![],
            })
            .unwrap()
            .id;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (client, run, stop) = (client.clone(), run.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last = -1i64;
                let mut uploaded = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let metrics: Vec<Metric> = (last + 1..last + 51).map(|step| Metric { key: "x".into(), value: step as f64, timestamp: 1, step }).collect();
                    match client.log_batch(&run, &LogBatch { metrics, ..Default::default() }) {
                        Ok(()) => last += 50,
                        Err(_) => break, // the server died mid-request: not acknowledged
                    }
                    let bytes = format!("round {round} step {last}").into_bytes();
                    match client.upload_bytes(&bytes) {
                        Ok(artifact) => uploaded.push((artifact.sha256, bytes)),
                        Err(_) => break,
                    }
                }
                (last, uploaded)
            })
        };
        std::thread::sleep(Duration::from_millis(150 + 70 * round));
        server.kill().expect("kill -9");
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let (last, uploaded) = writer.join().unwrap();
        assert!(last >= 49, "round {round}: the writer got nothing acknowledged before the kill");
        eprintln!("round {round}: done at {:?}, {last}", t0.elapsed());
        acknowledged.push((run, last));
        artifacts.extend(uploaded);
    }
    // A final start checks the last round.
    let (mut server, url) = start(dir.path());
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap().trim().to_owned();
    let client = kiln::Client::new(&url, Some(token));
    for (run, last_step) in &acknowledged {
        assert!(client.metric_history(run, "x").unwrap().points.len() as i64 > *last_step);
    }
    server.kill().unwrap();
    let _ = server.wait();
}
