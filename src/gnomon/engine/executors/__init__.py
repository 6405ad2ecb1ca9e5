"""Executors, one module each."""
