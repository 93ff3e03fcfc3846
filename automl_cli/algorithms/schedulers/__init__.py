"""Schedulers: when to run what, for how many epochs (one file each; contract in base.py)."""
