"""Products (tiles): product templates, staged config, forms, manifests, Apply Changes."""
