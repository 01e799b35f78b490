"""The seccomp filter every sandboxed process runs under, compiled to BPF with libseccomp.

Namespaces already hide the host and the network; this closes kernel interfaces a judged program has no
business touching and that have carried privilege escalations (ptrace, bpf, io_uring, keyrings, mounts,
module loading, new namespaces). Denied calls fail with EPERM instead of killing the process, so a program
that probes them gets an ordinary error. Sockets other than AF_UNIX are refused outright.
"""

from __future__ import annotations

import errno
import functools
import os

DENIED = (
    "acct", "add_key", "adjtimex", "bpf", "chroot", "clock_adjtime", "clock_settime", "delete_module",
    "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "init_module", "io_uring_enter",
    "io_uring_register", "io_uring_setup", "ioperm", "iopl", "kexec_file_load", "kexec_load", "keyctl",
    "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_by_handle_at",
    "open_tree", "perf_event_open", "personality", "pivot_root", "process_vm_readv", "process_vm_writev",
    "ptrace", "quotactl", "reboot", "request_key", "setns", "settimeofday", "swapoff", "swapon", "syslog",
    "umount2", "unshare", "userfaultfd", "vhangup",
)
AF_UNIX = 1


@functools.cache
def bpf() -> bytes:
    """The compiled filter for this machine's architecture (calls of other ABIs are killed by libseccomp's
    default bad-architecture action)."""
    import pyseccomp as sc  # loads libseccomp.so.2 through ctypes: only where a sandbox is built

    flt = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED:
        if sc.resolve_syscall(sc.system_arch(), name) >= 0:  # older kernels' tables lack the newest calls
            flt.add_rule(sc.ERRNO(errno.EPERM), name)
    flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.NE, AF_UNIX))
    fd = os.memfd_create("seccomp")
    try:
        with open(fd, "wb", closefd=False) as out:
            flt.export_bpf(out)
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)
