"""Serving: the Litestar scoring API and its durable prediction log."""
