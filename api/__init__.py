"""The HTTP and command-line face of citeqa."""
