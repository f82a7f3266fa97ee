//! Names a sender gives its files, made safe to save: the last path
//! component only, no control characters or escape sequences, no hidden
//! (leading dot) names, no Windows device names, bounded length; and a
//! name in the download folder that nothing already has.

use std::path::{Path, PathBuf};

/// Longest saved name, in bytes (before ` (N)` is added).
pub const MAX_SAVED_NAME: usize = 120;

const DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "CONIN$",
    "CONOUT$",
];

/// Characters dropped from names: controls (C0, DEL, C1) and the
/// invisible ones that reorder or hide text.
fn unwanted(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The name to save a file offered as `offered` under.
pub fn sanitize(offered: &str) -> String {
    let base = offered.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !unwanted(*c))
        .map(|c| if ":*?\"<>|".contains(c) { '_' } else { c })
        .collect();
    let mut s = cleaned
        .trim()
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
        .to_string();
    if s.is_empty() {
        s = "file".into();
    }
    let stem = s
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    if DEVICES.contains(&stem.as_str()) {
        s.insert(0, '_');
    }
    bound(&s, MAX_SAVED_NAME)
}

/// `s` cut to at most `max` bytes on a character boundary, keeping a short
/// extension.
fn bound(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ext = match s.rfind('.') {
        Some(i) if s.len() - i <= 16 && i > 0 => &s[i..],
        _ => "",
    };
    let mut end = max - ext.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", &s[..end])
}

/// `name`, then `stem (1).ext`, `stem (2).ext`, …: the `n`th candidate.
pub fn candidate(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{} ({n}){}", &name[..i], &name[i..]),
        _ => format!("{name} ({n})"),
    }
}

/// Moves the finished `part` to the first free candidate name in `dir`,
/// never replacing a file: a hard link fails when the name is taken.
pub fn place(part: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    for n in 0..10_000 {
        let path = dir.join(candidate(name, n));
        match std::fs::hard_link(part, &path) {
            Ok(()) => {
                std::fs::remove_file(part)?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                // No hard links here: rename, but only to a free name.
                if path.symlink_metadata().is_ok() {
                    continue;
                }
                log::debug!("hard link {}: {e}; renaming", path.display());
                std::fs::rename(part, &path)?;
                return Ok(path);
            }
        }
    }
    Err(std::io::Error::other("no free name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_made_safe() {
        assert_eq!(sanitize("../../.bashrc"), "bashrc");
        assert_eq!(sanitize("..\\..\\x.txt"), "x.txt");
        assert_eq!(sanitize("CON"), "_CON");
        assert_eq!(sanitize("nul.txt"), "_nul.txt");
        assert_eq!(sanitize("com1"), "_com1");
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m.txt"), "[31mred[0m.txt");
        assert_eq!(sanitize("a\u{202e}txt.exe"), "atxt.exe");
        assert_eq!(sanitize(".."), "file");
        assert_eq!(sanitize(""), "file");
        assert_eq!(sanitize("a:b?.txt"), "a_b_.txt");
        let long = format!("{}.pdf", "é".repeat(200));
        let s = sanitize(&long);
        assert!(s.len() <= MAX_SAVED_NAME && s.ends_with(".pdf"), "{s}");
    }

    #[test]
    fn candidates_number_before_the_extension() {
        assert_eq!(candidate("a.txt", 0), "a.txt");
        assert_eq!(candidate("a.txt", 2), "a (2).txt");
        assert_eq!(candidate("notes", 1), "notes (1)");
    }

    #[test]
    fn place_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "old").unwrap();
        let part = dir.path().join("p.part");
        std::fs::write(&part, "new").unwrap();
        let got = place(&part, dir.path(), "a.txt").unwrap();
        assert_eq!(got, dir.path().join("a (1).txt"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "old"
        );
        assert!(!part.exists());
    }
}
