"""Whether lehttpd may trust a file or folder it is about to use: the one test, like sshd's StrictModes.

A file that can name a command or a path (a renewal file, a renewal-hooks script), the folders holding it and
every folder above them must be owned by root (or the user lehttpd runs as) and not writable by group or
others; above the config dir, a root-owned sticky folder such as /tmp is fine (others cannot replace what
root put there). What fails is an UntrustedFileError with one line saying why and how to fix it.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from lehttpd.errors import UntrustedFileError


def trusted_owners() -> set[int]:
    return {0, os.geteuid()}


def trust_problem(path: Path | str, info: os.stat_result, what: str, *, parent: bool = False) -> str | None:
    """Why `path` (lstat `info`) may not be trusted as `what`, with the fix; None when it may."""
    if stat.S_ISLNK(info.st_mode) and not parent:
        return f"{path} ({what}) is a symlink: lehttpd does not follow one here; replace it with the real one"
    if info.st_uid not in trusted_owners():
        return (f"{path} ({what}) is owned by {_user(info.st_uid)}, not root: lehttpd does not use what another "
                f"user can change; check its content, then `chown root: {path}`, or remove it")
    sticky_root = parent and stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX and info.st_uid == 0
    if info.st_mode & 0o022 and not stat.S_ISLNK(info.st_mode) and not sticky_root:
        who = "group and others" if info.st_mode & 0o022 == 0o022 else (
            "its group" if info.st_mode & 0o020 else "others")
        return (f"{path} ({what}) is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o}): lehttpd does not "
                f"use what another user can change; check its content, then `chmod go-w {path}`")
    return None


def check_trusted(path: Path, what: str, *, parent: bool = False) -> os.stat_result:
    """lstat `path` and raise UntrustedFileError when `trust_problem` finds one."""
    info = os.lstat(path)
    problem = trust_problem(path, info, what, parent=parent)
    if problem:
        raise UntrustedFileError(problem)
    return info


def check_folder_chain(folder: Path) -> None:
    """`folder` and every folder above it, both as written and as the links lead (a root-owned sticky folder
    such as /tmp is fine above it)."""
    folder = Path(os.path.abspath(folder))
    real = Path(os.path.realpath(folder))
    check_trusted(real, "folder")
    if folder != real:
        check_trusted(folder, "a link to the folder", parent=True)
    for above in sorted({*real.parents, *folder.parents}):
        check_trusted(above, "a folder above it", parent=True)


def check_before_creating(folder: Path) -> None:
    """Every existing folder above `folder`, which does not exist yet, judged as folders above the config dir
    are: checked before anything is created, so root never makes (and chmods) a folder where another user
    could swap it for a link."""
    folder = Path(os.path.abspath(folder))
    existing = next(above for above in folder.parents if os.path.isdir(above))
    real = Path(os.path.realpath(existing))
    for above in sorted({real, *real.parents, existing, *existing.parents}):
        check_trusted(above, "a folder above it", parent=True)


def _user(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def trusted_executable(path: Path) -> bool:
    """Whether `path` is an executable regular file lehttpd may run (False: not a script, skip it); raises
    UntrustedFileError when it is one that another user could have changed. A link is judged by where it leads,
    with every folder above that (certbot users link their scripts in)."""
    real = Path(os.path.realpath(path))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False  # a dangling link
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
        return False
    if real != Path(os.path.abspath(path)):
        check_folder_chain(real.parent)
    problem = trust_problem(real, info, "hook script")
    if problem:
        raise UntrustedFileError(problem)
    return True


def check_hook_program(command: str) -> None:
    """Every file a hook command line runs (each command's program: a path, or a name the shell finds on PATH;
    and the script an interpreter is given, `sh /srv/x.sh`, `python3 /srv/x.py`; see hook_programs) must be one
    lehttpd may run: owned by root (or the running user), not writable by others, in folders others cannot
    change (a root-owned sticky folder such as /tmp is fine). Raises UntrustedFileError for the first that is not.
    What a program reads later, or a program named through a variable, is not known before the shell runs."""
    from lehttpd.store.hook_programs import programs_run_by

    for word, role in programs_run_by(command):
        if role == "program":
            path = word if "/" in word else shutil.which(word)
        else:
            path = os.path.abspath(word)
        if path is None or not os.path.isfile(path):
            continue  # a shell builtin (exit, echo), a missing file, a folder: the shell will say
        check_file_and_folders(Path(path), "a hook's program" if role == "program" else "a script a hook runs")


def check_file_and_folders(path: Path, what: str, info: os.stat_result | None = None) -> None:
    """A file lehttpd takes on trust though others may own the folders around it (a hook's program, a CA
    bundle): the file (`info`, when the caller already has it open) and every folder above it, as written and as
    the links lead (a root-owned sticky folder such as /tmp is fine). Raises UntrustedFileError."""
    real = Path(os.path.realpath(path))
    for above in sorted({*real.parents, *Path(os.path.abspath(path)).parents}):
        check_trusted(above, f"a folder above {what}", parent=True)
    problem = trust_problem(real, info or os.stat(real), what)
    if problem:
        raise UntrustedFileError(problem)
