"""A question becomes a cited answer: generators draft, citations.py verifies, answer.py assembles."""
