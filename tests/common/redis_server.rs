//! A private `redis-server` for one test: on a free 127.0.0.1 port, without persistence, so a
//! test can stop and restart it. Where `redis-server` is not installed the tests that need it
//! say so loudly and skip, except in CI (`CI=true`), where that is a failure.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Extra `redis-server` arguments (cluster mode).
    args: Vec<String>,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl RedisServer {
    /// A fresh server, or `None` (after a loud message) where `redis-server` is missing
    /// outside CI.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, Vec::new())
    }

    fn start_with(test: &str, args: Vec<String>) -> Option<Self> {
        if !installed() {
            assert!(
                !in_ci(),
                "redis-server is not installed, and CI=true: the Redis tests must run in CI"
            );
            eprintln!(
                "\n*** SKIPPED {test}: redis-server is not installed (apt-get install -y \
                 redis-server); the Redis tests did not run ***\n"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let args = args
            .into_iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let mut server = Self {
            port,
            child: None,
            args,
        };
        server.restart();
        // Shown in CI (`--nocapture`) as proof that the Redis tests ran rather than skipped.
        eprintln!("redis-server started on 127.0.0.1:{port} for {test}");
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Start (again) on the same port and wait until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop it (the data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Run `redis-cli` against it; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Every key, each with its TTL in ms and its whole content as text.
    pub fn dump(&self) -> Vec<(String, i64, String)> {
        let keys = self.cli(&["--scan"]);
        keys.lines()
            .filter(|k| !k.is_empty())
            .map(|key| {
                let ttl = self.cli(&["PTTL", key]).trim().parse().unwrap_or(-3);
                let kind = self.cli(&["TYPE", key]);
                let content = match kind.trim() {
                    "hash" => self.cli(&["HGETALL", key]),
                    "zset" => self.cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
                    _ => self.cli(&["GET", key]),
                };
                (key.to_owned(), ttl, content)
            })
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A three-master Redis Cluster of private servers (no replicas).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(test: &str) -> Option<Self> {
        let stamp = std::process::id();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let config = format!("tja-nodes-{stamp}-{{port}}.conf");
            nodes.push(Self::node(test, config)?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "cluster create: {out:?}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Self { nodes })
    }

    fn node(test: &str, config: String) -> Option<RedisServer> {
        RedisServer::start_with(
            test,
            vec![
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                config,
                "--cluster-node-timeout".into(),
                "2000".into(),
            ],
        )
    }

    /// `redis+cluster://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
            let _ = std::fs::remove_file(std::env::temp_dir().join(format!(
                "tja-nodes-{}-{}.conf",
                std::process::id(),
                node.port
            )));
        }
    }
}
