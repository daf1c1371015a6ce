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
- the worker dies with the process that started it (``PR_SET_PDEATHSIG``);
- on x86_64 and aarch64, a system-call filter (seccomp, with ``PR_SET_NO_NEW_PRIVS``)
  makes the kernel's key-management calls (``add_key``, ``request_key``, ``keyctl``)
  fail with ``EPERM``: keys are not namespaced, so they could carry a hidden test's
  inputs from one worker to the next and outlive grading. Calls through another ABI
  (x32, 32-bit) fail the same way. The filter is installed before student code
  exists and no process can remove it.

When started as root on Linux (the kit's own sandbox, written after the way
bubblewrap builds one):
- new mount, network, PID, IPC and UTS namespaces: no network but an
  unconfigured loopback, no shared memory or semaphores of the host, and only
  its own processes in a fresh ``/proc``;
- PID 1 of that namespace is a small trusted init (this module's code, never the
  student's): it forks the worker, reaps orphans, and exits with the worker's
  status when the worker ends. It runs as an unprivileged uid of its own
  (:data:`INIT_UID`), so the worker can neither signal nor trace it, and it dies with
  the process that started it (``PR_SET_PDEATHSIG``, which student code cannot clear in
  another process). When the init ends, the kernel kills every process in the
  namespace: whatever the worker does (``prctl``, ``setsid``, double forks, ignoring
  signals), nothing it started outlives its grading;
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
import errno
import functools
import json
import os
import platform
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
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
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
# Classic BPF instructions: load a 32-bit word of the system call's data; jumps; return.
BPF_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JUMP_IF_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JUMP_IF_SET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
BPF_RETURN = 0x06  # BPF_RET | BPF_K
SECCOMP_DATA_NR, SECCOMP_DATA_ARCH = 0, 4  # offsets in struct seccomp_data
X32_SYSCALL_BIT = 0x40000000
# The audit architecture a 64-bit process's calls carry, and its numbers for add_key,
# request_key and keyctl.
KEY_SYSCALLS = {"x86_64": (0xC000003E, (248, 249, 250)), "aarch64": (0xC00000B7, (217, 218, 219))}
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
# The sandboxes' inits run as this uid, which no student code ever runs as (workers' uids are
# above WORKER_UID_BASE): a worker cannot signal or trace its init.
INIT_UID = WORKER_UID_BASE - 1
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
        "no_kernel_keys": keyring_filter() is not None,
    }


def sandbox_description() -> str:
    """Which sandbox grading uses here, in words (for the instructor)."""
    problem = isolation_problem()
    if not problem:
        described = SANDBOX_NAME
    else:
        why = (
            "not root: no namespaces"
            if not _root_on_linux()
            else f"the namespace sandbox cannot be built here: {problem}"
        )
        described = (
            f"a separate process with resource limits only ({why}), so while it runs student code could read "
            "the course's files (tests and reference included) and the other submissions, and write to the grades"
        )
    if keyring_filter() is None:
        described += (
            f"; no system-call filter for the kernel's keyring on {platform.machine()} "
            f"({', '.join(KEY_SYSCALLS)} only), so workers could pass data to each other through kernel keys"
        )
    return described


def keyring_filter() -> list[tuple[int, int, int, int]] | None:
    """The seccomp program that refuses the kernel's key-management calls, or None on other architectures.

    Each instruction is (code, jump if true, jump if false, constant). Calls made through
    another ABI than the interpreter's own (x86_64's x32 numbers, or a 32-bit program the
    worker runs) are numbered differently, so they are all refused.
    """
    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in KEY_SYSCALLS or sys.maxsize < 2**32:
        return None
    architecture, numbers = KEY_SYSCALLS[machine]
    refuse = (BPF_RETURN, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)
    program = [(BPF_LOAD_WORD, 0, 0, SECCOMP_DATA_ARCH), (BPF_JUMP_IF_EQUAL, 1, 0, architecture), refuse]
    program.append((BPF_LOAD_WORD, 0, 0, SECCOMP_DATA_NR))
    if machine == "x86_64":
        program += [(BPF_JUMP_IF_SET, 0, 1, X32_SYSCALL_BIT), refuse]
    for number in numbers:
        program += [(BPF_JUMP_IF_EQUAL, 0, 1, number), refuse]
    program.append((BPF_RETURN, 0, 0, SECCOMP_RET_ALLOW))
    return program


class _FilterProgram(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_keyring_filter() -> bool:
    """Refuse the kernel's keyring to this process and every process it starts, for good.

    Returns False where there is no filter for this architecture (see :func:`keyring_filter`).
    Call it while the process has a single thread: the filter applies to the calling thread,
    and to the threads and processes it starts later.
    """
    program = keyring_filter()
    if program is None:
        return False
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = _FilterProgram(len(program), ctypes.addressof(buffer))
    zero = ctypes.c_ulong(0)
    # Required for an unprivileged process, and no later exec may gain privileges either.
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(
        _libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), zero, zero),
        "seccomp filter for the kernel's keyring",
    )
    return True


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


def _exit_as(status: int, used_its_cpu: bool = False) -> None:
    """Exit with a child's wait status: its exit code, or 128 + the signal that killed it."""
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    number = os.WTERMSIG(status)
    # A worker that ignores SIGXCPU is ended by the hard CPU limit's SIGKILL: report
    # that as the CPU limit, so the student is told why.
    if used_its_cpu and number == signal.SIGKILL:
        number = signal.SIGXCPU
    os._exit(128 + number)


def _parent_gone(alive: int) -> bool:
    """Whether the process holding the other end of pipe ``alive`` has exited (the pipe reads as ended)."""
    return bool(select.select([alive], [], [], 0)[0])


def _serve_as_init(worker: int, parent_alive: int, config: SandboxConfig) -> None:
    """PID 1 of the sandbox: reap every orphan, and exit as the worker does. Never returns.

    When this process exits, the kernel kills everything left in the namespace. Of the
    grader's pipes it keeps only the captured-output one, for its own errors: the reply
    pipe ends when the worker's processes do.
    """
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    os.chdir("/")
    # PID 1 gets only the signals it handles from its own namespace; it handles none.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.setgroups([])
    os.setgid(NO_GROUP)
    os.setuid(INIT_UID)
    die_with_parent()  # a change of uid clears it
    if _parent_gone(parent_alive):  # the parent died before the line above: nothing would kill us
        os._exit(1)
    while True:
        pid, status, usage = os.wait4(-1, 0)
        if pid == worker:
            _exit_as(status, used_its_cpu=usage.ru_utime + usage.ru_stime >= config.cpu_seconds)


def _isolate(config: SandboxConfig) -> int:
    """Namespaces, the new root and the trusted init. Returns, in the worker, the uid it will run as."""
    uid = WORKER_UID_BASE + os.getpid()
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    # Held open by this process until it exits: the init checks it after asking for the
    # parent-death signal, which would come too late if this process had already died.
    parent_alive, keep_open = os.pipe()
    # The first child is PID 1 of the new PID namespace, the init (see the module's docstring).
    init = os.fork()
    if init:
        try:
            os.close(parent_alive)
            _exit_as(os.waitpid(init, 0)[1])
        finally:
            os._exit(1)  # whatever happens, this process (root, outside the namespace) never becomes a worker
    os.close(keep_open)
    die_with_parent()
    if _parent_gone(parent_alive):
        os._exit(1)
    _build_root(config)
    work = Path("/tmp/work")
    work.mkdir()
    os.chown(work, uid, NO_GROUP)
    os.environ["HOME"] = str(work)  # the grader's HOME is not in the new root
    # The worker is the init's child: never PID 1, so it cannot keep the namespace alive.
    worker = os.fork()
    if worker:
        try:
            _serve_as_init(worker, parent_alive, config)
        except BaseException:  # noqa: BLE001 - shown on stderr; the init must never go on to become a worker
            traceback.print_exc()
        os._exit(1)
    os.close(parent_alive)
    os.chdir(work)
    return uid


def unsandboxed_work_folder(home: str, pid: int) -> Path:
    """Where the worker with process id ``pid`` works when there is no sandbox: a folder of its own."""
    return Path(home) / f"worker-{pid}"


def _work_unsandboxed() -> None:
    """Without the sandbox: a fresh folder under the grader's HOME is this worker's HOME and working folder.

    The grader removes it when the worker ends, so what one submission leaves
    there (a Keras or matplotlib setting, say) never reaches the next one.
    """
    work = unsandboxed_work_folder(os.environ.get("HOME") or tempfile.gettempdir(), os.getpid())
    work.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ["HOME"] = os.environ["MPLCONFIGDIR"] = os.environ["TMPDIR"] = str(work)
    tempfile.tempdir = str(work)
    os.chdir(work)


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

    # Before any student code exists, while this process has one thread; the init and the worker inherit it.
    try:
        install_keyring_filter()
    except OSError:
        if isolated:
            raise  # the probe installed it here: this is not expected
        # Without namespaces the worker is already weaker (sandbox_description says so); it still runs.
    # The lessons' drivers live in autograder/, which the sandbox never shows: read them first.
    sources = worker.driver_sources()
    uid = _isolate(config) if isolated else None
    if not isolated:
        _work_unsandboxed()
    # Trusted code is loaded (and the kit's answering modules blocked) before any student code exists.
    trusted = worker.prepare(config.lesson, sources)
    if uid is not None:
        hide_after_loading(worker.exercise_helper_files())
        _drop_privileges(uid)
    _limit(config, isolated)
    worker.main(trusted)


def _probe() -> None:
    """Build one sandbox as a worker would, then exit: 0 if every step worked."""
    install_keyring_filter()
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
