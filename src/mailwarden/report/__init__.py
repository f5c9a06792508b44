"""Renderers of a triage result: JSON (the contract) and the terminal summary."""
