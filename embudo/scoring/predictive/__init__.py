"""The predictive app's former home, kept only so background tasks queued under the old module
path still run after an upgrade. The app itself is `embudo.predictive`."""
