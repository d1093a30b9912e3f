"""A run folder: checked before any work, locked while a run writes it, owned by one config.

* The folder must be a directory we can write (checked by writing a probe file), else one line.
* ``.pdbench.lock`` holds the pid (and host) of the run writing the folder; a second run is refused
  while that process lives. A lock left by a dead process (killed run) is taken over.
* ``run.json`` records the content key of the config whose results the folder holds; a run of a
  different config is refused (its results would mix with, and overwrite, the others'), as is a
  non-empty folder that is not a pdbench run folder (a user's files are never overwritten).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..errors import InputError
from ..io import write_text

LOCK = ".pdbench.lock"
OWNER = "run.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


class RunFolder:
    def __init__(self, path: str | os.PathLike, config_key: str, name: str = ""):
        self.path = Path(path)
        self.key = config_key
        self.name = name
        self._locked = False

    def check_writable(self) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise InputError(f"output folder {p} is a file; choose another --out")
        try:
            p.mkdir(parents=True, exist_ok=True)
            probe = p / f".pdbench-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise InputError(f"output folder {p} is not writable ({e.strerror or type(e).__name__}); choose another --out") from None

    def check_owner(self) -> None:
        owner = self.path / OWNER
        if owner.exists():
            try:
                key = json.loads(owner.read_text()).get("config_key")
            except (OSError, ValueError, AttributeError):
                key = None
            if key != self.key:
                raise InputError(f"output folder {self.path} holds the results of another config (key {key}, this one "
                                 f"{self.key}); use another --out (or delete that folder to start over)")
            return
        others = [q.name for q in self.path.iterdir() if q.name not in (LOCK,)]
        if others:
            raise InputError(f"output folder {self.path} is not empty and is not a pdbench run folder (it holds "
                             f"{', '.join(sorted(others)[:3])}{', ...' if len(others) > 3 else ''}); use another --out")
        write_text(owner, json.dumps({"config_key": self.key, "name": self.name}))

    def lock(self) -> None:
        lock = self.path / LOCK
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    held = json.loads(lock.read_text())
                    pid, host = int(held["pid"]), held.get("host")
                except (OSError, ValueError, KeyError, TypeError):
                    pid, host = None, None
                if pid is not None and host == me["host"] and not _alive(pid):
                    lock.unlink(missing_ok=True)  # left by a run that was killed
                    continue
                if pid is None:
                    lock.unlink(missing_ok=True)  # unreadable (a crash while writing it)
                    continue
                raise InputError(f"output folder {self.path} is in use by another pdbench run (pid {pid} on {host}); "
                                 f"wait for it to finish or use another --out (delete {lock} if that run is gone)")
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._locked = True
            return
        raise InputError(f"could not lock output folder {self.path}; delete {lock} and run again")

    def unlock(self) -> None:
        if self._locked:
            (self.path / LOCK).unlink(missing_ok=True)
            self._locked = False

    def __enter__(self) -> "RunFolder":
        self.check_writable()
        self.lock()
        try:
            self.check_owner()
        except BaseException:
            self.unlock()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()
