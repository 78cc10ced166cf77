"""Training: the paper's experiment, from a dataset folder to Table 1.

One idea per file:

* :mod:`.config` -- the settings of a run, and every check on them
* :mod:`.recipe` -- ``recipe.toml``: a run's settings as a file, and ``--recipe`` to replay one
* :mod:`.loop` -- one epoch of SGD, and batched evaluation (the hot path)
* :mod:`.schedule`, :mod:`.balance` -- lr schedules; class balance (a sampler, class weights)
* :mod:`.selection` -- ``--val-frac``'s books: the best epoch, ``--keep best``, ``--patience``
* :mod:`.trainer` -- a whole run: data, model, epochs, checkpoints, resume, Ctrl-C
* :mod:`.governor` -- fewer threads while the machine is too busy for them, timed step by step
* :mod:`.run_split` -- which images a run uses, and finding the same ones again
* :mod:`.run_files` -- the files of a run directory (metrics, Table 1, results, plots)
* :mod:`.checkpoint` -- saving and loading a run's weights, optimizer state and settings
* :mod:`.metrics` -- Table 1, the confusion matrix and confidence intervals
* :mod:`.finetune` -- ``--init-from`` and ``--freeze``
* :mod:`.kfold` -- K-fold cross-validation: a loop around :func:`.trainer.train`
* :mod:`.parallel` -- many runs at once: worker processes here, or a Dask cluster
* :mod:`.sweep` -- ``sweep FILE.toml``: recipes x seeds x folds, compared fold by fold
* :mod:`.progress` -- the one line printed per epoch
* :mod:`.inference` -- evaluate a checkpoint on a dataset, predict single images
"""
