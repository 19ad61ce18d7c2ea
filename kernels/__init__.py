"""CUDA sources, installed as ``neurohw.kernels``; see neurohw/resources.py."""
