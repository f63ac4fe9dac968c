"""Segments and personas: one condition language over contacts, companies, scores, behaviour."""
