"""Wires the example agent for the goldens in goldens/ (`agent: travel`)."""

import examples.travel_agent  # noqa: F401  (registers the "travel" adapter)
