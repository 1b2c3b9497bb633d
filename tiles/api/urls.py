"""Console API routes (Ops Manager paths) under /api/v0/."""

urlpatterns: list = []
