"""The articles indexed on the first start of a data directory.

Package data, read through ``importlib.resources.files("citeqa.seeds")``."""
