"""The code sandbox: isolation facts, refusal without isolation, and hostile programs.

Every hostile program runs through the public `run_tests` in the real bubblewrap sandbox; each must come back
as a failed test, and the host is then checked from outside (files, processes, sockets, descriptors).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import environments
from environments.code import Limits, Sandbox, SandboxUnavailable, get_sandbox, run_tests
from environments.code.sandbox import SandboxFailed

CONTAINED = [{"input": "", "output": "contained\n"}]  # no hostile program below prints this


def verdict(score) -> dict:
    [v] = score.details["verdicts"]
    return v


# Hostile programs first write their PID namespace's id to stderr: afterwards no host process may be in it.
ANNOUNCE = "import os, sys\nsys.stderr.write(os.readlink('/proc/self/ns/pid') + '\\n')\nsys.stderr.flush()\n"


def processes_left(score) -> list[int]:
    """Host processes still in the PID namespace that the judged program announced (when we may look)."""
    namespace = re.search(r"pid:\[\d+\]", verdict(score)["stderr"])[0]
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "ns" / "pid") == namespace:
                found.append(int(entry.name))
        except OSError:  # exited meanwhile, or not ours to look at
            continue
    return found


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# -- isolation ------------------------------------------------------------------------------------------
def test_a_program_sees_only_its_own_namespaces_and_a_read_only_root():
    program = r"""
import json, os
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
writable = []
for path in ("/x", "/usr/x", "/code/x", "/dev/x", "/tmp/x"):
    try:
        open(path, "w").close()
        writable.append(path)
    except OSError:
        pass
print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "uid": os.getuid(), "caps": status["CapEff"].strip(),
                  "seccomp": status["Seccomp"].strip(), "nnp": status["NoNewPrivs"].strip(),
                  "root": sorted(os.listdir("/")), "writable": writable, "cwd": os.getcwd(),
                  "hostname": os.uname().nodename, "env": sorted(os.environ)}))
"""
    ex = get_sandbox().run(("/usr/bin/python3", "-s", "/code/main.py"), Limits(), files={"main.py": program.encode()})
    seen = json.loads(ex.stdout)
    assert (seen["pid"], seen["ppid"], seen["uid"]) == (1, 0, 65534)
    assert int(seen["caps"], 16) == 0 and seen["seccomp"] == "2" and seen["nnp"] == "1"
    assert set(seen["root"]) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "tmp", "code"}
    assert seen["writable"] == ["/tmp/x"] and seen["cwd"] == "/tmp" and seen["hostname"] == "sandbox"
    assert seen["env"] == ["HOME", "LANG", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED"]  # none of ours


def test_refuses_to_start_without_bubblewrap():
    with pytest.raises(SandboxUnavailable, match="bubblewrap not found at '/nonexistent/bwrap'"):
        Sandbox("/nonexistent/bwrap")
    with pytest.raises(SandboxUnavailable, match="never run without a sandbox"):
        environments.make("code", bwrap="/nonexistent/bwrap")


NO_ISOLATION = """#!/usr/bin/python3
# bubblewrap with its namespaces, seccomp and uid mapping taken out: the filesystem view alone
import os, sys
takes = {"--unshare-all": 0, "--unshare-user": 0, "--disable-userns": 0, "--as-pid-1": 0,
         "--hostname": 1, "--uid": 1, "--gid": 1, "--seccomp": 1}
args, rest = [], iter(sys.argv[1:])
for arg in rest:
    if arg == "--":
        args += [arg, *rest]
    elif arg in takes:
        for _ in range(takes[arg]):
            next(rest)
    else:
        args.append(arg)
os.execv("/usr/bin/bwrap", ["bwrap", *args])
"""


@pytest.fixture
def public_dir():
    """A host directory anyone may read (under /tmp, outside pytest's private tmp_path)."""
    with tempfile.TemporaryDirectory() as path:
        os.chmod(path, 0o755)
        yield Path(path)


def test_refuses_a_bwrap_that_does_not_isolate(public_dir):
    """A bwrap that runs programs but without the isolation: the probe inside catches every gap."""
    fake = public_dir / "bwrap"
    fake.write_text(NO_ISOLATION)
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable, match="does not isolate programs: it is pid .* it reached 127.0.0.1.*"
                                                 "Refusing to run code") as refused:
        Sandbox(str(fake))
    assert "seccomp mode is 0" in str(refused.value)


def test_a_sandbox_bubblewrap_cannot_build_is_an_error_not_a_verdict():
    with pytest.raises(SandboxFailed, match="bwrap: Can't find source path /nonexistent/image"):
        get_sandbox().run(("/usr/bin/true",), Limits(), image=("/nonexistent/image",))


def test_a_dying_verifier_takes_its_sandboxes_along():
    """A verify worker killed mid-run (as the server does to a hung pool) leaves no sandbox running."""
    marker = f"42.{os.getpid()}"
    script = f"""
import os, threading
from environments.code import Limits, get_sandbox
sandbox = get_sandbox()
threading.Timer(1.0, os._exit, (0,)).start()
sandbox.run(("/usr/bin/sleep", "{marker}"), Limits(timeout_s=60))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:  # SIGKILL is delivered, not waited for
        time.sleep(0.05)
    assert processes_with(marker) == []


def test_sandboxes_on_the_machine_never_outnumber_the_cores():
    """Two pools in one process share the machine-wide slots: 4 sleepers on 2 slots take two rounds."""
    a, b = Sandbox(cores=2), Sandbox(cores=2)
    sleeper = {"main.py": b"import time; time.sleep(0.6)"}
    start = time.perf_counter()
    futures = [sb.pool.submit(sb.run, ("/usr/bin/python3", "-S", "/code/main.py"), Limits(), files=sleeper)
               for sb in (a, b, a, b)]
    assert all(f.result().exit_code == 0 for f in futures)
    assert time.perf_counter() - start >= 1.2


# -- hostile programs: each contained, reported as a failed test, the host unaffected ---------------------
def test_fork_bomb():
    program = ANNOUNCE + "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    score = run_tests(program, CONTAINED, timeout_s=1)
    assert not score.accepted and verdict(score)["verdict"] == "timeout"
    assert processes_left(score) == []  # the whole PID namespace went down with it


def test_infinite_loop():
    score = run_tests("while True:\n    pass\n", CONTAINED, timeout_s=1)
    assert not score.accepted and verdict(score)["verdict"] == "timeout"
    assert verdict(score)["seconds"] < 3


def test_memory_balloon():
    program = "blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n"
    score = run_tests(program, CONTAINED, memory_mb=256)
    assert not score.accepted and verdict(score)["verdict"] == "memory"
    assert "MemoryError" in verdict(score)["stderr"]


def test_writing_outside_the_work_directory(public_dir):
    target = public_dir / "written-by-sandbox"
    public_dir.chmod(0o777)  # even a directory anyone may write to is out of reach: it is not in the sandbox
    program = f"""
for path in ({str(target)!r}, "/usr/lib/pwned", "/code/main.py", "/etc/cron.d/pwned", "/pwned", "/dev/pwned"):
    try:
        open(path, "w").write("pwned")
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, type(exc).__name__)
"""
    score = run_tests(program, CONTAINED)
    assert not score.accepted and verdict(score)["verdict"] == "wrong_answer"
    assert "WROTE" not in verdict(score)["got"] and verdict(score)["got"].count("refused") == 6
    assert not target.exists()


def test_reading_host_files(public_dir):
    secret = public_dir / "secret.txt"
    secret.write_text("host secret")
    secret.chmod(0o644)  # readable by anyone on the host, still invisible inside
    paths = [str(secret), "/etc/shadow", "/etc/passwd", str(Path.home() / ".bashrc"), __file__,
             str(Path(environments.__file__).parent.parent / "pyproject.toml")]
    program = f"""
import os
for path in {paths!r}:
    try:
        open(path).read()
        print("READ", path)
    except OSError as exc:
        print("hidden", type(exc).__name__)
print("home:", os.path.exists({str(Path.home())!r}) and os.listdir({str(Path.home())!r}))
"""
    score = run_tests(program, CONTAINED)
    got = verdict(score)["got"]
    assert not score.accepted and "READ" not in got and got.count("hidden") == len(paths)
    assert "home: False" in got


def test_opening_sockets():
    listener = socket.create_server(("127.0.0.1", 0))  # stands for the environment server's port
    listener.setblocking(False)
    port = listener.getsockname()[1]
    program = f"""
import socket
import subprocess
import sys
for family, address in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_INET, ("1.1.1.1", 53)),
                        (socket.AF_INET6, ("::1", {port}))):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(address)
        print("CONNECTED", address)
    except OSError as exc:
        print("blocked", exc.errno)
"""
    try:
        score = run_tests(program, CONTAINED)
        got = verdict(score)["got"]
        assert not score.accepted and "CONNECTED" not in got and got.count("blocked") == 3
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached it
    finally:
        listener.close()


def test_subprocesses_that_outlive_the_test():
    marker = f"31.{os.getpid()}"  # a sleep argument nothing else on the host uses
    program = f"""
import os, subprocess
subprocess.Popen(["/usr/bin/sleep", "{marker}"], start_new_session=True)
if os.fork() == 0:  # a double-forked daemon
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
print("spawned")
"""
    score = run_tests(program, CONTAINED)
    assert not score.accepted and verdict(score)["got"].strip() == "spawned"
    assert processes_with(marker) == []


def test_flooding_stdout():
    score = run_tests("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", CONTAINED)
    assert not score.accepted and verdict(score)["verdict"] == "output_limit"


def test_sleeping_past_the_timeout():
    start = time.perf_counter()
    score = run_tests("import time\ntime.sleep(60)\nprint('contained')\n", CONTAINED, timeout_s=1)
    assert not score.accepted and verdict(score)["verdict"] == "timeout"
    assert time.perf_counter() - start < 5


def test_killing_its_parent():
    program = f"""
import os, signal
for pid in (os.getppid(), 1, {os.getpid()}, -1):  # its parent is outside: pid 0 is its own process group
    try:
        os.kill(pid, signal.SIGKILL)
        print("signalled", pid)
    except OSError as exc:
        print("refused", pid, exc.errno)
print("still here")
"""
    score = run_tests(program, CONTAINED)
    got = verdict(score)["got"]
    assert not score.accepted and "still here" in got
    assert f"refused {os.getpid()}" in got  # this process is not even visible from inside
    assert get_sandbox().run(("/usr/bin/true",), Limits()).exit_code == 0  # and the sandbox still works


def test_leaving_zombies():
    program = ANNOUNCE + "import time\nfor _ in range(20):\n    if os.fork() == 0:\n        os._exit(0)\n" \
                         "time.sleep(0.2)\nprint('left them')\n"
    score = run_tests(program, CONTAINED)
    assert not score.accepted and verdict(score)["got"].strip() == "left them"
    assert processes_left(score) == []


def test_exhausting_file_descriptors():
    ours = len(os.listdir("/proc/self/fd"))
    program = "import os\nfds = []\nwhile True:\n    fds.append(os.open('/dev/null', os.O_RDONLY))\n"
    score = run_tests(program, CONTAINED)
    assert not score.accepted and verdict(score)["verdict"] == "runtime_error"
    assert "Too many open files" in verdict(score)["stderr"]
    assert len(os.listdir("/proc/self/fd")) == ours  # every memory file of the run was closed here


def test_kernel_interfaces_are_denied():
    program = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, call in (("ptrace", lambda: libc.ptrace(0, 0, None, None)), ("unshare", lambda: libc.unshare(0x10000000)),
                   ("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))):
    result = call()
    print(name, result, os.strerror(ctypes.get_errno()))
"""
    score = run_tests(program, CONTAINED)
    got = verdict(score)["got"]
    assert got.count("-1 Operation not permitted") == 3, got


def test_many_hostile_programs_at_once_leave_the_host_alone():
    """Hostile programs judged concurrently from several threads: each contained, none affects another."""
    programs = {"loop": ANNOUNCE + "while True: pass\n", "ok": ANNOUNCE + "print('contained')\n",
                "fork": ANNOUNCE + "while True:\n    try: os.fork()\n    except OSError: pass\n"}
    results = {}

    def judge(name: str) -> None:
        results[name] = run_tests(programs[name], CONTAINED, timeout_s=1)

    threads = [threading.Thread(target=judge, args=(name,)) for name in programs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {name: verdict(score)["verdict"] for name, score in results.items()} == {
        "loop": "timeout", "fork": "timeout", "ok": "pass"}
    assert processes_left(results["loop"]) == processes_left(results["fork"]) == []
