"""Luma engine: Ray3.2 through the Luma Agents API (transport, request mapping, job ledger, node)."""
