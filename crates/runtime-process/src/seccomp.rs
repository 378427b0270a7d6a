//! The seccomp filter every sandbox runs under: the system calls no development
//! workspace needs and that widen the kernel surface it can reach (kernel
//! keyrings, eBPF, perf events, userfaultfd, modules, kexec, reboot, swap,
//! mounts, file handles, joining namespaces, the clock, the kernel log) fail
//! with `EPERM`; everything else is allowed. bwrap loads it (`--seccomp FD`)
//! just before it executes the app, so its own set-up is not affected.
//!
//! Why a deny list and not an allow list: workspaces run arbitrary developer
//! tools (compilers, debuggers, language runtimes), whose syscalls an allow
//! list would have to chase; Docker's default profile is a deny list of the
//! same kind. The program is compiled with `seccompiler` (Firecracker's, pure
//! Rust, no libseccomp) and written once per start of the runtime.

use std::collections::BTreeMap;
use std::path::Path;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

/// The refused system calls, by name (for the docs and tests) and number.
pub fn refused() -> Vec<(&'static str, i64)> {
    let mut calls = vec![
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("keyctl", libc::SYS_keyctl),
        ("bpf", libc::SYS_bpf),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("reboot", libc::SYS_reboot),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("acct", libc::SYS_acct),
        ("quotactl", libc::SYS_quotactl),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("open_tree", libc::SYS_open_tree),
        ("move_mount", libc::SYS_move_mount),
        ("fsopen", libc::SYS_fsopen),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fspick", libc::SYS_fspick),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("setns", libc::SYS_setns),
        ("syslog", libc::SYS_syslog),
        ("settimeofday", libc::SYS_settimeofday),
        ("clock_settime", libc::SYS_clock_settime),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("adjtimex", libc::SYS_adjtimex),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([("iopl", libc::SYS_iopl), ("ioperm", libc::SYS_ioperm)]);
    calls
}

/// The filter as the kernel's BPF program, in the bytes `--seccomp` reads.
pub fn program() -> Result<Vec<u8>, seccompiler::Error> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        refused().into_iter().map(|(_, nr)| (nr, vec![])).collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(seccompiler::Error::Backend)?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(seccompiler::Error::Backend)?;
    let bpf: BpfProgram = filter.try_into().map_err(seccompiler::Error::Backend)?;
    Ok(bpf
        .iter()
        .flat_map(|i| {
            let mut b = Vec::with_capacity(8);
            b.extend_from_slice(&i.code.to_ne_bytes());
            b.push(i.jt);
            b.push(i.jf);
            b.extend_from_slice(&i.k.to_ne_bytes());
            b
        })
        .collect())
}

/// Writes the program to `path` (root's alone), replacing what was there.
pub fn write(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = program().map_err(std::io::Error::other)?;
    let tmp = path.with_extension("bpf.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_program_is_whole_instructions_and_refuses_each_call() {
        let bytes = super::program().unwrap();
        assert_eq!(bytes.len() % 8, 0);
        // A check per refused call at least, plus the architecture check.
        assert!(bytes.len() / 8 > super::refused().len(), "{}", bytes.len());
    }
}
