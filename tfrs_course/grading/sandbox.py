"""Start a grading worker in a sandbox: :func:`run_worker`.

A worker runs in a single-threaded process of its own: a child forked by the
grading process's template (:mod:`tfrs_course.grading.template`, which has
imported TensorFlow but nothing of the course) or, where that cannot run, a
fresh interpreter (``python -I -m tfrs_course.grading.sandbox CONFIG_JSON``).
It sets up the sandbox, loads the trusted part of the worker, and only then
lets student code near it (:mod:`tfrs_course.grading.worker`).

Always:
- resource limits: CPU seconds, address space (memory), processes, open files,
  file size, no core dumps;
- an empty working directory and a scrubbed environment (set by the caller);
- the worker dies with the process that started it (``PR_SET_PDEATHSIG``).

When started as root on Linux (the kit's own sandbox, written after the way
bubblewrap builds one):
- new mount, network, PID, IPC and UTS namespaces: no network but an
  unconfigured loopback, no shared memory or semaphores of the host, and only
  its own processes in a fresh ``/proc``; when the worker exits, every process it
  started dies with it;
- a new, read-only root file system that holds only the system folders
  (``/usr``, ``/etc``, ``/lib``...), a few devices, the interpreter, the
  virtualenv and the kit's package, each read-only, wherever they are (under
  ``/tmp`` or ``/dev/shm`` too), plus a fresh ``/tmp`` and ``/dev/shm``. Home
  folders, the checkout, ``/run``, ``/var`` and every other writable place of
  the host are simply not there;
- inside that, empty folders over the paths the grader names (solutions,
  autograder tests, submissions, results), over the course copy a wheel carries
  (``tfrs_course/_course``) and, once the trusted drivers are loaded, over the
  kit's modules that answer exercises (see :data:`worker.EXERCISE_HELPERS`);
- the worker runs as an unprivileged uid of its own, used by no other process.

Without root these steps are skipped (an ordinary user cannot create them
here); the worker then runs as the grading user, still in its own process with
limits. The same holds as root in a container that forbids namespaces (Docker's
default drops ``CAP_SYS_ADMIN``): :func:`isolation_problem` builds one sandbox
in a throw-away process to find out, once per grading process, and the grader
then starts its workers without namespaces and says why.
:func:`sandbox_capabilities` reports which protections are in force.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import platform
import resource
import select
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}
# What every program needs from the host, read-only. Merged-/usr systems make
# /bin, /lib and the like symbolic links into /usr; they are recreated as links.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# Each worker gets an unprivileged uid of its own, with no login and no files on the
# system: this base plus the pid of the process that builds its sandbox, which no other
# live process has. So one worker's fork bomb cannot use up another worker's process limit.
WORKER_UID_BASE = 100_000
NO_GROUP = 65534
SANDBOX_NAME = "the kit's own namespace sandbox (pivot_root into a new read-only root)"


@dataclass
class SandboxConfig:
    """What a worker needs: sent to the template as JSON, or on the plain launcher's command line.

    Attributes:
        hide: folders to cover with an empty, unreadable tmpfs.
        cpu_seconds: CPU time limit for the worker.
        memory_bytes: address-space limit.
        max_processes: process (and thread) limit, enforced for the unprivileged user.
        max_file_bytes: largest file the worker may write.
        isolate: use namespaces and drop privileges when running as root.
        lesson: the lesson being graded (its trusted drivers are loaded before student code).
    """

    hide: list[str] = field(default_factory=list)
    cpu_seconds: int = 120
    memory_bytes: int = 6 * 1024**3
    max_processes: int = 256
    max_file_bytes: int = 64 * 1024**2
    isolate: bool = True
    lesson: str = ""


# How long building one sandbox may take before the probe counts it as failed.
PROBE_SECONDS = 60
PROBE_ARGUMENT = "--probe"


def _root_on_linux() -> bool:
    return os.geteuid() == 0 and sys.platform.startswith("linux")


@functools.cache
def isolation_problem() -> str:
    """Why workers cannot get the namespace sandbox here, or "" if they can.

    Being root is not enough: a container may forbid namespaces or mounts. So the
    first call builds one sandbox, exactly as a worker does, in a throw-away
    process (``python -I -m tfrs_course.grading.sandbox --probe``); the answer is
    kept for the life of this process.
    """
    if not _root_on_linux():
        return "not running as root on Linux"
    try:
        probe = subprocess.run(  # noqa: S603 - our own module, no shell
            [sys.executable, "-I", "-m", __name__, PROBE_ARGUMENT],
            capture_output=True, text=True, timeout=PROBE_SECONDS, check=False, cwd="/",
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"building a sandbox took over {PROBE_SECONDS} s"
    if probe.returncode == 0:
        return ""
    lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"building a sandbox failed with exit status {probe.returncode}"


def sandbox_capabilities() -> dict[str, bool]:
    """Which protections a worker gets on this machine, as this user."""
    isolated = not isolation_problem()
    return {
        "separate_process": True,
        "resource_limits": True,
        "unprivileged_user": isolated,
        "no_network": isolated,
        "hidden_paths": isolated,
        "kill_all_descendants": isolated,
        "own_processes_only": isolated,
        "no_shared_memory": isolated,
    }


def sandbox_description() -> str:
    """Which sandbox grading uses here, in words (for the instructor)."""
    problem = isolation_problem()
    if not problem:
        return SANDBOX_NAME
    if not _root_on_linux():
        return "a separate process with resource limits only (not root: no namespaces)"
    return (
        f"a separate process with resource limits only: the namespace sandbox cannot be built here ({problem}), "
        "so student code could read the course's files, tests and reference included, while it runs"
    )


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str, target: str | Path, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(), str(target).encode(), fstype.encode() if fstype else None, flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )  # fmt: skip


def _pivot_root(new_root: str, put_old: str) -> None:
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {platform.machine()}")
    _check(_libc.syscall(number, new_root.encode(), put_old.encode()), "pivot_root")


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (a SIGKILLed grader leaves nothing behind)."""
    if sys.platform.startswith("linux"):
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def die_with(pid: int) -> None:
    """Kill this process when process ``pid`` ends, whichever process is its parent.

    For a grading job forked by multiprocessing's fork server: its parent is that
    server, which outlives the grader for as long as a job runs. Without pidfds (not
    Linux) it watches its parent instead, as :func:`die_with_parent` does.
    """
    if not hasattr(os, "pidfd_open"):
        die_with_parent()
        return
    try:
        watched = os.pidfd_open(pid)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGKILL)

    def watch() -> None:
        select.select([watched], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name=f"die with {pid}", daemon=True).start()


def _bind(old: Path, new: Path, read_only: bool = True) -> None:
    """Mount host path ``old`` (seen under the old root) at ``new``, read-only."""
    if old.is_symlink():
        new.parent.mkdir(parents=True, exist_ok=True)
        if not new.exists() and not new.is_symlink():
            new.symlink_to(os.readlink(old))
        return
    if not old.exists():
        return
    new.parent.mkdir(parents=True, exist_ok=True)
    if old.is_dir():
        new.mkdir(exist_ok=True)
    elif not new.exists():
        new.touch()
    _mount(str(old), new, None, MS_BIND | MS_REC)
    if read_only:
        _mount("none", new, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _needed_paths() -> list[Path]:
    """The interpreter, the virtualenv, the kit's package and the folders they import from, resolved.

    A folder on ``sys.path`` that holds the kit (the checkout, for an editable
    install) is not needed as a whole: only the kit's package inside it is.
    """
    kit = Path(__file__).resolve().parents[1]
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), kit}
    for entry in sys.path:
        folder = Path(entry).resolve() if entry else None
        if folder is not None and folder.is_dir() and folder != Path("/") and folder not in kit.parents:
            paths.add(folder)
    executable = Path(sys.executable).resolve()
    if not any(folder in executable.parents for folder in paths):
        paths.add(executable)
    return sorted(paths, key=lambda path: len(path.parts))


def bundled_course_copies() -> list[str]:
    """The copies of solutions/ and autograder/ a wheel installs inside the package, wherever they are."""
    found = []
    for entry in [*sys.path, str(Path(__file__).resolve().parents[2])]:
        if entry:
            copy = Path(entry) / "tfrs_course" / "_course"
            if copy.is_dir():
                found.append(str(copy.resolve()))
    return sorted(set(found))


def _build_root(config: SandboxConfig) -> None:
    """Switch to a new root that holds only what the worker needs (see the module's docstring)."""
    # Resolved while the host's file system is still "/".
    needed = _needed_paths()
    secrets = sorted({str(Path(path).resolve()) for path in [*config.hide, *bundled_course_copies()]})
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    # A staging tmpfs over /tmp. pivot_root moves it to "/" and the host's /tmp
    # reappears under /oldroot/tmp, so a kit kept under /tmp can be bound from there.
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
    os.chdir("/tmp")
    os.mkdir("oldroot")
    os.mkdir("newroot")
    _mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
    _pivot_root(".", "oldroot")
    os.chdir("/")
    old, new = Path("/oldroot"), Path("/newroot")
    for path in SYSTEM_PATHS:
        _bind(old / path.lstrip("/"), new / path.lstrip("/"))
    (new / "dev").mkdir()
    _mount("tmpfs", new / "dev", "tmpfs", MS_NOSUID, "mode=755,size=64k")
    for device in DEVICES:
        _bind(old / "dev" / device, new / "dev" / device, read_only=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        (new / "dev" / name).symlink_to(target)
    (new / "dev" / "shm").mkdir()
    _mount("tmpfs", new / "dev" / "shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    (new / "proc").mkdir()
    _mount("proc", new / "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    (new / "tmp").mkdir()
    _mount("tmpfs", new / "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=512m")
    # After /tmp and /dev/shm exist: a kit kept under either is bound inside them.
    for path in needed:
        relative = str(path).lstrip("/")
        _bind(old / relative, new / relative)
    for secret in secrets:
        target = new / secret.lstrip("/")
        if target.is_dir():
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=000,size=4k")
        elif target.exists():
            _mount("/newroot/dev/null", target, None, MS_BIND)
    # Leave the old root behind for good: the worker can no longer reach it.
    os.chdir(new)
    _pivot_root(".", ".")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    _mount("none", "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def hide_after_loading(paths: list[Path]) -> None:
    """Cover files and folders the trusted side has already loaded, so student code cannot read them."""
    for path in paths:
        if path.is_dir():
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=000,size=4k")
        elif path.exists():
            _mount("/dev/null", path, None, MS_BIND)


def _isolate(config: SandboxConfig) -> int:
    """Namespaces and the new root. Returns the uid the worker will run as."""
    uid = WORKER_UID_BASE + os.getpid()
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    # The first child is PID 1 of the new PID namespace: when it exits, the kernel
    # kills every process it left behind (a fork bomb's included).
    child = os.fork()
    if child:
        _, status, usage = os.wait4(child, 0)
        if os.WIFEXITED(status):
            os._exit(os.WEXITSTATUS(status))
        number = os.WTERMSIG(status)
        # PID 1 of a namespace ignores SIGXCPU, so the CPU limit ends it with the hard limit's
        # SIGKILL: report that as the CPU limit, so the student is told why.
        if number == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= config.cpu_seconds:
            number = signal.SIGXCPU
        os._exit(128 + number)
    die_with_parent()
    _build_root(config)
    work = Path("/tmp/work")
    work.mkdir()
    os.chown(work, uid, NO_GROUP)
    os.chdir(work)
    return uid


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(NO_GROUP)
    os.setuid(uid)
    die_with_parent()  # a change of uid clears it


def _limit(config: SandboxConfig, isolated: bool) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (config.cpu_seconds, config.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (config.memory_bytes, config.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (config.max_file_bytes, config.max_file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    if isolated:
        # Counted per uid: only meaningful for the worker's own uid, never the grader's.
        resource.setrlimit(resource.RLIMIT_NPROC, (config.max_processes, config.max_processes))


def run_worker(config: SandboxConfig) -> None:
    """Build the sandbox, load the trusted drivers, drop privileges and serve the grader on stdin/stdout.

    What every worker does, in a fresh launcher (:func:`main`) or in a child of the
    template (:mod:`tfrs_course.grading.template`).
    """
    # The grader sets config.isolate only where the sandbox can be built (see isolation_problem).
    isolated = config.isolate and _root_on_linux()
    from tfrs_course.grading import worker

    # The lessons' drivers live in autograder/, which the sandbox never shows: read them first.
    sources = worker.driver_sources()
    uid = _isolate(config) if isolated else None
    # Trusted code is loaded (and the kit's answering modules blocked) before any student code exists.
    trusted = worker.prepare(config.lesson, sources)
    if uid is not None:
        hide_after_loading(worker.exercise_helper_files())
        _drop_privileges(uid)
    _limit(config, isolated)
    worker.main(trusted)


def _probe() -> None:
    """Build one sandbox as a worker would, then exit: 0 if every step worked."""
    _isolate(SandboxConfig())
    os._exit(0)


def main(argv: list[str]) -> None:
    die_with_parent()
    if argv == [PROBE_ARGUMENT]:
        _probe()
    run_worker(SandboxConfig(**json.loads(argv[0])))


def launcher_command(config: SandboxConfig) -> list[str]:
    """The command that starts a sandboxed worker with ``config``."""
    return [sys.executable, "-I", "-m", "tfrs_course.grading.sandbox", json.dumps(asdict(config))]


if __name__ == "__main__":
    main(sys.argv[1:])
