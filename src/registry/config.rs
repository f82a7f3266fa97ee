//! Registry settings (filled from the command line in `bin/registry.rs`).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// TCP address for requests; the UDP heartbeat socket binds the same address.
    pub listen: String,
    /// `mongodb://…` URI, or a path to the embedded database file.
    pub store: String,
    /// How often peers are told to send a heartbeat.
    pub heartbeat_interval: Duration,
    /// A session whose heartbeats stop for this long goes offline.
    pub session_timeout: Duration,
    /// A connection that has not logged in is closed after this long idle.
    pub idle_timeout: Duration,
    /// How long an offline session can still be resumed by its token.
    pub resume_grace: Duration,
    /// Password hashes run at once (each takes `argon2_m_kib`).
    pub hash_concurrency: usize,
    /// Argon2id memory cost in KiB for new password hashes (19456 = 19 MiB).
    pub argon2_m_kib: u32,
    /// Argon2id passes for new password hashes.
    pub argon2_passes: u32,
    /// Requests per second one connection may send before it is slowed down.
    pub requests_per_sec: u32,
    /// Connections one source address may hold open at once; more are
    /// answered `too_many_connections` and closed.
    pub max_connections_per_ip: usize,
    /// Bytes all connections together may hold in lines still being
    /// received (beyond a free 4 KiB each); a connection whose line needs
    /// more is answered `buffers_full` and closed.
    pub line_budget: usize,
    /// Identifies this registry's sessions in a shared store; at start, the
    /// sessions a previous run with the same id left behind are taken offline.
    /// Defaults to `hostname:port`.
    pub instance_id: Option<String>,
    /// Accounts that may `announce` to every online user.
    pub admins: Vec<String>,
    /// TLS for client connections; `None`: plaintext only (tests in
    /// process; the `registry` binary always sets one).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// With `tls`, also serve clients that start in plaintext
    /// (`--insecure`); without, they get one `tls_required` line.
    pub allow_plaintext: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:15600".into(),
            store: "registry.db".into(),
            heartbeat_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(30),
            resume_grace: Duration::from_secs(600),
            hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            requests_per_sec: 200,
            argon2_m_kib: 19 * 1024,
            argon2_passes: 2,
            max_connections_per_ip: 64,
            line_budget: 64 * 1024 * 1024,
            instance_id: None,
            admins: Vec::new(),
            tls: None,
            allow_plaintext: false,
        }
    }
}
