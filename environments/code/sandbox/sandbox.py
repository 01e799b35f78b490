"""One program run in a bubblewrap sandbox, with resource limits, on a pool sized to the machine.

What a sandboxed program gets:
- its own user, PID, network, IPC, UTS and cgroup namespaces (`--unshare-all`), no way to make more
  (`--disable-userns`), no capabilities, a new session (no terminal to inject into), and the seccomp filter
  of seccomp.py. It runs as an unprivileged uid inside and, when Lachesis runs as root, as `nobody` outside
  too: root's processes are exempt from the process-count limit, an unprivileged owner's are not.
- pid 1 of its namespace (`--as-pid-1`): when it exits, the kernel kills and reaps whatever it left behind
  (daemons, zombies) before bwrap outside sees it go, so nothing outlives it or is orphaned to the host.
- a read-only view of /usr (the interpreters and compilers) and of the language's own paths, its files
  under /code (read-only, copied in from memory), a size-capped private /tmp as working directory, and
  nothing else of the host: no /etc, no home, no project files. The root itself is read-only.
- limits set inside the namespace by util-linux's `prlimit`: CPU seconds, address space, processes (counted
  per sandbox, since each has its own user namespace), open files and file size. stdout and stderr are
  memory files, so the file-size limit caps them too and no pipe has to be drained.
- a wall-clock limit: the program is killed, which takes the whole PID namespace down with it, before `run`
  returns.

A Sandbox refuses to exist if bubblewrap is missing or does not isolate: at construction it runs a probe
inside and checks the namespaces, capabilities and seccomp for itself. It never runs code unsandboxed.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .languages import LANGUAGES
from .seccomp import bpf
from .slots import Slots

NOBODY = 65534  # the overflow uid/gid: the sandbox's owner outside (when we are root) and its user inside
PRLIMIT = "/usr/bin/prlimit"
# Starts bwrap: killed if the thread that started it dies (a verify worker killed mid-run leaves no sandbox
# behind), and as nobody when we are root. Popen(user=...) could switch users too, but it makes CPython fork
# instead of vfork, which costs this process's page tables (tens of ms for a big process) on every run.
SETPRIV = "/usr/bin/setpriv"
DROP_ROOT = (f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
STDERR_KEPT = 16 * 1024  # the tail of stderr that an Execution keeps (the traceback's end is what matters)
ISOLATION = ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--as-pid-1",
             "--cap-drop", "ALL", "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox")
ENVIRONMENT = ("--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
               "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONHASHSEED", "0",
               "--setenv", "PYTHONDONTWRITEBYTECODE", "1")


class SandboxUnavailable(RuntimeError):
    """No working isolation on this machine: code is not run at all."""


class SandboxFailed(RuntimeError):
    """bubblewrap could not set up one sandbox (e.g. the kernel's namespace limit): the program never ran."""


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(default=4.0, gt=0, le=600)  # wall clock; CPU time is capped at its ceiling
    memory_mb: int = Field(default=512, ge=16, le=65536)  # address space (also the stack's limit)
    processes: int = Field(default=32, ge=1, le=4096)  # processes and threads, per sandbox
    open_files: int = Field(default=64, ge=8, le=65536)
    output_kb: int = Field(default=8192, ge=1, le=1 << 20)  # stdout, stderr and any file written
    tmp_mb: int = Field(default=64, ge=1, le=65536)  # the private /tmp


COMPILE_LIMITS = Limits(timeout_s=60, memory_mb=4096, processes=64, open_files=256, output_kb=256 * 1024, tmp_mb=512)


@dataclass(frozen=True)
class Execution:
    exit_code: int | None  # None when killed at the wall-clock limit; 128+N when the program died of signal N
    stdout: bytes
    stderr: bytes  # its last STDERR_KEPT bytes
    seconds: float  # wall clock, sandbox set-up included
    cpu_seconds: float  # user + system time of everything in the sandbox
    timed_out: bool  # killed at the wall-clock limit, or by the kernel at the CPU limit
    output_limited: bool  # stdout reached the output cap


class Sandbox:
    """Runs commands in bubblewrap. `run` blocks its caller; `pool` (one thread per core) is where callers
    submit runs so that many episodes' tests proceed at once off any event loop; `Slots` keeps the number
    of live sandboxes on the machine at the number of cores, whichever process started them."""

    def __init__(self, bwrap: str = "bwrap", *, cores: int | None = None):
        found = shutil.which(bwrap)
        if found is None:
            raise SandboxUnavailable(
                f"bubblewrap not found at {bwrap!r}: install it (Debian: apt-get install bubblewrap); "
                "code is never run without a sandbox")
        for tool in (PRLIMIT, SETPRIV, LANGUAGES["python"].run[0]):
            if not os.access(tool, os.X_OK):
                raise SandboxUnavailable(f"{tool} is missing: the sandbox needs it (Debian: util-linux, python3)")
        try:
            self._seccomp = bpf()
        except (OSError, RuntimeError) as exc:  # pyseccomp raises these when libseccomp.so.2 is absent
            raise SandboxUnavailable(f"no seccomp filter: libseccomp is unavailable ({exc})") from exc
        self.bwrap = found
        self.cores = cores or len(os.sched_getaffinity(0))
        self.slots = Slots(self.cores)
        self.pool = ThreadPoolExecutor(self.cores, thread_name_prefix="sandbox")
        self._launcher = (SETPRIV, "--pdeathsig=KILL", *(DROP_ROOT if os.geteuid() == 0 else ()), "--")
        self._check_isolation()

    # -- running ------------------------------------------------------------------------------------
    def run(self, command: Sequence[str], limits: Limits, *, files: Mapping[str, bytes] | None = None,
            stdin: bytes = b"", out_dir: Path | None = None, out_writable: bool = False,
            image: Sequence[str] = ()) -> Execution:
        """Run `command` with `files` under /code, `stdin` as its standard input, `out_dir` (a host directory
        from `build_dir`) at /out and the `image` paths read-only. Blocks until it exits or is killed."""
        code = {f"/code/{name}": data for name, data in (files or {}).items()}
        memory = {"stdin": stdin, "stdout": b"", "stderr": b"", "seccomp": self._seccomp, "info": b"", **code}
        with _memfds(memory) as fds:
            argv = [*self._launcher, self.bwrap, *self._view(image),
                    *self._mounts(limits, fds, code, out_dir, out_writable),
                    "--seccomp", str(fds["seccomp"]), "--info-fd", str(fds["info"]),
                    "--", *_prlimit(limits), "--", *command]
            passed = [fds[name] for name in ("seccomp", "info", *code)]
            with self.slots.hold():
                start = time.perf_counter()
                proc = subprocess.Popen(argv, stdin=fds["stdin"], stdout=fds["stdout"], stderr=fds["stderr"],
                                        pass_fds=passed, start_new_session=True, env={})
                timed_out = not _exits_within(proc, limits.timeout_s)
                if timed_out:
                    _kill(proc, fds["info"])
                exit_code, cpu_seconds = _reap(proc)
                seconds = time.perf_counter() - start
            cap = limits.output_kb * 1024
            stdout = _read(fds["stdout"], 0, cap)
            err_size = os.fstat(fds["stderr"]).st_size
            stderr = _read(fds["stderr"], max(0, err_size - STDERR_KEPT), STDERR_KEPT)
        if exit_code == 1 and stderr.startswith(b"bwrap: "):  # its own error: not the program's doing
            raise SandboxFailed(stderr.decode(errors="replace").strip())
        # the program is pid 1 inside, which the kernel spares SIGXCPU: the CPU limit kills with SIGKILL
        cpu_killed = exit_code == 128 + signal.SIGKILL and cpu_seconds >= _cpu_limit(limits)
        return Execution(None if timed_out else exit_code, stdout, stderr, seconds, cpu_seconds,
                         timed_out or cpu_killed, len(stdout) >= cap)

    @contextmanager
    def build_dir(self) -> Iterator[Path]:
        """A host directory for a compiler's output (bound at /out), writable by the sandbox's owner."""
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"lachesis-build-{os.getpid()}-{time.monotonic_ns()}"
        path.mkdir(mode=0o700)
        try:
            if os.geteuid() == 0:
                os.chown(path, NOBODY, NOBODY)
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    # -- the bwrap command line ---------------------------------------------------------------------
    def _view(self, image: Sequence[str]) -> list[str]:
        return [*ISOLATION, *ENVIRONMENT, *_host_root(), *(arg for path in image for arg in ("--ro-bind", path, path))]

    def _mounts(self, limits: Limits, fds: Mapping[str, int], code: Mapping[str, bytes], out_dir: Path | None,
                out_writable: bool) -> list[str]:
        args = ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp",
                "--size", str(1 << 20), "--tmpfs", "/dev/shm"]
        for path in code:
            args += ["--ro-bind-data", str(fds[path]), path]
        if out_dir is not None:
            args += ["--bind" if out_writable else "--ro-bind", str(out_dir), "/out"]
        # last: a read-only root and /dev (their submounts, /tmp, /dev/shm and the devices, stay as they are)
        return [*args, "--chdir", "/tmp", "--remount-ro", "/dev", "--remount-ro", "/"]

    # -- refusing to run without isolation ----------------------------------------------------------
    def _check_isolation(self) -> None:
        """Run a probe inside and check, from its own view, that it is contained."""
        with socket.create_server(("127.0.0.1", 0)) as listener:  # a host service it must not reach
            port = listener.getsockname()[1]
            probe = _PROBE.replace("PORT", str(port)).encode()
            try:
                ex = self.run(("/usr/bin/python3", "-S", "/code/probe.py"), Limits(timeout_s=30),
                              files={"probe.py": probe})
            except (OSError, SandboxFailed) as exc:
                raise SandboxUnavailable(f"bubblewrap at {self.bwrap} failed: {exc}") from exc
        if ex.exit_code != 0:
            raise SandboxUnavailable(f"bubblewrap at {self.bwrap} failed (exit code {ex.exit_code}): "
                                     f"{ex.stderr.decode(errors='replace').strip()[-500:]}")
        try:
            seen = json.loads(ex.stdout)
        except ValueError:
            raise SandboxUnavailable(f"the sandbox probe under {self.bwrap} printed {ex.stdout[:200]!r}") from None
        allowed = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "tmp", "code", "out"}
        problems = [
            *([f"it is pid {seen['pid']}, not 1 of a new PID namespace"] if seen["pid"] != 1 else []),
            *([f"it runs as uid {seen['uid']}"] if seen["uid"] != NOBODY else []),
            *([f"it holds capabilities {seen['caps']}"] if int(seen["caps"], 16) != 0 else []),
            *([f"seccomp mode is {seen['seccomp']}, not 2 (filter)"] if seen["seccomp"] != "2" else []),
            *([f"it reached 127.0.0.1:{port}"] if seen["net"] == "connected" else []),
            *([f"it sees host paths {sorted(set(seen['root']) - allowed)}"] if set(seen["root"]) - allowed else []),
        ]
        if problems:
            raise SandboxUnavailable(f"bubblewrap at {self.bwrap} does not isolate programs: {'; '.join(problems)}. "
                                     "Refusing to run code.")


_PROBE = """\
import json, os, socket
def connect():
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
        return "connected"
    except OSError as exc:
        return str(exc)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({"pid": os.getpid(), "uid": os.getuid(), "caps": status["CapEff"].strip(),
                  "seccomp": status["Seccomp"].strip(), "net": connect(), "root": os.listdir("/")}))
"""


def _exits_within(proc: subprocess.Popen, seconds: float) -> bool:
    """Wait for the process to exit, woken by its pidfd the moment it does (Popen.wait with a timeout polls
    with sleeps of up to 50 ms, which would add tens of ms to every run)."""
    fd = os.pidfd_open(proc.pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(seconds * 1000))
    finally:
        os.close(fd)


def _reap(proc: subprocess.Popen) -> tuple[int, float]:
    """The exit code, and the CPU time of bwrap and everything it reaped: the whole sandbox."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait for it again
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _kill(proc: subprocess.Popen, info_fd: int) -> None:
    """Kill a sandbox; once it can be reaped, every process in it is gone.

    Killing the program (pid 1 inside, whose host pid bwrap wrote to the info fd) makes the kernel kill and
    reap the rest of the PID namespace before the program's death is reported to bwrap outside; so when
    bwrap exits, nothing is left. Killing bwrap first would let it exit before that teardown is over. Its
    process group is the fallback, for a bwrap killed before it started the program."""
    try:
        os.kill(json.loads(os.pread(info_fd, 4096, 0))["child-pid"], signal.SIGKILL)
        if _exits_within(proc, 10):
            return
    except (ValueError, KeyError, ProcessLookupError):
        pass
    os.killpg(proc.pid, signal.SIGKILL)


def _cpu_limit(limits: Limits) -> int:
    return math.ceil(limits.timeout_s)


@cache
def _host_root() -> tuple[str, ...]:
    """/usr read-only, and the top-level directories that merged-/usr systems make links into it."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return tuple(args)


def _prlimit(limits: Limits) -> list[str]:
    cpu = _cpu_limit(limits)
    memory = limits.memory_mb << 20
    return [PRLIMIT, f"--cpu={cpu}:{cpu + 1}", f"--as={memory}", f"--stack={memory}", f"--nproc={limits.processes}",
            f"--nofile={limits.open_files}", f"--fsize={limits.output_kb * 1024}", "--core=0"]


@contextmanager
def _memfds(contents: Mapping[str, bytes]) -> Iterator[dict[str, int]]:
    """Anonymous in-memory files holding `contents`, positioned at their start; closed on exit."""
    fds: dict[str, int] = {}
    try:
        for name, data in contents.items():
            fds[name] = fd = os.memfd_create(name.rsplit("/", 1)[-1])
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.lseek(fd, 0, os.SEEK_SET)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def _read(fd: int, offset: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit and (chunk := os.pread(fd, min(limit - size, 1 << 20), offset + size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


@cache
def get_sandbox(bwrap: str = "bwrap") -> Sandbox:
    """This process's sandbox for a bubblewrap path: probed once, its pool shared by every caller."""
    return Sandbox(bwrap)
