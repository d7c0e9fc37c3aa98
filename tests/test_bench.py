"""The benchmark scripts still run and still measure what bench/README.md says they do.

Each runs at its smallest size as a real subprocess; the checks read the figures it prints (the rows
asked for, numbers that add up, the request counts the backends promise), never how long it took.
Once per CI run: they measure, they do not depend on the Python version. bench/netbox_server_bench.py
stops and starts the NetBox server, which the suite shares, so it is left to a person.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from etcd_server import skip_without_etcd
from helpers import ROOT

pytestmark = pytest.mark.once
NUMBER = r"(\d+(?:\.\d+)?)"


def bench(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", name), *args], capture_output=True,
                            text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_generate_bench_reports_each_size_with_its_ratio():
    out = bench("generate_bench.py", "--hosts", "5,10", "--repeat", "1")
    header = next(line.split() for line in out.splitlines() if line.startswith("computes"))
    # The columns up to the ratio (e.g. "reused/floor"): each row's figures by name.
    named = header[:next(i for i, word in enumerate(header) if word.endswith("/floor")) + 1]
    rows = {int(line.split()[0]): dict(zip(named, map(float, line.split()[:len(named)])))
            for line in out.splitlines() if re.match(r"^\s*\d+\s+\d+\s", line)}
    assert sorted(rows) == [5, 10], out
    measured, floor = named[-1].split("/")
    for row in rows.values():
        assert min(row["fresh"], row[floor], row[measured]) > 0
        assert row[named[-1]] == pytest.approx(row[measured] / row[floor], rel=0.02, abs=0.02)


def test_run_phases_lists_every_phase_and_their_sum():
    out = bench("run_phases.py", "--hosts", "5", "--repeat", "1")
    phases = dict(re.findall(rf"^  ([a-zA-Z][a-zA-Z ]+?)\s+{NUMBER}\s+[\d.]+%$", out, re.M))
    assert {"interpreter start", "imports", "storage load", "serialise", "print"} <= set(phases), out
    total = float(re.search(rf"sum of phases\s+{NUMBER}", out).group(1))
    assert sum(map(float, phases.values())) == pytest.approx(total, abs=0.5 + 0.001 * total)
    assert re.search(rf"script run\s+{NUMBER}\s+floor {NUMBER}, script/floor {NUMBER}", out), out


def test_plan_and_records_and_lock_benches_report_their_rows():
    plan = bench("plan_bench.py", "--hosts", "5", "--repeat", "1")
    assert re.search(rf"^\s*5\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s*$", plan, re.M), plan
    records = bench("records_bench.py", "--hosts", "5", "--backups", "2", "--repeat", "1")
    assert re.search(rf"^\s*5\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s*$", records, re.M), records
    held = bench("fs_lock_hold.py", "--hosts", "2", "--repeat", "1")
    assert [m for m in re.findall(r"^\s*\d+\s+(first|changed|unchanged)\s", held, re.M)] == \
        ["first", "changed", "unchanged"], held


def test_plugin_benches_report_their_figures():
    assert "entry-point scan, cold:" in bench("discovery_bench.py", "--repeat", "1")
    guard = bench("plugin_guard_bench.py", "--hosts", "5", "--repeat", "1")
    assert re.search(r"through Backend \(watchdog \+ guard\)\s+[\d.]+ us", guard), guard


def test_craton_bench_counts_one_request_for_an_unchanged_run():
    out = bench("craton_bench.py", "--sizes", "40")
    rows = {m[0].strip(): int(m[1]) for m in re.findall(r"^\s*40\s+(.+?)\s+[\d.]+\s+(\d+)\s", out, re.M)}
    assert rows["unchanged run (cached load)"] == 1 and rows["first write"] > 1, out


def test_etcd_benches_lose_no_update_and_count_requests():
    skip_without_etcd()
    out = bench("etcd_bench.py", "--sizes", "5", "--repeat", "1", "--writers", "2", "--updates", "2",
                "--contention-hosts", "5")
    assert "counter 4 of 4, log entries 4: no update lost" in out, out
    assert re.search(r"unchanged run\s+[\d.]+ms\s+\d+\s+\d+", out), out
    access = bench("etcd_access_bench.py", "--sizes", "5", "--repeat", "1")
    assert re.search(r"unchanged run as reader: [\d.]+ ms median, \d+ requests", access), access
