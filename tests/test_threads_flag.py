"""--threads N: the kernels' thread count, printed in the first lines and stored in results.json."""

import json

import pytest
from test_cli import cli, train_args
from train_support import make_class_folders

numba = pytest.importorskip("numba")


def test_threads_are_printed_and_recorded(tmp_path, numba_threads):   # the fixture restores the count
    data = make_class_folders(tmp_path / "faces")
    code, out, err = cli(*train_args(data, tmp_path / "run", tmp_path / "cache", "--threads", 1), home=tmp_path)
    assert code == 0, err
    line = next(line for line in out.splitlines()[:5] if line.startswith("threads: "))
    assert line.startswith("threads: 1, fixed (this process may use ")
    assert json.loads((tmp_path / "run" / "results.json").read_text())["threads"] == 1


@pytest.mark.parametrize("threads", [0, 1000])
def test_more_threads_than_the_pool_is_one_line(tmp_path, threads):
    data = make_class_folders(tmp_path / "faces")
    code, out, err = cli(*train_args(data, tmp_path / "run", tmp_path / "cache", "--threads", threads),
                         home=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"--threads {threads}" in err and "NUMBA_NUM_THREADS" in err
    assert not (tmp_path / "run").exists()
