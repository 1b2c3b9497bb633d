"""Tile models; filled in by the tiles work."""
