"""Analytics: funnel, velocity, KPIs, attribution, ROI and the shared dashboard."""
