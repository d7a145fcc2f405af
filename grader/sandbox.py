"""Run a submission's cells in a sandbox: bubblewrap namespaces plus resource limits plus a watchdog.

What the submission can see: the Python installation and the virtual environment (read-only), a
view of the `utils` package in which the lesson's answers are withheld (grader.view; read-only), the
runner, and its own empty scratch folder, /tmp and /dev/shm (size-capped tmpfs in the sandbox's own
memory, nothing on the host's disk; /scratch is its working directory and HOME). Not the
grader package (the answer key), the instructor's secret, solutions/, the recorded expectations, the
gradebook, other students' files or the instructor's home. No network (its own network namespace has only a loopback),
its own PID namespace (every process it starts dies with it), no capabilities.

Limits: wall time for the whole submission (the watchdog kills the sandbox) and per cell (the runner
interrupts the cell); address space; open files; file size (which also caps stdout/stderr, written
to size-limited files); processes (RLIMIT_NPROC, and the watchdog, since rlimits do not bind root);
disk (the watchdog adds up the allocated blocks of its writable folders, deleted files still open and
memfd files, and stops it past its quota); memory for all its processes together (resident sizes plus
memfd files). The watchdog walks without recursion and stops a sandbox it cannot measure; whatever
happens, the sandbox is killed when its run ends.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
UTILS = Path(find_spec("utils").origin).resolve().parent  # found, not imported: importing it imports torch


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 600.0
    cell_seconds: float = 120.0
    memory_bytes: int = 4 * 2**30
    file_bytes: int = 64 * 2**20
    scratch_bytes: int = 256 * 2**20
    processes: int = 64
    open_files: int = 256
    threads: int = 1  # torch/OpenMP threads inside the sandbox (the grader runs several sandboxes at once)


@dataclass
class Run:
    """What came back from a sandboxed run: the runner's event lines and why it ended."""

    events: str
    status: str  # finished | timeout | killed | crashed
    detail: str = ""


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None


WRITABLE = ("scratch", "tmp", "dev/shm")  # the only writable folders inside, each a size-capped tmpfs


def bwrap_command(utils_view: Path, limits: Limits) -> list[str]:
    """bubblewrap arguments: a new root with read-only system and Python, and only size-capped tmpfs writable.

    The writable folders live in the sandbox's own memory, not on the host's disk: the kernel enforces
    their size (whatever the submission does: sparse, preallocated or unlinked files), and the watchdog
    adds them up against the quota.
    """
    python_prefixes = sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()})
    size = str(limits.scratch_bytes + 4 * 2**20)  # a little over the quota, so that the watchdog sees the breach
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--clearenv",
           # The private /tmp comes before the binds: a course or venv that lives under /tmp stays visible.
           "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
           "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
    for system in ("/usr", "/etc/ld.so.cache", "/etc/alternatives", "/etc/ssl/certs"):
        if Path(system).exists():
            cmd += ["--ro-bind", system, system]
    for name in ("lib", "lib64", "bin", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            cmd += ["--symlink", os.readlink(target), str(target)]
        elif target.exists():
            cmd += ["--ro-bind", str(target), str(target)]
    for prefix in python_prefixes:
        cmd += ["--ro-bind", str(prefix), str(prefix)]
    cmd += ["--ro-bind", str(utils_view), str(UTILS), "--ro-bind", str(RUNNER), "/opt/grader/runner.py",
            "--perms", "1777", "--size", size, "--tmpfs", "/scratch", "--chdir", "/scratch"]
    return cmd


def environment(limits: Limits) -> dict[str, str]:
    threads = str(limits.threads)
    return {"HOME": "/scratch", "TMPDIR": "/scratch", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "TORCH_NUM_THREADS": threads}


def apply_limits(limits: Limits) -> None:
    """Runs in the child before exec: the limits hold for everything the submission starts."""
    for kind, value in ((resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_FSIZE, limits.file_bytes),
                        (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_NPROC, limits.processes),
                        (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(kind, (value, value))


def run(job: str, limits: Limits, sandboxed: bool = True, utils_view: str | None = None) -> Run:
    """Run the runner on `job` (JSON text) in a fresh sandbox; returns its events, whatever happens.

    `utils_view` is the copy of utils the submission sees (grader.view, answers withheld); None: utils itself.
    """
    view = Path(utils_view) if utils_view else UTILS
    private = Path(tempfile.mkdtemp(prefix="grader-"))
    try:
        scratch = private / "scratch"
        scratch.mkdir()
        os.chmod(scratch, 0o777)  # the sandbox runs as nobody
        events_path, output_path = private / "events.jsonl", private / "output.txt"
        python = str(Path(sys.executable).absolute())
        with events_path.open("w") as events, output_path.open("w") as output:
            # The runner writes its events to this inherited descriptor, whatever number it got: a fixed
            # number would race with other grading threads opening and closing files.
            fd = str(events.fileno())
            if sandboxed:
                cmd = [*bwrap_command(view, limits),
                       *sum((["--setenv", k, v] for k, v in environment(limits).items()), []),
                       python, "-I", "/opt/grader/runner.py", fd]
                # bwrap's own init (pid 1 inside) keeps the environment it was started with: give it nothing.
                cwd, env = None, {"PATH": "/usr/bin:/bin"}
            else:
                cmd, cwd, env = [python, "-I", str(RUNNER), fd, str(view.parent)], scratch, {
                    **environment(limits), "HOME": str(scratch), "TMPDIR": str(scratch)}
            # The job goes through a pipe: once the runner has read it, nothing in the sandbox can read it again.
            process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT, cwd=cwd,
                                       env=env, pass_fds=(events.fileno(),), preexec_fn=lambda: apply_limits(limits),
                                       start_new_session=True)
            threading.Thread(target=_send, args=(process, job), daemon=True).start()
            try:
                status, detail = _watch(process, None if sandboxed else scratch, limits)
            finally:
                _kill(process)  # whatever happened while watching, nothing of the submission outlives this run
        text = events_path.read_text(errors="replace")[: limits.file_bytes]
        if status == "finished" and '"event": "done"' not in text:
            tail = output_path.read_text(errors="replace")[-500:].strip()
            status, detail = "crashed", f"the notebook stopped the grader before the end ({_exit_reason(process)})" + (
                f": {tail.splitlines()[-1]}" if tail else "")
        return Run(text, status, detail)
    finally:
        _remove(private)


def _send(process: subprocess.Popen, job: str) -> None:
    """Write the job to the runner's stdin and close it; a runner that died early just never reads it."""
    try:
        process.stdin.write(job.encode())
        process.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _remove(folder: Path) -> None:
    """Delete a run's folder, however deep a submission made it (rm -rf does not recurse on the stack)."""
    subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)


def _exit_reason(process: subprocess.Popen) -> str:
    code = process.returncode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _watch(process: subprocess.Popen, scratch: Path | None, limits: Limits) -> tuple[str, str]:
    """Wait for the sandbox; stop it when it breaks a limit only a watchdog sees, or when it cannot be measured.

    `scratch` is the host folder of an unsandboxed run; a sandboxed run's writable folders are read
    through its first process's root (/proc/PID/root).
    """
    deadline = time.monotonic() + limits.wall_seconds
    while process.poll() is None:
        try:
            reason = _breach(process, scratch, limits, deadline)
        except Exception as error:  # noqa: BLE001 - a sandbox that defeats measuring is stopped, not trusted
            reason = ("killed", f"the notebook could not be measured ({type(error).__name__}) and was stopped")
        if reason:
            return reason
        time.sleep(0.1)
    return "finished", ""


def _breach(process: subprocess.Popen, scratch: Path | None, limits: Limits, deadline: float) -> tuple[str, str] | None:
    if time.monotonic() > deadline:
        return "timeout", f"the notebook ran past its {limits.wall_seconds:.0f} s limit and was stopped"
    processes = _descendants(process.pid)
    if len(processes) > limits.processes:
        return "killed", f"the notebook started more than {limits.processes} processes and was stopped"
    folders = [scratch] if scratch else [Path(f"/proc/{pid}/root/{name}") for pid in _inside(processes[:1])
                                         for name in WRITABLE]
    hidden_disk, hidden_memory = _open_unnamed_bytes(processes)
    if sum(_folder_bytes(f) for f in folders) + hidden_disk > limits.scratch_bytes:
        return "killed", (f"the notebook wrote more than {limits.scratch_bytes // 2**20} MB to disk (its folder, /tmp "
                          "and /dev/shm together) and was stopped")
    if _resident_bytes(processes) + hidden_memory > limits.memory_bytes:
        return "killed", (f"the notebook's processes used more than {limits.memory_bytes // 2**20} MB of memory "
                          "together and were stopped")
    return None


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


MAX_ENTRIES = 200_000  # more files and folders than any lesson makes: counted as a breach, never walked forever


def _folder_bytes(folder: Path) -> int:
    """Space used under `folder` (allocated blocks, so sparse and preallocated files count), walked without recursion.

    Only its own filesystem counts: what is bound on top of it (a course or venv under /tmp) is not the submission's.
    """
    try:
        device = os.stat(folder).st_dev
    except OSError:
        return 0
    total, entries, stack = 0, 0, [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as listing:
                for entry in listing:
                    entries += 1
                    if entries > MAX_ENTRIES:
                        return 2**62
                    info = entry.stat(follow_symlinks=False)
                    if info.st_dev != device:
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                    total += max(info.st_blocks * 512, 4096 if is_dir else 0)
                    if is_dir:
                        stack.append(entry.path)
        except OSError:
            continue
    return total


def _inside(processes: list[int]) -> list[int]:
    """Those of `processes` whose root is already the sandbox's (while bwrap starts, its child still sees the host's)."""
    host = os.stat("/")
    found = []
    for pid in processes:
        try:
            root = os.stat(f"/proc/{pid}/root")
        except OSError:
            continue
        if (root.st_dev, root.st_ino) != (host.st_dev, host.st_ino):
            found.append(pid)
    return found


def _open_unnamed_bytes(processes: list[int]) -> tuple[int, int]:
    """(bytes of deleted files still open, bytes of memfd files) held by the sandbox's processes."""
    disk = memory = 0
    for pid in processes:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in descriptors:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                target = os.readlink(path)
                if target.startswith("/memfd:"):
                    memory += os.stat(path).st_blocks * 512
                elif target.endswith(" (deleted)"):
                    disk += os.stat(path).st_blocks * 512
            except OSError:
                continue
    return disk, memory


def _resident_bytes(processes: list[int]) -> int:
    """Memory the sandbox's processes hold together (resident set sizes summed)."""
    page, total = os.sysconf("SC_PAGE_SIZE"), 0
    for pid in processes:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            pass
    return total


def _descendants(pid: int) -> list[int]:
    """The processes that descend from `pid`, parents first (the sandbox's live in their own session and PID namespace)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            parent = int(stat[stat.rindex(b")") + 2:].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found
