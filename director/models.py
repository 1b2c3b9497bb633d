"""Director models (BOSH's data model); filled in by the director core."""
