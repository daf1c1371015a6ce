"""Start a grading worker in a sandbox: ``python -I -m tfrs_course.grading.sandbox CONFIG_JSON``.

This launcher runs in a fresh, single-threaded process, sets up the sandbox,
then replaces itself with the worker (:mod:`tfrs_course.grading.worker`).

Always:
- resource limits: CPU seconds, address space (memory), processes, open files,
  file size, no core dumps;
- an empty working directory and a scrubbed environment (set by the caller).

When started as root on Linux, also:
- new mount, network and PID namespaces: no network but an unconfigured
  loopback; when the worker exits, every process it started dies with it;
- a fresh, empty ``/tmp`` and ``/dev/shm``; home folders, ``/work``, ``/opt`` and
  the like, and the checkout holding the kit, replaced by empty folders that hold
  only the interpreter, the virtualenv and the kit's package; and empty folders
  over the paths the grader names (solutions, autograder tests, submissions,
  results), for when those lie inside what the worker needs;
- the worker runs as an unprivileged uid of its own, used by no other process.

Without root these steps are skipped (an ordinary user cannot create them
here); the worker then runs as the grading user, still in its own process with
limits. :func:`sandbox_capabilities` reports which protections are in force.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
# Where people and programs keep files. The worker sees none of it but the
# interpreter, the virtualenv and the kit's package (and the checkout holding the kit
# is covered too, wherever it is).
COVERED_FOLDERS = ("/home", "/root", "/work", "/srv", "/mnt", "/media", "/opt", "/var/tmp", "/builds")
# Each worker gets an unprivileged uid of its own, with no login and no files on the
# system: this base plus the launcher's pid, which no other live process has. So one
# worker's fork bomb cannot use up another worker's process limit.
WORKER_UID_BASE = 100_000
NO_GROUP = 65534


@dataclass
class SandboxConfig:
    """What the launcher needs. Serialised as JSON on its command line.

    Attributes:
        hide: folders to cover with an empty, unreadable tmpfs.
        cpu_seconds: CPU time limit for the worker.
        memory_bytes: address-space limit.
        max_processes: process (and thread) limit, enforced for the unprivileged user.
        max_file_bytes: largest file the worker may write.
        isolate: use namespaces and drop privileges when running as root.
    """

    hide: list[str] = field(default_factory=list)
    cpu_seconds: int = 120
    memory_bytes: int = 6 * 1024**3
    max_processes: int = 256
    max_file_bytes: int = 64 * 1024**2
    isolate: bool = True


def sandbox_capabilities() -> dict[str, bool]:
    """Which protections the launcher can apply on this machine, as this user."""
    root = os.geteuid() == 0 and sys.platform.startswith("linux")
    return {
        "separate_process": True,
        "resource_limits": True,
        "unprivileged_user": root,
        "no_network": root,
        "hidden_paths": root,
        "kill_all_descendants": root,
    }


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )  # fmt: skip


def _first_closed_ancestor(path: Path) -> Path | None:
    """The highest folder above ``path`` that other users cannot enter, if any."""
    closed = None
    for ancestor in reversed(path.parents):
        if ancestor == Path("/"):
            continue
        if not os.stat(ancestor).st_mode & 0o001:
            closed = ancestor
            break
    return closed


def _outermost(folders: set[Path]) -> set[Path]:
    return {folder for folder in folders if not any(other in folder.parents for other in folders)}


def _expose_only(needed: list[Path], covered: list[Path], holding: Path) -> None:
    """Replace each covered folder with an empty one that holds only the needed paths.

    Each covered folder (and each folder on the way to a needed path that other
    users cannot enter) is replaced by an empty tmpfs; each needed path under it
    is bind-mounted back. So the worker reaches its interpreter, its virtualenv
    and the kit, and nothing else kept there: not this checkout's solutions, nor
    another checkout's, nor anyone's home.
    """
    covers = {folder for folder in covered if folder.is_dir()}
    covers |= {closed for path in needed if (closed := _first_closed_ancestor(path)) is not None}
    covers = _outermost(covers)
    kept: list[tuple[Path, Path]] = []
    for path in dict.fromkeys(needed):
        if any(cover == path or cover in path.parents for cover in covers):
            keep = holding / str(len(kept))
            keep.mkdir()
            _mount(str(path), str(keep), None, MS_BIND | MS_REC)
            kept.append((path, keep))
    for cover in covers:
        _mount("tmpfs", str(cover), "tmpfs", 0, "mode=755,size=1m")
    for path, keep in kept:
        path.mkdir(parents=True, exist_ok=True)
        _mount(str(keep), str(path), None, MS_BIND | MS_REC)


def _isolate(config: SandboxConfig) -> int:
    """Namespaces, mounts and the unprivileged user. Returns the uid the worker runs as."""
    uid = WORKER_UID_BASE + os.getpid()
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
    # The first child is PID 1 of the new PID namespace: when it exits, the kernel
    # kills every process it left behind (a fork bomb's included).
    child = os.fork()
    if child:
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    holding = Path("/dev/shm") / f"tfrs-course-keep-{os.getpid()}-{os.getppid()}"
    _mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=700,size=1m")
    holding.mkdir()
    kit = Path(__file__).resolve().parents[1]
    needed = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), kit]
    covered = [Path(folder) for folder in COVERED_FOLDERS]
    if (kit.parent / "pyproject.toml").is_file():
        covered.append(kit.parent.parent)  # a checkout: hide it and its siblings (other checkouts)
    _expose_only(needed, covered, holding)
    for secret in config.hide:
        if Path(secret).exists():
            _mount("tmpfs", secret, "tmpfs", 0, "mode=000,size=4k")
    _mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777,size=512m")
    _mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777,size=64m")
    work = Path("/tmp/work")
    work.mkdir()
    os.chown(work, uid, NO_GROUP)
    os.chdir(work)
    os.setgroups([])
    os.setgid(NO_GROUP)
    os.setuid(uid)
    return uid


def _limit(config: SandboxConfig, isolated: bool) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (config.cpu_seconds, config.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (config.memory_bytes, config.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (config.max_file_bytes, config.max_file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    if isolated:
        # Counted per uid: only meaningful for the worker's own uid, never the grader's.
        resource.setrlimit(resource.RLIMIT_NPROC, (config.max_processes, config.max_processes))


def main(argv: list[str]) -> None:
    config = SandboxConfig(**json.loads(argv[0]))
    isolated = config.isolate and sandbox_capabilities()["unprivileged_user"]
    if isolated:
        _isolate(config)
    _limit(config, isolated)
    os.execv(sys.executable, [sys.executable, "-I", "-m", "tfrs_course.grading.worker"])


def launcher_command(config: SandboxConfig) -> list[str]:
    """The command that starts a sandboxed worker with ``config``."""
    return [sys.executable, "-I", "-m", "tfrs_course.grading.sandbox", json.dumps(asdict(config))]


if __name__ == "__main__":
    main(sys.argv[1:])
