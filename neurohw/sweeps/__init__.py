"""Co-design sweeps and hyperparameter search over experiment configs.

One module per concept:

- :mod:`.base`: the experiment a sweep or search starts from (a path, a shipped name, or inline),
  and how a point's values are written into it and checked by the experiment schema;
- :mod:`.spec`: the sweep file (axes, ``zip`` groups, seeds) and its points, all validated
  before any point runs;
- :mod:`.point`: one point of a sweep or one trial of a search, run by
  :func:`neurohw.experiments.runner.run_experiment` in a worker, and its metrics as a flat row;
- :mod:`.executors`: where points run: a local process pool or Ray (they only schedule);
- :mod:`.records`: each finished point recorded atomically, so a killed sweep resumes;
- :mod:`.table`: the results table (CSV) and the mean and spread over seeds;
- :mod:`.plots`: each metric against each axis;
- :mod:`.sweep`: :func:`run_sweep`, the whole sweep;
- :mod:`.search`: :func:`run_search`, an Optuna study on the same executors, and
  :mod:`.search_plots`, its history and each parameter's effect;
- :mod:`.objectives`: a multi-objective search's metrics (validation, energy per sample, array
  cost), their units, directions and constraints; :mod:`.multi`: its samplers and what a trial
  stores; :mod:`.pareto`: the non-dominated filter and the hypervolume; :mod:`.front`: the
  front's tables and runnable YAMLs; :mod:`.front_plots`: its pair plots and hypervolume curve.
"""
