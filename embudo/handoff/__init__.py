"""Handoff, the two-sided SLA and sales feedback."""
