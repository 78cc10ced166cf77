"""Training: the paper's experiment, from a dataset folder to Table 1.

One idea per file:

* :mod:`.config` -- the hyper-parameters of a run, and their checks
* :mod:`.loop` -- one epoch of SGD, and batched evaluation (the hot path)
* :mod:`.run` -- a whole run: data, model, epochs, checkpoints, resume, Ctrl-C
* :mod:`.rundata` -- which images a run uses, and finding the same ones again
* :mod:`.rundir` -- the files of a run directory (metrics, Table 1, results, plots)
* :mod:`.progress` -- the one line printed per epoch
* :mod:`.inference` -- evaluate a checkpoint on a dataset, predict single images
"""
