"""Files for a Mosquitto that runs as its own user: who gets them, can it reach them, atomic writes.

Mosquitto started as root drops to its `user` (default `mosquitto`) before it reads password_file
and acl_file, and reads them again on SIGHUP; Mosquitto >= 2.0.16 warns (and later versions will
refuse) when they are not owned by that user and group or are readable by others. So the files
go to the broker's user and group with mode 0640, never readable by others, and the directory
stays the invoker's (mode 0750, the broker's group), so the broker cannot swap files in it.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FILE_MODE = 0o640
DIR_MODE = 0o750
DEFAULT_OWNER = "mosquitto"  # mosquitto.conf's `user` default


class Refused(Exception):
    """What is wrong (`reason`) and how to fix it (`hint`), for the command to print and exit 2."""

    def __init__(self, field: str, reason: str, hint: str = ""):
        super().__init__(reason)
        self.field, self.reason, self.hint = field, reason, hint


@dataclass(frozen=True)
class Owner:
    user: str
    group: str
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"{self.user}:{self.group}"


def resolve_owner(spec: str | None) -> Owner:
    """USER[:GROUP] (GROUP defaults to USER's primary group), checked to exist and to be givable."""
    given = spec is not None
    user, _, group = (spec if given else DEFAULT_OWNER).partition(":")
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        what = f"no user {user!r} on this host" + ("" if given else " (Mosquitto's default `user`)")
        raise Refused("--owner", what, "pass --owner USER[:GROUP]: the user Mosquitto runs as (the `user` "
                      "option of mosquitto.conf; `ps -o user= -C mosquitto` shows it)") from None
    try:
        gr = grp.getgrnam(group) if group else grp.getgrgid(pw.pw_gid)
    except KeyError:
        raise Refused("--owner", f"no group {group or pw.pw_gid!r} on this host",
                      "pass --owner USER:GROUP with an existing group (`getent group`)") from None
    owner = Owner(pw.pw_name, gr.gr_name, pw.pw_uid, gr.gr_gid)
    euid = os.geteuid()
    if euid != 0 and (owner.uid != euid or owner.gid not in {os.getegid(), *os.getgroups()}):
        me = pwd.getpwuid(euid).pw_name
        raise Refused("--owner", f"giving the files to {owner} needs root (chown); this runs as {me}",
                      f"run it as root (sudo -E citygate broker config ...), or pass --owner {me} if "
                      f"Mosquitto runs as {me}")
    return owner


def prepare_dir(out: Path, owner: Owner) -> Path:
    """Create `out` (mode 0750, group = the broker's) if missing; refuse one we cannot write into."""
    if out.exists() and not out.is_dir():
        raise Refused("--out", f"{out} exists and is not a directory", "choose a directory for --out")
    if not out.exists():
        check_reachable(next(p for p in out.absolute().parents if p.exists()), owner, listable=False)
        try:
            out.mkdir(parents=True, mode=DIR_MODE)
        except OSError as e:
            raise Refused("--out", f"cannot create {out}: {e.strerror}",
                          "create it first, or choose an --out you may write into") from None
        _give(out, os.geteuid(), owner.gid, DIR_MODE)
    out = out.resolve()
    if not os.access(out, os.W_OK | os.X_OK):
        raise Refused("--out", f"cannot write into {out} (it is {_describe(out)})",
                      "run as its owner or root, or choose another --out")
    return out


def check_reachable(out: Path, owner: Owner, listable: bool = True) -> None:
    """Refuse a directory the broker's user cannot get into (or list: include_dir is read again on
    SIGHUP, as that user). Only root can check as another user; anyone else writes its own files."""
    if os.geteuid() != 0 or owner.uid == 0:
        return
    script = 'for d in "$@"; do [ -x "$d" ] || { echo "$d"; exit 1; }; done'
    if listable:
        script += '; [ -r "$d" ] || { echo "$d"; exit 1; }'
    chain = [*reversed(out.parents), out]
    try:
        done = subprocess.run(["/bin/sh", "-c", script, "sh", *map(str, chain)], user=owner.uid, group=owner.gid,
                              extra_groups=os.getgrouplist(owner.user, owner.gid), capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise Refused("--out", f"could not check what {owner.user} can read: {e}") from None
    if done.returncode != 0:
        blocked = Path(done.stdout.strip() or out)
        raise Refused("--out", f"Mosquitto running as {owner.user} cannot get into {blocked} "
                      f"(it is {_describe(blocked)})",
                      f"choose an --out it can reach (e.g. /etc/mosquitto/citygate), or let {owner.user} "
                      f"through: chmod o+x {blocked}")


def write(path: Path, text: str, owner: Owner) -> None:
    """Replace `path` atomically (Mosquitto may reread it any time) with a file owner:group, mode 0640."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600, O_EXCL: never seen half-made
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            _give(f.fileno(), owner.uid, owner.gid, FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a symlink at `path` is replaced, never followed
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _give(target, uid: int, gid: int, mode: int) -> None:
    """chown (as far as this user may) and chmod a path or an open file descriptor."""
    if os.geteuid() == 0 or (uid == os.geteuid() and gid in {os.getegid(), *os.getgroups()}):
        os.chown(target, uid, gid)
    os.chmod(target, mode)


def _describe(path: Path) -> str:
    st = path.stat()
    return f"{stat.filemode(st.st_mode)} {_name(pwd.getpwuid, st.st_uid)}:{_name(grp.getgrgid, st.st_gid)}"


def _name(lookup, number: int) -> str:
    try:
        entry = lookup(number)
    except KeyError:
        return str(number)
    return entry[0]
