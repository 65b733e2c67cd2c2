"""The Textual lab bench (``labbench`` with no command)."""
