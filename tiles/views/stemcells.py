"""The Stemcells page: the console's Stemcell Library and the director's stemcells.

Ops Manager's "Stemcell Library" is the console's, not the director's: an
upload is kept in the library and its director upload starts at once
(``tiles.services.stemcells.import_stemcell``); the library lists, per
stemcell, whether the director has it or Apply Changes will upload it, and
the staged products deploying with it. Below it, the director's own
stemcells. The page keeps its address, ``/director/stemcells/``.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from director.models import TaskState
from director.services import stemcells as director_stemcells
from opsconsole.auth import can_write
from opsconsole.errors import ServiceError
from tiles.services.stemcells import import_stemcell, stemcell_library


@require_http_methods(["GET", "POST"])
def stemcells(request):
    """List the library and the director's stemcells; POST imports a stemcell tarball."""
    if request.method == "POST":
        if not can_write(request.user):
            messages.error(request, "Your role may not upload stemcells.")
            return redirect("stemcells")
        upload = request.FILES.get("stemcell[file]") or request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a stemcell tarball (.tgz) to upload.")
            return redirect("stemcells")
        try:
            result = import_stemcell(upload, request.user.get_username())
        except ServiceError as exc:
            text = "; ".join(m for msgs in exc.errors.values() for m in msgs)
            messages.error(request, f"{upload.name}: {text}")
            return redirect("stemcells")
        messages.info(request, result.message)
        task = result.task
        if task.state == TaskState.DONE:
            messages.info(request, task.result)
            return redirect("stemcells")
        return redirect("task", task_id=task.id)
    return render(
        request,
        "tiles/stemcells.html",
        {
            "stemcells": director_stemcells.list_stemcells(),
            "library": stemcell_library(),
            "can_write": can_write(request.user),
        },
    )
