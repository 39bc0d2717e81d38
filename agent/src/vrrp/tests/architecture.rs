//! The architecture invariant: the state machine does no I/O and never reads the clock.

/// Every non-test source file of the module.
const SOURCES: [(&str, &str); 7] = [
    ("mod.rs", include_str!("../mod.rs")),
    ("config.rs", include_str!("../config.rs")),
    ("event.rs", include_str!("../event.rs")),
    ("instance.rs", include_str!("../instance.rs")),
    ("stats.rs", include_str!("../stats.rs")),
    ("sync_group.rs", include_str!("../sync_group.rs")),
    ("timer.rs", include_str!("../timer.rs")),
];

#[test]
fn no_io_in_the_state_machine() {
    // Split so this file does not match itself if it is ever added to SOURCES.
    let forbidden = [
        ["tokio", "::"].concat(),
        ["aya", "::"].concat(),
        ["libc", "::"].concat(),
        ["Instant", "::now"].concat(),
        ["SystemTime", "::"].concat(),
        ["std::", "net::Udp"].concat(),
        ["std::", "net::Tcp"].concat(),
        ["std::", "fs"].concat(),
        ["std::", "thread"].concat(),
    ];
    for (file, text) in SOURCES {
        for word in &forbidden {
            // The module docs name the invariant in prose; only code lines count.
            let offending = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| line.contains(word.as_str()));
            assert!(
                !offending,
                "vrrp/{file} uses `{word}`, breaking the sans-IO invariant"
            );
        }
    }
}
