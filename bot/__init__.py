"""Liaison: a secure multilingual bot for wildlife-enforcement liaison officers."""

__version__ = "0.1.0"
