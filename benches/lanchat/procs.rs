//! The release binaries, started through the test kit: where they are,
//! the open-file limit children get, and a registry builder for them.

use super::*;
use kit::process::{command, spawn_child_with_nofile};
use kit::RegistryBuilder;

pub struct Bins {
    pub registry: PathBuf,
    pub peer: PathBuf,
}

pub static BINS: OnceLock<Bins> = OnceLock::new();

/// Where the binaries are when not in this tree's target/release
/// (`--bin-dir`); set before the first [`bins`].
pub static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// This tree's cargo target directory.
pub fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|t| !t.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    if target.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(target)
    } else {
        target
    }
}

pub fn bins() -> &'static Bins {
    BINS.get_or_init(|| {
        let dir = BIN_DIR
            .get()
            .cloned()
            .unwrap_or_else(|| target_dir().join("release"));
        let b = Bins {
            registry: dir.join("registry"),
            peer: dir.join("peer"),
        };
        for p in [&b.registry, &b.peer] {
            if !p.exists() {
                eprintln!(
                    "{} is missing: run `cargo build --release --bins` first (make bench does)",
                    p.display()
                );
                std::process::exit(2);
            }
        }
        b
    })
}

/// When not 0, children get this open-file limit (soft and hard) instead
/// of the bench's own: lowering a limit needs no privilege.
pub static CHILD_NOFILE: AtomicU64 = AtomicU64::new(0);

/// A builder for the release registry, logging to `log` (in the work
/// directory), with the children's open-file limit.
pub fn registry(log: &Path) -> RegistryBuilder {
    Registry::builder()
        .bin(&bins().registry)
        .log_in(
            log.parent().unwrap_or(Path::new(".")),
            &log.file_name().unwrap_or_default().to_string_lossy(),
        )
        .nofile(CHILD_NOFILE.load(Ordering::Relaxed))
        // Every bench client connects from 127.0.0.1: far over the default
        // per-address cap, which is not what the bench measures.
        .flags(&["--max-connections-per-ip", "1000000"])
}

/// A command for the release `peer`, through `prefix` if any.
pub fn peer_command(prefix: &[String]) -> Command {
    command(prefix, &bins().peer)
}

/// Spawns `cmd` like every child of the kit (it dies with the bench), with
/// the children's open-file limit.
pub fn spawn(cmd: Command) -> io::Result<Child> {
    spawn_child_with_nofile(cmd, CHILD_NOFILE.load(Ordering::Relaxed))
}
