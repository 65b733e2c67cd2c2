"""Screens pushed over the main one: help, confirm, save preset, compare."""
