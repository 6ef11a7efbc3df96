"""Helpers the tests share: real servers, CLI runs, scripted generators, the seed questions.

Fixtures live in each folder's conftest.py; these are plain functions and classes."""
