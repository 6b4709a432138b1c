"""Orchestration: each entry point calls one function here."""
