"""Fit and engagement scoring: rules, decay, bands, score history and the MQL threshold."""
