"""Exchange with the tools that program and run devices: a run's chip conductance maps, NIR
graphs and ONNX / safetensors heads out (:mod:`.run_export`, :mod:`.chip_map`,
:mod:`.nir_graph`, :mod:`.onnx_head`); NIR reservoirs and measured chip maps in (docs/export.md)."""
