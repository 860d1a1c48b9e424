"""Behaviour specific to one dataset kind."""
