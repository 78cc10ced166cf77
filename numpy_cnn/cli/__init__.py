"""The command line of ``train_numpy.py``, on top of everything else.

* :mod:`.main` -- ``main()``: the commands table, training's flags, evaluate and predict
* :mod:`.data` -- ``make-data``
* :mod:`.study` -- ``summary``, ``trace``, ``visualize``
* :mod:`.paths` -- where things are kept by default, relative to the repository
* :mod:`.process_env` -- thread settings that must be made before NumPy loads

This file imports nothing, so ``process_env`` can be imported before NumPy.
"""
