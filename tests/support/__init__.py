"""Shared test helpers: deterministic translators and database set-up."""
