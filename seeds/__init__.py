"""The articles indexed on the first start of a data directory (package data: ``importlib.resources.files("citeqa.seeds")``)."""
