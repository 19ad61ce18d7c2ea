"""Device presets (YAML), installed as ``neurohw.device_models``; see neurohw/resources.py."""
