//! Reading a statement's values the way keepalived does (one argument, integers in a range,
//! `<TIMER>` seconds, optional `<BOOL>`), reporting what is invalid.

use super::super::parse::{Stmt, Word, join};
use super::{Conv, Micros, SECOND};

impl Conv<'_> {
    /// The single argument of `stmt`; an error if it has none or more.
    pub(super) fn value<'w>(&mut self, stmt: &'w Stmt) -> Option<&'w Word> {
        match stmt.args() {
            [w] => Some(w),
            [] => {
                self.error(stmt.loc(), format!("`{}` needs a value", stmt.keyword()));
                None
            }
            [_, extra, ..] => {
                self.error(
                    extra.loc,
                    format!(
                        "`{}`: expected one value, got `{}`",
                        stmt.keyword(),
                        join(stmt.args())
                    ),
                );
                None
            }
        }
    }

    pub(super) fn int(
        &mut self,
        stmt: &Stmt,
        range: core::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let w = self.value(stmt)?;
        match w.text.parse::<i64>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    w.loc,
                    format!(
                        "`{} {}`: expected an integer in {}..={}",
                        stmt.keyword(),
                        w.text,
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// keepalived's `<TIMER>`: seconds with up to 6 decimals, at most `max` seconds.
    pub(super) fn seconds(&mut self, stmt: &Stmt, max: u64) -> Option<Micros> {
        let w = self.value(stmt)?;
        match parse_seconds(&w.text) {
            Some(us) if us <= max * SECOND => Some(us),
            _ => {
                self.error(
                    w.loc,
                    format!(
                        "`{} {}`: expected seconds in 0..={max} (fractions allowed, e.g. 0.5)",
                        stmt.keyword(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// keepalived's optional `<BOOL>`: absent means true.
    pub(super) fn flag(&mut self, stmt: &Stmt) -> Option<bool> {
        let Some(w) = stmt.args().first() else {
            return Some(true);
        };
        match w.text.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => {
                self.error(
                    w.loc,
                    format!(
                        "`{} {}`: expected on|off|true|false|yes|no",
                        stmt.keyword(),
                        w.text
                    ),
                );
                None
            }
        }
    }
}

/// `"1"`, `"0.5"`, `"2.71828"` → microseconds; more than 6 decimals is refused.
fn parse_seconds(text: &str) -> Option<Micros> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u64 = format!("{frac:0<6}").parse().ok()?;
    whole.checked_mul(SECOND)?.checked_add(frac)
}

/// Microseconds as keepalived writes them: `1`, `0.1`, `2.5`.
pub(super) fn seconds_text(us: Micros) -> String {
    let whole = us / SECOND;
    let frac = us % SECOND;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::{parse_seconds, seconds_text};

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1"), Some(1_000_000));
        assert_eq!(parse_seconds("0.1"), Some(100_000));
        assert_eq!(parse_seconds(".25"), Some(250_000));
        assert_eq!(parse_seconds("2.000001"), Some(2_000_001));
        assert_eq!(parse_seconds("2.0000001"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("."), None);
        assert_eq!(parse_seconds("1s"), None);
        assert_eq!(seconds_text(100_000), "0.1");
        assert_eq!(seconds_text(3_000_000), "3");
    }
}
