"""The API's routes, one module per group: thin handlers that get what they need through ``Provide``."""
