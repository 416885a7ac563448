//! A real PostgreSQL server for tests: a throwaway cluster in a temp dir
//! (`initdb`, then `pg_ctl start` on a free loopback port, its socket in the
//! same dir), stopped and removed when dropped. Run as root (CI), the
//! cluster belongs to the `postgres` user Debian's package creates, since
//! PostgreSQL refuses to run as root.
//!
//! Not a fake: the server is the one a deployment runs. Must not: touch a
//! cluster it did not create.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    running: bool,
    as_user: Option<String>,
    /// TLS only (`start_tls`): the server's certificate and key.
    tls: Option<(PathBuf, PathBuf)>,
}

/// The directory holding `initdb`, `pg_ctl` and `psql`: `PG_BIN`, Debian's
/// `/usr/lib/postgresql/<version>/bin` (newest first), or `PATH`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return dir.into();
    }
    let complete = |d: &Path| ["initdb", "pg_ctl", "postgres", "psql"].iter().all(|p| d.join(p).exists());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| complete(d))
        .collect();
    debian.sort();
    let on_path = || {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|d| complete(d))
    };
    debian.pop().or_else(on_path).unwrap_or_else(|| {
        panic!("PostgreSQL is not installed (no initdb, pg_ctl, psql): `apt-get install postgresql`, or set PG_BIN; `cargo xtask test` installs it")
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Cluster {
    /// A new, empty cluster, running and accepting connections.
    pub fn start() -> Cluster {
        let dir = tempfile::Builder::new().prefix("chela-pg-").tempdir().expect("a temp dir");
        let as_user = is_root().then(|| "postgres".to_string());
        if let Some(user) = &as_user {
            let ok = Command::new("chown").args(["-R", user]).arg(dir.path()).status().is_ok_and(|s| s.success());
            assert!(ok, "cannot give {} to the `{user}` user", dir.path().display());
        }
        let bin = bin_dir();
        let mut cluster = Cluster { dir, bin, port: 0, running: false, as_user, tls: None };
        let data = cluster.data_dir();
        let out = cluster
            .command("initdb")
            .args(["-A", "trust", "-U", "chela", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        cluster.port = free_port();
        cluster.resume();
        cluster.psql("create database chela");
        cluster
    }

    /// A new cluster that accepts only TLS connections (`hostnossl … reject`),
    /// with a certificate for `localhost` (not for `127.0.0.1`) issued by
    /// its own CA, [`ca_file`](Self::ca_file). Certificates by `openssl`
    /// (installed with PostgreSQL).
    pub fn start_tls() -> Cluster {
        let mut cluster = Cluster::start();
        cluster.stop();
        let dir = cluster.dir.path().to_path_buf();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&dir).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=chela test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("writes");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ]);
        let hba = cluster.data_dir().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        std::fs::write(&hba, format!("hostnossl all all all reject\n{rules}")).expect("writes pg_hba.conf");
        if let Some(user) = &cluster.as_user {
            let ok = Command::new("chown").args(["-R", user]).arg(&dir).status().is_ok_and(|s| s.success());
            assert!(ok, "cannot give {} to the `{user}` user", dir.display());
        }
        let _ = Command::new("chmod").arg("600").arg(dir.join("server.key")).status();
        cluster.tls = Some((dir.join("server.crt"), dir.join("server.key")));
        cluster.resume();
        cluster
    }

    /// The CA that issued a [`start_tls`](Self::start_tls) server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// The URL chela is given (`CHELA_DATABASE_URL`).
    pub fn url(&self) -> String {
        format!("postgres://chela@127.0.0.1:{}/chela", self.port)
    }

    /// Starts the server (again, after [`stop`](Self::stop)) on the same
    /// port and data, and returns once it accepts connections.
    pub fn resume(&mut self) {
        let mut options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if let Some((cert, key)) = &self.tls {
            options += &format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", cert.display(), key.display());
        }
        let out = self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &options])
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.running = true;
    }

    /// Stops the server (fast: sessions are cut, data kept).
    pub fn stop(&mut self) {
        if std::mem::take(&mut self.running) {
            let _ = self.command("pg_ctl").args(["stop", "-m", "fast", "-w", "-D"]).arg(self.data_dir()).output();
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs `sql` on the `chela` database (on `postgres` before it exists)
    /// and returns what `psql` printed, unaligned, without headers.
    pub fn psql(&self, sql: &str) -> String {
        let db = if sql.starts_with("create database") { "postgres" } else { "chela" };
        self.run_psql(db, sql).unwrap_or_else(|e| panic!("psql `{sql}`: {e}"))
    }

    fn run_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "chela", "-d", db, "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}
