"""labbench: a terminal lab bench for a course on artificial neural networks."""

__version__ = "0.1.0"
