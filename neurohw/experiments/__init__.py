"""YAML experiments end to end: schema, feature cache, tasks, runner, report.

One YAML file in (:mod:`neurohw.experiments.schema`), one run directory of numbers and pictures
out (:mod:`neurohw.experiments.runner`). See docs/experiments.md.
"""
