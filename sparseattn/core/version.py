"""The package's version (the same as ``pyproject.toml``'s), readable from every layer without importing the
top-level package."""

__version__ = "0.1.0"
