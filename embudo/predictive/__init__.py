"""Predictive conversion: a model learnt from the company's outcomes, calibrated, explained."""
