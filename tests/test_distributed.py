"""torchrun: clips sharded over real processes (gloo on the CPU), the numbers of one process byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rank_models
from dfbench.distributed import Ranks
from test_multi_run import metrics, record_lines

BASE = ["--dataset", "synthetic", "--num-samples", "2", "--no-progress"]
TESTS = Path(__file__).resolve().parent


def torchrun(*args: str, processes: int = 2, script: Path | None = None, env: dict | None = None):
    """``torchrun --standalone --nproc-per-node N -m dfbench ARGS`` (or a script), on the CPU."""
    target = [str(script)] if script else ["-m", "dfbench"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               *target, *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=900)


def test_shards_cover_every_clip_once_whatever_the_count():
    ids = [f"clip{i}" for i in range(7)]
    for world in (1, 2, 3, 8):
        shards = [Ranks(rank=r, world=world).shard(ids) for r in range(world)]
        assert sorted(sid for shard in shards for sid in shard) == ids
        steps = Ranks(world=world).steps(len(ids), batch_size=2)
        assert all(len(shard) <= 2 * steps for shard in shards) and max(map(len, shards)) > 2 * (steps - 1)


THREADS_SCRIPT = """
import os, sys, time, torch
from dfbench.distributed import Ranks
def threads():
    return set(os.listdir("/proc/self/task"))
before = threads()
ranks = Ranks.from_env()
ranks.start(torch.device("cpu"))
group_threads = threads() - before  # the group's worker threads and its transport loop
ranks.all(lambda: ranks.rank)
ranks.main(lambda: "done")
ranks.stop()
# A joined thread can stay listed in /proc for a moment; a thread never joined stays for good.
deadline = time.monotonic() + 10
while group_threads & threads() and time.monotonic() < deadline:
    time.sleep(0.01)
with open(os.path.join(sys.argv[1], f"threads{ranks.rank}"), "w") as out:  # torchrun's -u splits prints
    out.write(f"{len(group_threads)} {len(group_threads & threads())}")
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc")
def test_stopping_joins_the_groups_worker_threads_before_python_exits(tmp_path):
    # A worker thread left running frees its last collective's tensors during interpreter
    # finalization and aborts the process now and then; stop() must have joined them all.
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    run = torchrun(str(tmp_path), script=script, processes=3)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = [(tmp_path / f"threads{rank}").read_text().split() for rank in range(3)]
    for started, left in counts:
        assert int(started) > 0 and int(left) == 0


def test_two_processes_write_the_records_of_one_process(dfbench_cli, tmp_path):
    models = "copy-last,dino-world-bom"
    one = dfbench_cli("run", "--model", models, *BASE, "--limit", "3", "--output-dir", str(tmp_path / "one"))
    assert one.code == 0, one.err
    two = torchrun("run", "--model", models, *BASE, "--limit", "3", "--output-dir", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    for model in models.split(","):
        assert record_lines(tmp_path / "two", model) == record_lines(tmp_path / "one", model)
        assert metrics(tmp_path / "two", model) == metrics(tmp_path / "one", model)
        result = json.loads(next((tmp_path / "two" / "synthetic" / model).glob("seed*.json")).read_text())
        assert result["provenance"]["processes"] == 2
    assert two.stdout.count("wrote ") == 2  # rank 0 alone reports


def test_a_failing_rank_stops_all_and_the_result_resumes_with_one_process(dfbench_cli, tmp_path):
    script = tmp_path / "launch.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nimport rank_models\n"
                      "from dfbench.cli import main\nsys.argv[0] = 'dfbench'\nmain()\n")
    out = tmp_path / "out"
    args = ["run", "--model", "test-rank-fail", *BASE, "--limit", "4", "--output-dir", str(out)]
    failed = torchrun(*args, script=script, env={rank_models.FAILING_RANK_VARIABLE: "1"})
    assert failed.returncode != 0
    assert "out of memory (simulated)" in failed.stderr and "rank 1 of 2 failed" in failed.stderr
    folder = out / "synthetic" / "test-rank-fail"
    assert not list(folder.glob("*.json")) and not list(folder.glob("*.lock"))
    (partial,) = folder.glob("*.records.jsonl.partial")  # the first step's clips, one from each rank
    assert sum('"sample_id"' in line for line in partial.read_text().splitlines()) == 2

    resumed = dfbench_cli(*args)
    assert resumed.code == 0, resumed.err
    assert "2 of 4 clips resumed" in resumed.out
    straight = dfbench_cli("run", "--model", "test-rank-fail", *BASE, "--limit", "4",
                           "--output-dir", str(tmp_path / "straight"))
    assert straight.code == 0, straight.err
    assert record_lines(out, "test-rank-fail") == record_lines(tmp_path / "straight", "test-rank-fail")


@pytest.mark.slow
def test_three_processes_resume_what_two_left(dfbench_cli, tmp_path):
    script = tmp_path / "launch.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nimport rank_models\n"
                      "from dfbench.cli import main\nsys.argv[0] = 'dfbench'\nmain()\n")
    out = tmp_path / "out"
    args = ["run", "--model", "test-rank-fail", *BASE, "--limit", "5", "--output-dir", str(out)]
    assert torchrun(*args, script=script, env={rank_models.FAILING_RANK_VARIABLE: "0"}).returncode != 0
    again = torchrun(*args, script=script, processes=3)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 5 clips resumed" in again.stdout
    assert dfbench_cli(*args[:-2], "--output-dir", str(tmp_path / "one")).code == 0
    assert record_lines(out, "test-rank-fail") == record_lines(tmp_path / "one", "test-rank-fail")
