"""Template context shared by every page: navigation and version."""

from . import __version__

NAVIGATION = [
    ("dashboard", "Installation Dashboard"),
    ("stemcells", "Stemcells"),
    ("tasks", "Tasks"),
    ("vms", "VMs"),
    ("events", "Events"),
    ("changelog", "Change Log"),
]


def console(request):
    return {"console_version": __version__, "navigation": NAVIGATION}
