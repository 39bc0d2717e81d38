//! `vrrp_script`: a tracked script, read before the instances; and a keepalived command line
//! turned into an array (also for `MISC_CHECK`), since vipflip runs commands without a shell.

use super::super::ReportKind;
use super::super::parse::{Loc, Stmt, Word, join};
use super::{Conv, Micros, NO_EQUIVALENT, ScriptOut, Section, UserOut};

/// A `vrrp_script`, converted; its reports wait until it is known to be tracked.
pub(super) struct ScriptDef {
    pub(super) out: ScriptOut,
    pub(super) loc: Loc,
    pub(super) weight: i64,
    pub(super) pending: Vec<(Loc, ReportKind, String, String)>,
}

impl Conv<'_> {
    pub(super) fn script(&mut self, stmt: &Stmt) -> Option<(String, ScriptDef)> {
        let Some(name) = stmt.args().first() else {
            self.error(stmt.loc(), "`vrrp_script` needs a name");
            return None;
        };
        let mut def = ScriptDef {
            out: ScriptOut {
                name: name.text.clone(),
                command: Vec::new(),
                user: None,
                interval: None,
                timeout: None,
                rise: None,
                fall: None,
            },
            loc: stmt.loc(),
            weight: 0,
            pending: Vec::new(),
        };
        let mut script = None;
        for s in stmt.children() {
            match s.keyword() {
                "script" => {
                    if s.args().is_empty() {
                        self.error(s.loc(), "`script` needs a command");
                    } else {
                        script = Some(s);
                    }
                }
                "interval" => def.out.interval = self.positive_seconds(s),
                "timeout" => def.out.timeout = self.positive_seconds(s),
                "rise" => {
                    def.out.rise = self
                        .int(s, 1..=i64::from(u32::MAX))
                        .and_then(|n| u64::try_from(n).ok());
                }
                "fall" => {
                    def.out.fall = self
                        .int(s, 1..=i64::from(u32::MAX))
                        .and_then(|n| u64::try_from(n).ok());
                }
                "weight" => {
                    let words = &s.words;
                    match words.get(1).map(|w| w.text.parse::<i64>()) {
                        Some(Ok(w)) if (-254..=254).contains(&w) => def.weight = w,
                        _ => self.error(
                            s.loc(),
                            format!("`{}`: expected an integer in -254..=254", s.text()),
                        ),
                    }
                    if let Some(extra) = words.get(2).filter(|w| w.text == "reverse") {
                        def.pending.push((
                            extra.loc,
                            ReportKind::NotCarried,
                            s.text(),
                            "vipflip has no reversed tracking; the weight is carried as if not reversed".to_owned(),
                        ));
                    }
                }
                "user" => def.out.user = self.script_user(s, Section::Header),
                "init_fail" => def.pending.push((
                    s.loc(),
                    ReportKind::NotCarried,
                    s.text(),
                    "vipflip starts every script as good until its first `fall` failures"
                        .to_owned(),
                )),
                _ => def.pending.push((
                    s.loc(),
                    ReportKind::NotCarried,
                    s.text(),
                    NO_EQUIVALENT.to_owned(),
                )),
            }
        }
        let Some(script) = script else {
            self.error(
                stmt.loc(),
                format!("vrrp_script {}: no `script`", name.text),
            );
            return None;
        };
        let (command, report) = command(script.args());
        def.out.command = command;
        if let Some((kind, reason)) = report {
            def.pending
                .push((script.loc(), kind, script.text(), reason));
        }
        Some((name.text.clone(), def))
    }

    /// `KEYWORD USER [GROUP]` (`script_user`, a `vrrp_script`'s or a `MISC_CHECK`'s
    /// `user`). keepalived's `:GROUP` (also set the user's supplementary groups) loses the
    /// supplementary groups: vipflip runs a script with its one group, as keepalived does
    /// by default.
    pub(super) fn script_user(&mut self, s: &Stmt, section: Section) -> Option<UserOut> {
        let Some(user) = s.args().first() else {
            self.error(s.loc(), format!("`{}` needs a user name", s.keyword()));
            return None;
        };
        let mut group = s.args().get(1).map(|g| g.text.clone());
        if let Some(g) = group.as_deref().and_then(|g| g.strip_prefix(':')) {
            self.lost(
                s.args()[1].loc,
                section,
                s.args()[1].text.clone(),
                "vipflip runs scripts with one group and no supplementary groups; the group is carried",
            );
            group = (!g.is_empty()).then(|| g.to_owned());
        }
        if s.args().len() > 2 {
            self.lost(
                s.args()[2].loc,
                section,
                join(&s.args()[2..]),
                NO_EQUIVALENT,
            );
        }
        Some(UserOut {
            user: user.text.clone(),
            group,
        })
    }

    fn positive_seconds(&mut self, s: &Stmt) -> Option<Micros> {
        let us = self.seconds(s, 86_400)?;
        if us == 0 {
            self.error(s.loc(), format!("`{}`: must be more than 0", s.text()));
            return None;
        }
        Some(us)
    }
}

/// Characters that need a shell to mean what they say.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', ']', '~', '{', '}', '\n',
];

/// A `vrrp_script`'s `script` as a command array, and what to report about it.
pub(super) fn command(args: &[Word]) -> (Vec<String>, Option<(ReportKind, String)>) {
    let text = join(args);
    let split = if args.len() == 1 {
        split_words(&args[0].text)
    } else {
        Some(args.iter().map(|w| w.text.clone()).collect())
    };
    let shell = text.contains(SHELL_SYNTAX) || text.trim_start().starts_with('!');
    match split {
        Some(words) if !shell && !words.is_empty() => {
            if words[0].starts_with('/') {
                return (words, None);
            }
            let program = words[0].clone();
            let mut command = vec!["/usr/bin/env".to_owned()];
            command.extend(words);
            (
                command,
                Some((
                    ReportKind::Note,
                    format!("`{program}` is not an absolute path: keepalived searched $PATH, so vipflip runs it through /usr/bin/env; better, name the program's absolute path"),
                )),
            )
        }
        _ => (
            vec!["/bin/sh".to_owned(), "-c".to_owned(), text],
            Some((
                ReportKind::NotCarried,
                "uses shell syntax; vipflip runs commands without a shell, so it became [\"/bin/sh\", \"-c\", …]: check it does what you mean".to_owned(),
            )),
        ),
    }
}

/// Splits like the shell (`'…'`, `"…"`, `\`), without expanding anything; `None` if a
/// quote is unbalanced.
fn split_words(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn shell_words() {
        assert_eq!(
            split_words(r#"/bin/check 'a b' "c \"d\"" e\ f"#),
            Some(vec![
                "/bin/check".to_owned(),
                "a b".to_owned(),
                "c \"d\"".to_owned(),
                "e f".to_owned()
            ])
        );
        assert_eq!(split_words("/bin/x 'open"), None);
    }
}
