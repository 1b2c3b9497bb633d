"""Apply Changes moved to ``tiles.services.installations`` (issue 10).

Kept for callers outside this part that still import it here: ``tiles/apps.py``
(importing it registers the configs task handler), ``opsconsole/backup/keys.py``
and ``tiles/services/busy.py`` (``running_installation``).
"""

from tiles.services.installations import running_installation  # noqa: F401 - see above
