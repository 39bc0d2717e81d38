//! CPU affinity for code that runs the XDP program with `BPF_PROG_TEST_RUN` and reads
//! per-CPU state (shared by the kernel tests and the benchmarks).

/// Pins the calling thread to the CPU it is on: `LB_CURSORS` (the WRR positions) is per-CPU
/// and `BPF_PROG_TEST_RUN` runs the program on the caller's CPU, so a test that moved between
/// CPUs would see another CPU's cursor.
pub fn stay_on_this_cpu() {
    // SAFETY: plain syscalls on a zeroed, properly sized `cpu_set_t` owned by this frame.
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(
            cpu >= 0,
            "sched_getcpu: {}",
            std::io::Error::last_os_error()
        );
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(usize::try_from(cpu).unwrap(), &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set),
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}
