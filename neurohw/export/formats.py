"""The formats ``neurohw export --format`` writes (docs/export.md), named here so that the
command line can offer them without loading the exporters (torch, onnx, h5py)."""

#: every export format, in the order ``neurohw export --help`` lists them
FORMATS = ("conductance-hdf5", "conductance-csv", "nir", "head-onnx", "head-safetensors", "bundle")
#: formats written as one file, with the suffix of their temporary file (the others are folders)
FILE_FORMATS = {"conductance-hdf5": ".h5", "head-safetensors": ".safetensors"}
