"""neurohw: a liquid state machine on a simulated resistive-memory crossbar.

Data flow (one direction): events -> binning -> reservoir (crossbar + LIF) -> features
-> head -> evaluation -> run directory. See docs/ and ARCHITECTURE.md of the design card.
"""

__version__ = "0.1.0"
