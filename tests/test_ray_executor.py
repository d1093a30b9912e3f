"""Distributed runs on Ray: a local two-worker cluster gives exactly the local run's results, a worker
killed mid-run costs only its cell (retried, finished cells kept), a run interrupted on the driver
resumes; the executor's config key and CLI flags are checked in one line."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest

from pdbench.bench import BenchConfig, run
from pdbench.bench.runner import summary_line, timed_compute
from pdbench.errors import InputError

if os.environ.get("CI"):
    import ray  # CI installs .[test], which has Ray: this module must run there, never skip
else:
    ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def faces(celeba_dir, tmp_path_factory):
    """4 held-out CelebA faces (never seen in training) with their attribute lines, in a folder of their
    own (so planning does not scan 10,000 photos)."""
    import shutil

    root = tmp_path_factory.mktemp("faces")
    names = [f"{i:06d}.jpg" for i in (9001, 9337, 9614, 9990)]
    (root / "images").mkdir()
    for n in names:
        shutil.copy(celeba_dir / "images" / n, root / "images" / n)
    lines = (celeba_dir / "list_attr_celeba_first20k.txt").read_text().splitlines()
    rows = [ln for ln in lines[2:] if ln.split(" ", 1)[0] in names]
    (root / "attrs.txt").write_text("\n".join([str(len(rows)), lines[1], *rows]) + "\n")
    return root


def _cfg(faces, out, **over) -> BenchConfig:
    """4 cells: 2 batches of 2 held-out faces × {none, pgd(steps=2)}, 2 settings, 3 metrics."""
    d = {
        "name": "ray",
        "dataset": {"path": str(faces / "images"), "attrs": str(faces / "attrs.txt")},
        "generators": ["stargan"],
        "defenses": ["none", {"name": "pgd", "steps": 2}],
        "settings": ["none", {"name": "jpeg", "quality": 75}],
        "metrics": ["mse", "dsr_mse", "linf_adv"],
        "batch_size": 2,
        "device": "cpu",
        "out": str(out),
    }
    d.update(over)
    return BenchConfig.from_dict(d)


def _table(out) -> list[dict]:
    """results.csv without the timing rows (wall seconds differ between any two runs; values must not)."""
    return [r for r in csv.DictReader(open(out / "results.csv")) if r["metric"] != "protect_seconds_per_image"]


def _means(out) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "protect_seconds_per_image"}
            for e in json.loads((out / "results.json").read_text())["summary"]]


@pytest.fixture(scope="module")
def local(faces, tmp_path_factory):
    import torch

    out = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task (num_cpus=1): the same kernels, so the same bits
    try:
        stats = run(_cfg(faces, out), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert stats["computed"] == 4 and stats["executor"] == "local"
    return out


def _ray_children() -> list[str]:
    """Command lines of this process's live descendants that belong to Ray (Linux /proc; [] elsewhere)."""
    procs = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[-1].split()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        procs[int(d.name)] = (int(fields[1]), fields[0], cmd)
    mine, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, (ppid, _, _) in procs.items() if ppid in mine} - mine
        mine |= more
        grew = bool(more)
    return [cmd[:80] for pid, (_, state, cmd) in procs.items() if pid in mine and pid != os.getpid()
            and state != "Z" and "ray" in cmd]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with two CPU workers, shut down after the module: no Ray process outlives it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    try:
        yield ray
    finally:
        ray.shutdown()
    for _ in range(50):
        if not _ray_children():
            break
        time.sleep(0.2)
    assert not _ray_children()


def test_ray_run_is_the_local_run(faces, tmp_path, local, cluster):
    stats = run(_cfg(faces, tmp_path / "ray", executor="ray"), progress=False)
    assert stats["computed"] == 4 and stats["reused"] == 0
    assert stats["executor"] == "ray" and stats["workers"] == 2
    rows = _table(tmp_path / "ray")
    assert len(rows) == 4 * 2 * 2 * 3  # images × defenses × settings × metrics
    assert rows == _table(local)  # the same rows, in the same order, to the last bit
    assert _means(tmp_path / "ray") == _means(local)
    assert max(float(r["value"]) for r in rows if r["metric"] == "linf_adv") <= 0.05
    meta = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert meta["run"]["executor"] == "ray" and len(meta["cells"]) == 4
    assert all(c["seconds"] > 0 and not c["reused"] for c in meta["cells"])
    assert "4 cell(s), 8 protected image(s): 4 computed, 0 reused" in summary_line(stats)
    assert "on ray (2 workers)" in summary_line(stats)

    again = run(_cfg(faces, tmp_path / "ray", executor="ray"), progress=False)
    assert again["computed"] == 0 and again["reused"] == 4  # read on the driver, nothing sent to Ray
    assert _table(tmp_path / "ray") == rows


def test_killed_worker_loses_only_its_cell(faces, tmp_path, local, cluster):
    from pdbench.bench.ray_executor import RayExecutor

    log = tmp_path / "attempts.log"

    def crash_once(cell, assets, progress=None):  # a closure: Ray ships it by value to the workers
        with open(log, "a") as f:
            f.write(cell.label() + "\n")
        if cell.defense["name"] == "pgd" and cell.batch == 1 and open(log).read().count(cell.label()) == 1:
            os._exit(1)  # the worker process dies on the cell's first attempt, as a kill -9 or OOM would
        return timed_compute(cell, assets, progress)

    out = tmp_path / "killed"
    stats = run(_cfg(faces, out), progress=False, executor=RayExecutor(device="cpu", compute=crash_once))
    assert stats["computed"] == 4
    attempts = log.read_text().splitlines()
    assert sorted(attempts) == sorted(["stargan none b0/2", "stargan none b1/2", "stargan pgd(steps=2) b0/2",
                                       "stargan pgd(steps=2) b1/2", "stargan pgd(steps=2) b1/2"])
    assert _table(out) == _table(local)  # retried, and the same results
    assert not list(out.rglob("*.part"))


def test_a_worker_without_the_run_folder_ships_the_cells_files(faces, tmp_path, local, monkeypatch):
    """A node that cannot write the run folder (not shared) computes in a scratch folder and sends the
    cell's files back; the driver's copy of them is the cell's cache (a rerun reuses them)."""
    import dataclasses
    import tempfile

    import torch

    from pdbench.assets import asset_dir
    from pdbench.bench.ray_executor import _store, _task
    from pdbench.bench.runner import make_plan

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the worker's scratch folder goes here
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "x"
    cell = make_plan(_cfg(faces, out), torch.device("cpu"), out).cells[1]  # pgd(steps=2), first batch
    assert cell.defense["name"] == "pgd"
    (tmp_path / "a-file").write_text("")
    away = dataclasses.replace(cell, cache=str(tmp_path / "a-file" / "cache"))  # not a folder anyone can write
    threads = torch.get_num_threads()
    try:
        res, files = _task(away, str(asset_dir()), 1, timed_compute, os.getcwd())
    finally:
        torch.set_num_threads(threads)
    assert not res.reused and res.seconds > 0
    assert sorted(files) == sorted(str(p.relative_to(cell.cache)) for p in cell.cache_files())
    assert list((tmp_path / "tmp" / "pdbench-ray").iterdir())  # computed in the scratch folder
    _store(cell, files)
    again = timed_compute(cell)
    assert again.reused and again.rows == res.rows and again.seconds == res.seconds


def test_an_error_in_a_cell_is_its_one_line(faces, tmp_path, cluster):
    from pdbench.bench.ray_executor import RayExecutor

    def refuse(cell, assets, progress=None):
        raise InputError(f"{cell.files[0]} changed since the run was planned; run the same command again")

    with pytest.raises(InputError, match=r"^\S+\.jpg changed since the run was planned; run the same command again$"):
        run(_cfg(faces, tmp_path / "e"), progress=False, executor=RayExecutor(device="cpu", compute=refuse))
    assert not (tmp_path / "e" / ".pdbench.lock").exists()


def test_driver_interrupt_resumes(faces, tmp_path, local, cluster):
    out = tmp_path / "resumed"
    seen = []

    def stop_after_one(cell):
        seen.append(cell)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(_cfg(faces, out, executor="ray"), progress=False, on_cell=stop_after_one)
    assert len(seen) == 1 and not (out / "results.csv").exists()
    assert not (out / ".pdbench.lock").exists()
    stats = run(_cfg(faces, out, executor="ray"), progress=False)
    assert stats["reused"] >= 1 and stats["computed"] + stats["reused"] == 4  # the finished cell is kept
    assert _table(out) == _table(local)


def test_executor_config_and_flags(faces, tmp_path, capsys, cluster, monkeypatch):
    import sys

    from pdbench.bench.runner import make_executor
    from pdbench.cli import main

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "ray", None)  # as where Ray is not installed
        with pytest.raises(InputError, match=r"executor ray needs Ray, which is not installed: pip install 'pdbench\[ray\]'"):
            make_executor("ray")
    with pytest.raises(InputError, match="nothing answers at 127.0.0.1:1 .*ray start --head"):
        make_executor({"name": "ray", "address": "127.0.0.1:1"})._reachable()  # at once, not after Ray's minutes of retries

    for bad, msg in (("rey", "executor must be local or ray, got 'rey'. Did you mean 'ray'"),
                     ({"name": "ray", "adress": "auto"}, "unknown key 'adress' in executor"),
                     ({"name": "local", "address": "auto"}, "executor local takes no options"),
                     ({"name": "ray", "cpus_per_cell": 0}, "cpus_per_cell must be a number > 0")):
        with pytest.raises(InputError, match=msg):
            _cfg(faces, tmp_path, executor=bad)
    a = _cfg(faces, tmp_path / "a", executor={"name": "ray", "address": "auto"})
    assert a.content_key() == _cfg(faces, tmp_path / "b").content_key()  # how cells run is not what they hold

    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": {"path": str(faces / "images"), "n": 1}, "generators": ["stargan"],
                                   "defenses": ["none"], "metrics": ["mse"], "out": str(tmp_path / "o")}))
    assert main(["run", str(cfg), "--executor", "local", "--address", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--address is a Ray cluster's; use it with --executor ray" in err
    assert not (tmp_path / "o").exists()  # refused before any work

    assert main(["run", str(cfg), "--executor", "ray", "--no-progress"]) == 0  # joins the Ray this process runs
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("1 cell(s), 1 protected image(s): 1 computed, 0 reused, in ") and last.endswith("on ray (2 workers)")
    meta = json.loads((tmp_path / "o" / "results.json").read_text())
    assert meta["config"]["executor"] == "ray" and meta["run"]["executor"] == "ray"
    html = (tmp_path / "o" / "report.html").read_text()
    assert "This run: 1 of 1 batch cell computed, 0 reused, in " in html and "on ray (2 workers)" in html


def test_gpus_per_cell_follow_the_device_and_the_cluster():
    """num_gpus of each cell's task: 1 on CUDA (device cuda, or auto on a cluster with GPUs), else 0; a
    CUDA run on a cluster without GPUs is refused in one line. (No GPU here: the cluster's resources are
    given as Ray reports them.)"""
    from pdbench.bench.ray_executor import RayExecutor

    class Cluster:
        def __init__(self, gpus):
            self.res = {"CPU": 16.0, **({"GPU": float(gpus)} if gpus else {})}

        def cluster_resources(self):
            return self.res

    assert RayExecutor(device="auto")._gpus(Cluster(8)) == 1
    assert RayExecutor(device="auto")._gpus(Cluster(0)) == 0
    assert RayExecutor(device="cpu")._gpus(Cluster(8)) == 0
    assert RayExecutor(device="cuda:1")._gpus(Cluster(2)) == 1
    assert RayExecutor(device="auto", gpus_per_cell=0.5)._gpus(Cluster(1)) == 0.5
    with pytest.raises(InputError, match="the cells need a GPU .device cuda. but the Ray cluster has none"):
        RayExecutor(device="cuda")._gpus(Cluster(0))
