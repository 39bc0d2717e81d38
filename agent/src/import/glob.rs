//! The little of glob(3) that keepalived's `include` uses: `*`, `?` and `[…]` (with `!` or
//! `^` to negate, and ranges) within one path component. As glob(3), a wildcard does not
//! match a leading `.`, and the matches come out sorted.

use std::path::{Component, Path, PathBuf};

/// Whether `pattern` has a wildcard (and so may match nothing).
pub(super) fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The files matching `pattern`, sorted. Unreadable directories match nothing.
pub(super) fn matches(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = component.as_os_str().to_string_lossy();
        if !matches!(component, Component::Normal(_)) || !has_wildcards(&part) {
            for path in &mut found {
                path.push(component);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let listing = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(listing) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| fnmatch(&part, name))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found
}

/// Whether `name` matches the one-component `pattern`.
pub(super) fn fnmatch(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|skip| match_from(&p[1..], &n[skip..])),
        Some('?') => !n.is_empty() && match_from(&p[1..], &n[1..]),
        Some('[') => match (class(&p[1..], n.first().copied()), n.first()) {
            (Some((true, len)), Some(_)) => match_from(&p[1 + len..], &n[1..]),
            (Some((false, _)), _) | (Some(_), None) => false,
            // No closing `]`: a literal `[`.
            (None, _) => n.first() == Some(&'[') && match_from(&p[1..], &n[1..]),
        },
        Some(c) => n.first() == Some(c) && match_from(&p[1..], &n[1..]),
    }
}

/// A `[…]` class after its `[`: whether `c` is in it, and how many pattern characters it
/// takes (through the `]`); `None` if it is not closed.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let negate = matches!(p.first(), Some('!' | '^'));
    let mut i = usize::from(negate);
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= c.is_some_and(|c| p[i] <= c && c <= p[i + 2]);
            i += 3;
        } else {
            hit |= c == Some(p[i]);
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn patterns() {
        assert!(fnmatch("*.conf", "a.conf"));
        assert!(!fnmatch("*.conf", ".hidden.conf"));
        assert!(!fnmatch("*.conf", "a.conf.bak"));
        assert!(fnmatch("vi_?.conf", "vi_1.conf"));
        assert!(fnmatch("[ab]*.conf", "b2.conf"));
        assert!(!fnmatch("[!ab]*.conf", "b2.conf"));
        assert!(fnmatch("[0-9].conf", "7.conf"));
        assert!(fnmatch("[x", "[x"));
    }
}
