//! The same closed loop with sessions and the message journal in
//! PostgreSQL, through one, two and three `chela gateway` replicas behind a
//! round-robin forwarder (the load balancer a deployment puts in front), and
//! one gateway on its embedded files behind the same forwarder as the peer,
//! in one run on one machine: the figures show the shared database's
//! overhead, not scaling (server, replicas, fakes and load share the cores).
//! Also: the database transactions one message costs (turn and journal),
//! from `pg_stat_database`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chela_fakes::platforms::{self, Platforms};
use chela_fakes::postgres::Cluster;
use chela_fakes::wire;

use crate::{load, start, stop, Figures, Gateway, Waiting};

/// Forwards every request to the next of `targets` in turn, as it came
/// (method, path, the headers that matter, body); the target's answer back.
async fn balancer(targets: Vec<String>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let next = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(targets);
    wire::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let (next, targets) = (next.clone(), targets.clone());
        async move {
            use http_body_util::BodyExt;
            let target = &targets[next.fetch_add(1, Ordering::Relaxed) % targets.len()];
            let method = req.method().to_string();
            let path = req.uri().path_and_query().map_or("/".to_string(), |p| p.to_string());
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length" | "connection" | "transfer-encoding"))
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let answer = wire::request(&method, &format!("http://{target}{path}"), &headers, &body).await;
            let (status, body) = answer.map_or((502, String::new()), |a| (a.status, a.body));
            let mut r = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(body)));
            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
            r
        }
    })
    .await
}

/// Transactions the server committed on the `chela` database so far.
fn transactions(db: &Cluster) -> u64 {
    // Statistics reach the view within a second of a backend going idle.
    std::thread::sleep(Duration::from_millis(1500));
    db.psql("select xact_commit + xact_rollback from pg_stat_database where datname = 'chela'").parse().unwrap_or(0)
}

/// A replica's own state dir, with the plugins and the compile cache of the
/// first gateway's (content-addressed: a warm start, as a replica that ran before).
fn replica_root(root: &Path, i: usize) -> std::path::PathBuf {
    let dir = root.join(format!("replica-{i}"));
    for sub in ["plugins", "cache/plugins"] {
        let (from, to) = (root.join("state").join(sub), dir.join("state").join(sub));
        std::fs::create_dir_all(&to).expect("state dir");
        for f in std::fs::read_dir(&from).into_iter().flatten().flatten() {
            if f.path().is_file() {
                std::fs::copy(f.path(), to.join(f.file_name())).expect("copy");
            }
        }
    }
    std::fs::copy(root.join("chela.json5"), dir.join("chela.json5")).expect("config");
    dir
}

/// Routes the WhatsApp fake's deliveries through a balancer over `addrs`.
async fn behind(p: &Platforms, addrs: &[String]) -> tokio::task::JoinHandle<()> {
    let (lb, task) = balancer(addrs.to_vec()).await;
    let hook = format!("http://{lb}/channels/whatsapp/biz/");
    p.whatsapp.subscribe(&hook, platforms::WHATSAPP_VERIFY_TOKEN).await.expect("the webhook handshake");
    task
}

fn row(store: &str, sessions: usize, f: &Figures, per_message: Option<f64>) {
    println!(
        "| {sessions} | {store} | {} | {:.0} | {:.2} | {:.2} | {} |",
        f.latencies.len(),
        f.rate(),
        f.ms(0.5),
        f.ms(0.99),
        per_message.map_or("—".to_string(), |t| format!("{t:.1}"))
    );
}

/// The embedded gateway `gw` (running on `root`) behind the balancer, then
/// it stopped and 1–3 replicas on PostgreSQL behind it, each level `run` long.
pub async fn compare(p: &Arc<Platforms>, waiting: &Waiting, root: &Path, gw: Gateway, run: Duration) {
    let levels = [1usize, 10];
    println!("\n## Replicas on PostgreSQL, behind a round-robin forwarder ({:.1} s per level)\n", run.as_secs_f64());
    println!("| sessions | store | messages | msg/s | p50 ms | p99 ms | database transactions per message |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    let lb = behind(p, std::slice::from_ref(&gw.addr)).await;
    for sessions in levels {
        let f = load(p, waiting, &format!("e{sessions}"), sessions, run).await;
        row("embedded files, 1 gateway", sessions, &f, None);
    }
    lb.abort();
    stop(gw).await;

    let db = Cluster::start();
    let url = db.url();
    for replicas in 1..=3usize {
        db.psql("drop schema public cascade; create schema public");
        let mut gateways = Vec::new();
        for i in 0..replicas {
            let dir = replica_root(root, i);
            let (g, _) = start(&dir, &[("CHELA_DATABASE_URL", url.as_str())]).await;
            gateways.push(g);
        }
        let addrs: Vec<String> = gateways.iter().map(|g| g.addr.clone()).collect();
        let lb = behind(p, &addrs).await;
        // First turns, outside the measurement.
        load(p, waiting, &format!("w{replicas}"), 2, Duration::from_millis(500)).await;
        for sessions in levels {
            let before = transactions(&db);
            let f = load(p, waiting, &format!("r{replicas}-{sessions}"), sessions, run).await;
            let per_message = transactions(&db).saturating_sub(before) as f64 / f.latencies.len().max(1) as f64;
            row(&format!("PostgreSQL, {replicas} replica(s)"), sessions, &f, Some(per_message));
        }
        lb.abort();
        for g in gateways {
            stop(g).await;
        }
    }
}
