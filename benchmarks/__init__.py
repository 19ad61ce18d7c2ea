"""Benchmarks, installed as ``neurohw.benchmarks`` so that ``neurohw bench`` runs anywhere."""
