"""Widgets of the lab bench, one module per panel."""
