"""Template context shared by every page: navigation and version."""

from . import __version__
from .auth import ROLE_ADMIN, role_of

NAVIGATION = [
    ("dashboard", "Installation Dashboard"),
    ("stemcells", "Stemcells"),
    ("tasks", "Tasks"),
    ("vms", "VMs"),
    ("health", "Health"),
    ("events", "Events"),
    ("changelog", "Change Log"),
]


#: Only for admins (the Users page refuses other roles).
ADMIN_NAVIGATION = [("users", "Users")]


def console(request):
    admin = role_of(getattr(request, "user", None)) == ROLE_ADMIN
    return {
        "console_version": __version__,
        "navigation": NAVIGATION + ADMIN_NAVIGATION if admin else NAVIGATION,
    }
