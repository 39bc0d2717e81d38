//! Running the workspace's tests with a summary that counts skips: libtest's own summary is
//! per test binary, and a test that returned early used to read as `ok`. Tests that need root
//! are `#[ignore = "needs root"]`, so a skip is always visible as `ignored`.

use std::{
    fmt,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// What the test binaries of one `cargo test` said, added up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

impl Totals {
    /// Adds one libtest summary line (`test result: ok. 8 passed; 0 failed; 2 ignored; …`);
    /// other lines are not summaries and add nothing.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.skipped += count,
                _ => {}
            }
        }
    }
}

/// How much of the suite needs root.
#[derive(Debug, Clone, Copy)]
pub struct NeedsRoot {
    /// `#[ignore = "needs root"]` tests.
    pub tests: u64,
    /// Benchmark targets, run once in their smoke mode by `cargo test --all-targets`.
    pub benches: u64,
}

/// Counts the tests that need root (the ignored ones: nothing else is ignored) and the
/// benchmark targets, building the tests to list them.
pub fn count_needing_root(root: &Path) -> anyhow::Result<NeedsRoot> {
    let listed = output(
        root,
        &[
            "test",
            "--workspace",
            "--lib",
            "--bins",
            "--tests",
            "--",
            "--list",
            "--ignored",
        ],
    )?;
    let tests = listed.lines().filter(|l| l.ends_with(": test")).count() as u64;
    let metadata = output(root, &["metadata", "--no-deps", "--format-version", "1"])?;
    let benches = metadata.matches(r#""kind":["bench"]"#).count() as u64;
    Ok(NeedsRoot { tests, benches })
}

/// `cargo test ARGS`, its output passed through as it comes, its summaries added up. Fails
/// (after printing the totals) when cargo does.
pub fn run(root: &Path, args: &[&str]) -> anyhow::Result<Totals> {
    println!("+ cargo test {}", args.join(" "));
    let mut child = Command::new("cargo")
        .arg("test")
        .args(args)
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let stdout = child.stdout.take().context("cargo test's stdout")?;
    let mut totals = Totals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        totals.add_line(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() {
        println!("{totals}");
        bail!("`cargo test {}` failed ({status})", args.join(" "));
    }
    Ok(totals)
}

fn output(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("cargo")
        .args(args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("`cargo {}` failed ({})", args.join(" "), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod unit {
    use super::Totals;

    #[test]
    fn summaries_add_up_and_other_lines_add_nothing() {
        let mut totals = Totals::default();
        for line in [
            "test result: ok. 8 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test tests::x ... ignored, needs root",
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s",
            "running 12 tests",
        ] {
            totals.add_line(line);
        }
        assert_eq!(
            totals,
            Totals {
                passed: 11,
                failed: 1,
                skipped: 2
            }
        );
        assert_eq!(totals.to_string(), "tests: 11 passed, 1 failed, 2 skipped");
    }
}
