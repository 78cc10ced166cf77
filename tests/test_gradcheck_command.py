"""``python train_numpy.py gradcheck``: the table, the exit status, one layer, and a user's mistakes."""

from numpy_cnn.cli.main import main
from numpy_cnn.nn.layers import Linear

SMALL = "c4k3-relu-pool2-fc16-relu"


def test_a_correct_network_passes_every_row_and_exits_0(capsys):
    assert main(["gradcheck", "--arch", SMALL, "--image-size", "12"]) == 0
    out = capsys.readouterr().out
    assert "layer" in out and "rel. error" in out and "tolerance" in out
    for row in ("conv1    weight", "pool1    input", "fc2      bias (whole network)"):
        assert row in out
    assert "FAIL" not in out and out.rstrip().splitlines()[-1].startswith("all ")


def test_a_wrong_backward_fails_its_row_and_exits_1(capsys, monkeypatch):
    right = Linear.backward
    monkeypatch.setattr(Linear, "backward", lambda self, g: None if (dx := right(self, g)) is None else 1.01 * dx)
    assert main(["gradcheck", "--arch", SMALL, "--image-size", "12"]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("fc1") and "input" in line and line.endswith("FAIL") for line in out.splitlines())
    assert "FAILED" in out.splitlines()[-1]


def test_layer_checks_one_layer_and_an_unknown_name_is_one_line(capsys):
    assert main(["gradcheck", "--arch", SMALL, "--image-size", "12", "--layer", "conv1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("conv", "relu", "pool", "fc"))]
    assert rows and all(line.startswith("conv1") for line in rows)
    assert main(["gradcheck", "--arch", SMALL, "--image-size", "12", "--layer", "conv9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no layer 'conv9'" in err and "conv1" in err


def test_a_bad_count_is_refused(capsys):
    assert main(["gradcheck", "--samples", "0"]) == 2
    assert "--samples must be >= 1, got 0" in capsys.readouterr().err


def test_the_numbers_repeat_with_the_seed(capsys):
    runs = []
    for _ in range(2):
        main(["gradcheck", "--arch", SMALL, "--image-size", "12", "--seed", "3"])
        runs.append(capsys.readouterr().out.splitlines()[:-1])   # the last line holds the time
    assert runs[0] == runs[1] and len(runs[0]) > 10
