"""Measures (pure functions), plots (Display objects) and their assembly."""
