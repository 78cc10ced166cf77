"""--scheduler: the same fold and sweep jobs on a real Dask LocalCluster (two worker processes) give the
results of the local run; without Dask, one line with the install command. Skipped when Dask is not
installed (CI installs the [cluster] extra)."""

import json
import sys

import pytest
from train_support import TINY_ARCH, cli, make_clips


SWEEP = f"""
[base]
epochs = 2
group_by = "clip"
folds = 2
seed = 0
arch = "{TINY_ARCH}"

[[recipe]]
name = "lr 1e-2"
lr = 0.01

[[recipe]]
name = "lr 3e-2"
lr = 0.03
"""

# --threads in this process must not leak; no pooled plot (matplotlib costs ~1 s)
pytestmark = pytest.mark.usefixtures("keep_threads", "no_pooled_plot")


def test_without_dask_scheduler_is_one_line_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed now fails
    code, _, err = cli("--folds", 2, "--scheduler", "tcp://127.0.0.1:8786", "--out", tmp_path / "cv", home=tmp_path)
    assert code == 2 and err == 'train_numpy.py: error: --scheduler needs Dask: pip install -e ".[cluster]"\n'
    assert not (tmp_path / "cv").exists()


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    # Worker processes inherit this process's environment (conftest: one BLAS thread).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    (home / "sweep.toml").write_text(SWEEP)
    return {"home": home, "clips": make_clips(home / "clips"), "cache": home / "cache"}


def test_a_sweep_on_a_local_cluster_equals_the_local_sweep(world, cluster, tmp_path):
    common = ["--data", world["clips"], "--cache-dir", world["cache"]]
    # One thread per job, as each Dask worker has here: the weights then match whatever else runs.
    code, _, err = cli("sweep", world["home"] / "sweep.toml", "--out", tmp_path / "local", "--threads", 1, *common,
                       home=world["home"])
    assert code == 0, err
    code, out, err = cli("sweep", world["home"] / "sweep.toml", "--out", tmp_path / "dask",
                         "--scheduler", cluster.scheduler_address, *common, home=world["home"])
    assert code == 0, err
    assert "lr 3e-2  fold 2/2  epoch 2/2  loss " in out   # the workers' lines reach this terminal
    local, dask = (json.loads((tmp_path / d / "sweep.json").read_text()) for d in ("local", "dask"))
    assert dask == local
    for cell in ("lr-1e-2/seed0", "lr-3e-2/seed0"):
        assert (tmp_path / "dask" / cell / "cv_results.json").read_bytes() == \
            (tmp_path / "local" / cell / "cv_results.json").read_bytes()
        assert json.loads((tmp_path / "dask" / cell / "fold1" / "results.json").read_text())["threads"] == 1


def test_folds_on_a_local_cluster_equal_the_local_folds_and_resume_there(world, cluster, tmp_path):
    common = ["--data", world["clips"], "--cache-dir", world["cache"], "--arch", TINY_ARCH, "--epochs", 2,
              "--lr", 0.01, "--folds", 2, "--group-by", "clip"]
    assert cli(*common, "--out", tmp_path / "local", "--threads", 1, home=world["home"])[0] == 0
    code, out, err = cli(*common, "--out", tmp_path / "dask", "--scheduler", cluster.scheduler_address,
                         home=world["home"])
    assert code == 0, err
    assert (tmp_path / "dask" / "cv_results.json").read_bytes() == (tmp_path / "local" / "cv_results.json").read_bytes()
    code, out, err = cli("--resume", tmp_path / "dask", "--epochs", 3, "--scheduler", cluster.scheduler_address,
                         home=world["home"])
    assert code == 0, err
    assert "fold 1/2  epoch 3/3" in out and "fold 1/2  epoch 2/3" not in out


def test_an_unreachable_scheduler_is_one_line(world, tmp_path):
    pytest.importorskip("distributed")
    code, _, err = cli("--folds", 2, "--data", world["clips"], "--scheduler", "tcp://127.0.0.1:9",
                       "--out", tmp_path / "cv", home=world["home"])
    assert code == 2 and err.count("\n") == 1, err
    assert "--scheduler tcp://127.0.0.1:9: no Dask scheduler answered" in err and not (tmp_path / "cv").exists()
