"""The NUL-refusing ``api_view`` lives in ``opsconsole.apiguard`` (the bottom layer).

Re-exported here because the director's API views (and ``tiles.api.views``)
import it as ``director.api.guard`` / ``.guard``.
"""

from opsconsole.apiguard import MESSAGE, NUL, api_view, refuse_nul  # noqa: F401  re-export
