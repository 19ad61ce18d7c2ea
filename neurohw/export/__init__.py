"""Exports to the tools that program and run real devices: NIR graphs, conductance maps."""
