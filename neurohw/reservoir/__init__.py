"""The liquid state machine: LIF neurons on an input and a recurrent crossbar.

- :mod:`.lif`: the neuron step (equation in its docstring).
- :mod:`.synapses`: weights, read noise and ADC as the backends take them.
- :mod:`.rng`: counter-based Philox draws, identical on every backend.
- :mod:`.lsm`: :class:`LSMConfig`, :class:`LSMEncoder` (crossbars -> features).
- :mod:`.target_rate`: the weight scale that gives a target firing rate.
- :mod:`.nir_reader`: NIR graphs read as a reservoir, and their crossbars on a device.
- :mod:`.backends`: numpy (reference), cpu (numba), cupy (CUDA kernels in kernels/*.cu).
"""
