"""Built-in generators; each registers through the ``citeqa.generators`` entry-point group."""
