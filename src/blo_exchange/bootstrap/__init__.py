"""Composition: builds a node or a ledger writer from settings, wiring adapters into services."""
