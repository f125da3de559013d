"""Damaged records are recovered, and one process at a time writes a result (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dfbench.result_store import latest_result_path

BASE = ("--model", "copy-last", "--dataset", "synthetic", "--no-progress")


def _finished(cli, out: Path, clips: int = 3) -> tuple[Path, Path, list]:
    """A finished result; returns its JSON, its records and its metrics."""
    assert cli("run", *BASE, "--dataset-arg", f"num_clips={clips}", "--output-dir", str(out)).code == 0
    path = latest_result_path(out, "synthetic", "copy-last")
    payload = json.loads(path.read_text())
    return path, path.with_name(payload["records"]), payload["metrics"]


def _rerun(cli, out: Path, clips: int = 3):
    return cli("run", *BASE, "--dataset-arg", f"num_clips={clips}", "--output-dir", str(out))


def test_a_cut_header_line_is_recovered_by_computing_again(dfbench_cli, tmp_path):
    path, records, metrics = _finished(dfbench_cli, tmp_path)
    path.unlink()
    lines = records.read_text().splitlines()
    records.write_text(lines[0][: len(lines[0]) // 2] + "\n" + "\n".join(lines[1:]) + "\n")
    result = _rerun(dfbench_cli, tmp_path)
    assert result.code == 0, result.err
    assert "unreadable header" in result.out and "0 of 3 clips resumed" in result.out
    assert json.loads(path.read_text())["metrics"] == metrics
    assert json.loads(records.read_text().splitlines()[0])["header"]["model"] == "copy-last"


def test_lines_that_are_not_records_are_skipped_and_their_clips_recomputed(dfbench_cli, tmp_path):
    path, records, metrics = _finished(dfbench_cli, tmp_path)
    path.unlink()
    header, first, *rest = records.read_text().splitlines()
    damaged = [header, "[1, 2, 3]", '{"foo": 1}', "\x00\x01 garbage", first[:-5], *rest]
    records.write_text("\n".join(damaged) + "\n")
    result = _rerun(dfbench_cli, tmp_path)
    assert result.code == 0, result.err
    assert "4 unreadable line(s) skipped" in result.out and "2 of 3 clips resumed" in result.out
    assert json.loads(path.read_text())["metrics"] == metrics


def test_records_that_cannot_be_aggregated_name_the_file_to_remove(dfbench_cli, tmp_path):
    path, records, _ = _finished(dfbench_cli, tmp_path)
    path.unlink()
    header, first, *rest = records.read_text().splitlines()
    bad = json.loads(first)
    bad["stats"] = {key: {} for key in bad["stats"]}  # a record in form, with its counts missing
    records.write_text("\n".join([header, json.dumps(bad), *rest]) + "\n")
    result = _rerun(dfbench_cli, tmp_path)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert str(records) in result.err and "delete that file" in result.err
    records.unlink()
    assert _rerun(dfbench_cli, tmp_path).code == 0


def _dfbench() -> str:
    return str(Path(sys.executable).with_name("dfbench"))


def test_two_processes_never_compute_one_result_and_a_killed_writer_is_taken_over(tmp_path):
    out = tmp_path / "out"
    args = [_dfbench(), "run", *BASE, "--dataset-arg", "num_clips=6", "--output-dir", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = out / "synthetic" / "copy-last"
    deadline = time.time() + 120
    while not list(folder.glob("*.records.jsonl.partial")) and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)  # the first process holds the lock and has written its first clips
    first.send_signal(signal.SIGSTOP)  # alive but paused: it cannot finish before the second one starts
    (lock,) = folder.glob("*.lock")
    assert json.loads(lock.read_text())["pid"] == first.pid

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1
    assert f"being computed by process {first.pid}" in second.stderr and str(lock) in second.stderr

    first.send_signal(signal.SIGKILL)  # killed: its lock stays behind
    first.wait()
    assert lock.is_file() and json.loads(lock.read_text())["pid"] == first.pid
    third = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr
    resumed = int(third.stdout.split(" of 6 clips resumed")[0].split()[-1])
    assert resumed >= 1 and not lock.exists()
    payload = json.loads(latest_result_path(out, "synthetic", "copy-last").read_text())
    assert payload["complete"] and payload["num_clips"] == 6 and payload["provenance"]["invocations"] == 2
