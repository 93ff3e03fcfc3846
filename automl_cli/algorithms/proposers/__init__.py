"""Proposers: which configuration to try next (one file each; contract in base.py)."""
