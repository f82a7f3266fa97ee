//! Process set-up shared by both programs.

/// Raises the soft open-file limit to the hard one, and logs what it is:
/// both programs hold a descriptor (or `per`) for each of their `what`
/// (registry clients, peer chats), and many systems start at a soft 1,024.
pub fn raise_nofile_limit(what: &str, per: u64) {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            log::warn!("cannot read the open-file limit");
            return;
        }
        if lim.rlim_cur >= lim.rlim_max {
            log::info!(
                "open-file limit: {} (about {} {what})",
                lim.rlim_cur,
                lim.rlim_cur / per
            );
            return;
        }
        let old = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
            log::info!(
                "raised the open-file limit from {old} to {} (about {} {what})",
                lim.rlim_cur,
                lim.rlim_cur / per
            );
        } else {
            log::warn!(
                "cannot raise the open-file limit above {old}: at most about {} {what}",
                old / per
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (what, per);
}

/// This machine's host name ("localhost" when it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
