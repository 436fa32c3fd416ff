"""The command line and the demo: the one layer that drives warehouse, ml and api together."""
