"""The CSV import engine behind `embudo import KIND FILE`: reading real-world files
(:mod:`.source`), mapping their headers to fields (:mod:`.mapping`), cell parsers
(:mod:`.cells`), row-level errors (:mod:`.report`), tables imported in two passes
(:mod:`.table`) and the run in one transaction (:mod:`.run`).

An app adds a kind (contacts, deals, events, costs…) by registering an
:class:`~embudo.csvimport.run.Importer` from its own ``importing`` module, which
`embudo import` discovers; what the records are and how they are written stays in the app.
"""
