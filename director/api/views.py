"""Director API views (BOSH nouns), thin over director.services."""

from django.conf import settings
from rest_framework.decorators import api_view
from rest_framework.response import Response

from opsconsole import __version__


@api_view(["GET"])
def info(request):
    return Response(
        {
            "name": settings.DIRECTOR_NAME,
            "version": __version__,
            "cpi": "vsphere_cpi",
            "features": {"config_server": {"status": False}, "snapshots": {"status": False}},
        }
    )
