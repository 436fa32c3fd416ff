"""Serving: the Litestar scoring API, its durable prediction log, and the monitoring dashboard app."""
