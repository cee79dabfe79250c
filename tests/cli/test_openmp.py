"""The command line waits passively in OpenMP only when other work is runnable (glselect.cli.openmp)."""

from __future__ import annotations

import os

import pytest

from glselect.cli.openmp import other_runnable_tasks, wait_passively_when_busy


def _loadavg(tmp_path, running: int):
    path = tmp_path / "loadavg"
    path.write_text(f"2.70 2.68 2.37 {running}/108 21610\n")
    return str(path)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)


def test_other_runnable_tasks_leave_out_the_reader(tmp_path):
    assert other_runnable_tasks(_loadavg(tmp_path, 3)) == 2
    assert other_runnable_tasks(_loadavg(tmp_path, 1)) == 0
    assert other_runnable_tasks(str(tmp_path / "missing")) is None


def test_a_busy_machine_gets_passive_waiting(tmp_path, clean_env):
    assert wait_passively_when_busy(_loadavg(tmp_path, 3))  # two others on two cores
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_quiet_machine_keeps_the_default(tmp_path, clean_env):
    assert not wait_passively_when_busy(_loadavg(tmp_path, 1))
    assert "OMP_WAIT_POLICY" not in os.environ


def test_the_users_own_setting_wins(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert not wait_passively_when_busy(_loadavg(tmp_path, 5))
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    assert not wait_passively_when_busy(_loadavg(tmp_path, 5))
    assert "OMP_WAIT_POLICY" not in os.environ
