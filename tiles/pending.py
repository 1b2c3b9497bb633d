"""Review Pending Changes moved to ``tiles.services.pending`` (issue 10).

Kept for ``tiles/api/views.py`` (``staged_manifest``), which still imports
the redaction helpers here; they live in ``tiles.services.diffs``.
"""

from tiles.services.diffs import redact, secret_strings  # noqa: F401 - re-export, see above
