"""Built-in policies: one module each, registered on import."""
