"""Run a benchmark's cells as Ray tasks, on a local or a multi-node Ray cluster (``pip install 'pdbench[ray]'``).

:class:`RayExecutor` follows the runner's executor interface (``run(cells, asset_dir, on_progress)
-> iterator of (cell, result)``, in the order the cells finish; the runner restores plan order):

* A cell whose rows the driver already holds (a resumed run) is read on the driver, not sent.
* Every other cell is one Ray task (:func:`compute_cell`, through the runner's
  :func:`~pdbench.bench.runner.timed_compute`) with ``num_cpus`` = ``cpus_per_cell`` (torch uses as
  many threads) and ``num_gpus`` = 1 when the cells run on CUDA: ``device: cuda``, or ``device: auto``
  on a cluster that has GPUs (Ray gives the task its GPU through ``CUDA_VISIBLE_DEVICES``).
* A worker computes into the cell's cache folder when it can write it (the run folder on a shared
  path, or the same machine), else into a scratch folder of its own; either way it sends every cache
  file of the cell back through Ray's object store and the driver writes them atomically into the run
  folder as each cell finishes. A driver that dies loses only the unfinished cells: the next run
  resumes from the files.
* A worker that dies mid-cell (killed, out of memory, node lost) costs only its cell: Ray runs the task
  again (``max_retries``), and it resumes from the files the dead worker finished (its δ, clean outputs).
  A cell that fails with an error is not retried: its one-line message is the run's.

Photos and the asset directory are read by the workers at the driver's paths: on a multi-node cluster
they must be on a shared path (or copied to the same path on every node), and pdbench installed there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..errors import InputError, PdbenchError
from ..io import atomic_path, check_writable
from .runner import Cell, CellResult, timed_compute


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("executor ray needs Ray, which is not installed: pip install 'pdbench[ray]' "
                         "(or run with --executor local)") from None
    return ray


def _workdir(cell: Cell) -> Cell:
    """The cell as this worker computes it: in the run's cache folder when it can write there, else in
    a scratch folder of its own (a node that does not share the driver's disk)."""
    try:
        check_writable(cell.cache)
        return cell
    except InputError:
        scratch = Path(tempfile.gettempdir()) / "pdbench-ray" / hashlib.sha256(cell.cache.encode()).hexdigest()[:16]
        return dataclasses.replace(cell, cache=str(scratch))


def _task(cell: Cell, assets: str | None, threads: int, compute: Callable, cwd: str) -> tuple[CellResult, dict[str, bytes]]:
    """What a Ray worker runs for one cell: its result and its cache files (relative path -> bytes).
    ``cwd`` is the driver's working folder: where it exists here, relative paths of the config (photos,
    checkpoints) mean what they mean on the driver."""
    import torch

    torch.set_num_threads(threads)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    here = _workdir(cell)
    res = compute(here, assets)
    root = Path(here.cache)
    files = {str(p.relative_to(root)): p.read_bytes() for p in here.cache_files() if p.is_file()}
    return res, files


def _store(cell: Cell, files: dict[str, bytes]) -> None:
    """Write a finished cell's cache files into the driver's run folder, atomically (skipping those a
    worker on the shared path already wrote with the same content)."""
    root = Path(cell.cache)
    for rel, data in files.items():
        dest = root / rel
        if dest.is_file() and dest.stat().st_size == len(data) and dest.read_bytes() == data:
            continue
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)


class RayExecutor:
    """Cells as Ray tasks. ``address``: the cluster to join (None: ``RAY_ADDRESS`` or a new local
    cluster; ``auto``: the one ``ray start`` runs here; ``host:port`` or ``ray://host:10001``). A Ray
    already initialised in this process is used as it is. ``device``: the config's device (``auto`` uses
    the cluster's GPUs when it has some). ``compute``: the function run per cell (default
    :func:`~pdbench.bench.runner.timed_compute`; tests wrap it)."""

    name = "ray"

    def __init__(self, address: str | None = None, device: str = "auto", cpus_per_cell: float = 1,
                 gpus_per_cell: float | None = None, max_retries: int = 3, compute: Callable | None = None):
        if cpus_per_cell <= 0 or (gpus_per_cell is not None and gpus_per_cell < 0) or max_retries < 0:
            raise InputError("executor ray: cpus_per_cell must be > 0, gpus_per_cell >= 0 and max_retries >= 0")
        _ray()  # not installed: said before any work
        self.address = address
        self.device = str(device)
        self.cpus_per_cell = cpus_per_cell
        self.gpus_per_cell = gpus_per_cell
        self.max_retries = int(max_retries)
        self.compute = compute or timed_compute
        self.workers = 1
        self._started = False  # this executor started Ray (ray.init), so it shuts it down after the run

    def _reachable(self) -> None:
        """A ``host:port`` address that nothing answers on is one line at once (Ray itself retries for minutes)."""
        addr = self.address
        if not addr or addr == "auto" or "://" in addr or ":" not in addr:
            return
        host, _, port = addr.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as e:
            raise InputError(f"executor ray: nothing answers at {addr} ({getattr(e, 'strerror', None) or e}); start the head "
                             "node with `ray start --head --port=6379` there, or pass its --address") from None

    def start(self) -> None:
        """Join (or start) the cluster before any work, so a wrong address costs nothing (the runner calls
        it). A Ray already initialised in this process is used as it is."""
        ray = _ray()
        if not ray.is_initialized():
            self._connect(ray)
            self._started = True

    def stop(self) -> None:
        """Shut down the Ray this executor started (a Ray the caller initialised stays up)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def _connect(self, ray) -> None:
        import logging

        self._reachable()
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = self.address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
            raise InputError(f"executor ray: cannot start or join the Ray cluster at {where} ({str(e).splitlines()[0]}); "
                             "start one with `ray start --head` or pass its --address") from None

    def _gpus(self, ray) -> float:
        """GPUs per cell: as configured, else 1 when the cells run on CUDA (device cuda, or auto on a
        cluster with GPUs), else 0."""
        have = ray.cluster_resources().get("GPU", 0)
        want = self.gpus_per_cell
        if want is None:
            want = 1 if self.device.startswith("cuda") or (self.device == "auto" and have) else 0
        if want and not have:
            raise InputError(f"executor ray: the cells need a GPU (device {self.device}) but the Ray cluster has none; "
                             "run with --device cpu or join a cluster with GPUs")
        return want

    def run(self, cells: list[Cell], assets: str | os.PathLike | None = None,
            on_progress: Callable[[Cell, str], None] | None = None) -> Iterator[tuple[Cell, CellResult]]:
        ray = _ray()
        self.start()
        pending: dict = {}
        try:
            gpus = self._gpus(ray)
            res = ray.cluster_resources()
            slots = [res.get("CPU", 0) / self.cpus_per_cell] + ([res.get("GPU", 0) / gpus] if gpus else [])
            self.workers = max(1, int(min(slots)))
            task = ray.remote(_task).options(num_cpus=self.cpus_per_cell, num_gpus=gpus, max_retries=self.max_retries,
                                             retry_exceptions=False)
            threads = max(1, int(self.cpus_per_cell))
            device = "cuda" if gpus else "cpu"
            path = None if assets is None else str(Path(assets).resolve())
            for cell in cells:
                if all(cell.setting_file(t).is_file() for t in cell.settings):
                    yield cell, self.compute(cell, path)  # already computed: read here, nothing to send
                    continue
                work = dataclasses.replace(cell, device=device, cache=str(Path(cell.cache).resolve()))
                pending[task.remote(work, path, threads, self.compute, os.getcwd())] = cell
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    cell = pending.pop(ref)
                    result, files = self._get(ray, ref, cell)
                    _store(cell, files)
                    yield cell, result
        finally:
            for ref in pending:  # interrupted: what still runs is cancelled, its cells resume next time
                ray.cancel(ref, force=True)
            self.stop()

    def _get(self, ray, ref, cell: Cell):
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the cell raised: its own message, as a local run gives it
            cause = getattr(e, "cause", None)
            if isinstance(cause, PdbenchError):
                raise cause from None
            raise
        except ray.exceptions.RayError as e:  # the worker died more than max_retries times, or its node went away
            raise PdbenchError(f"cell {cell.label()} failed on Ray {self.max_retries + 1} time(s) ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}); finished cells are saved, run the same "
                               "command again to resume") from None


__all__ = ["RayExecutor"]
