"""``citeqa eval``: scores citation accuracy, retrieval, answers and abstention over any running
citeqa (it drives the HTTP API, so it sits above citeqa.api)."""
