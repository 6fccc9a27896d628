"""Analyst notebooks (jupytext percent files) and their executor, ``python -m notebooks.run``."""
