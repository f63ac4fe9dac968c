"""Automation: e-mail (templates, sending, tracking, consent, bounces) and, next, workflows."""
