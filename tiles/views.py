"""Console pages (thin over tiles.services)."""

from django.shortcuts import render


def dashboard(request):
    return render(request, "tiles/dashboard.html", {"tiles": []})


def changelog(request):
    return render(request, "tiles/changelog.html", {"installations": []})
