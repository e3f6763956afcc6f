"""Pieces of the `tdxhp vm` driver: each module is one phase or one pure helper."""
