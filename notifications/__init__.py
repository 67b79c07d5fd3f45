"""Templated messages: enqueued with the change that fires them, delivered after commit."""
