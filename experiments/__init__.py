"""Shipped experiments (YAML), installed as ``neurohw.experiment_files``; see neurohw/resources.py."""
