"""Tasks queued before predictive scoring became `embudo.predictive` name this module (the
database queue and Redis both store a task's module path); they resolve to the same tasks."""

from embudo.predictive.tasks import rescore_contacts, retrain

__all__ = ["rescore_contacts", "retrain"]
