//! The seccomp filter of sandboxed commands: system calls a sandboxed
//! command has no business making (kernel modules, mounts, tracing other
//! processes, new namespaces, keyrings, BPF, perf…) fail with `EPERM`;
//! everything else is allowed. Compiled once with `seccompiler` and handed
//! to bubblewrap (`--seccomp FD`), which installs it for the command.
//! This module must not decide *when* the sandbox applies (that is the core's policy).

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Denied system calls (by number for this architecture).
fn denied() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kcmp,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_adjtimex,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_kexec_file_load]);
    calls
}

fn arch() -> Option<TargetArch> {
    if cfg!(target_arch = "x86_64") {
        Some(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(TargetArch::aarch64)
    } else {
        None
    }
}

/// The filter as bubblewrap reads it: the raw `sock_filter` array.
pub fn program() -> Result<&'static [u8], String> {
    static BYTES: std::sync::OnceLock<Result<Vec<u8>, String>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            let arch = arch().ok_or("no seccomp filter for this architecture")?;
            let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
                denied().into_iter().map(|n| (n, vec![])).collect();
            let errno = SeccompAction::Errno(libc::EPERM as u32);
            let filter = SeccompFilter::new(rules, SeccompAction::Allow, errno, arch).map_err(|e| e.to_string())?;
            let prog = BpfProgram::try_from(filter).map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(prog.len() * 8);
            for ins in prog {
                out.extend_from_slice(&ins.code.to_ne_bytes());
                out.push(ins.jt);
                out.push(ins.jf);
                out.extend_from_slice(&ins.k.to_ne_bytes());
            }
            Ok(out)
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    #[test]
    fn compiles_to_a_whole_number_of_instructions() {
        let p = super::program().unwrap();
        assert!(!p.is_empty() && p.len() % 8 == 0);
    }
}
