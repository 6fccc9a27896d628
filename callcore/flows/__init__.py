"""Example IVR flows (YAML) shipped as package data; load them with ``callcore.ivr.load_flows``."""
