"""set_thread_defaults fills in the thread settings and never overrides the user's own."""

import os

from numpy_cnn.cli.process_env import DEFAULTS, set_thread_defaults


def test_unset_variables_get_the_defaults(monkeypatch):
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    set_thread_defaults()
    assert {name: os.environ[name] for name in DEFAULTS} == DEFAULTS


def test_a_users_own_setting_wins(monkeypatch):
    monkeypatch.setenv("GOMP_SPINCOUNT", "123")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    set_thread_defaults()
    assert os.environ["GOMP_SPINCOUNT"] == "123" and os.environ["OPENBLAS_NUM_THREADS"] == "4"


def test_numba_pool_defaults_to_the_available_cpus(monkeypatch):
    from numpy_cnn.cpus import available_cpus

    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    set_thread_defaults()
    assert os.environ["NUMBA_NUM_THREADS"] == str(available_cpus())
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    set_thread_defaults()
    assert os.environ["NUMBA_NUM_THREADS"] == "1"
