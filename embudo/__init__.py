"""Embudo: one funnel for marketing and sales."""

__version__ = "0.1.0"
