"""``GET /api/v0/staged/pending_changes`` while an Apply Changes runs: no director's plan.

As on the Review Pending Changes page (``test_pending_review``): a plan computed
mid-deploy reads the instances being updated as "previous deploy did not
finish". The answer keeps Ops Manager's shape and says which installation the
plan waits for.
"""

from __future__ import annotations

import pytest

from tiles.models import Installation
from tiles.services import pending

pytestmark = pytest.mark.django_db

API = "/api/v0"

#: What the director would plan mid-deploy: an instance the running apply is updating.
HALF_DONE = {
    "summary": {"recreate": 1},
    "instance_groups": [
        {
            "name": "web",
            "instances": [
                {
                    "name": "web/u0 (0)",
                    "change": "recreate",
                    "reasons": ["previous deploy did not finish"],
                }
            ],
        }
    ],
}


def test_while_an_apply_runs_the_api_answers_without_a_plan_and_names_it(
    small, admin_api, monkeypatch
):
    small.deployed_version = "1.0.0"
    small.deployed_manifest = "name: old\n"
    small.save()
    planned = []
    monkeypatch.setattr(pending, "_plan", lambda *a, **k: planned.append(a) or HALF_DONE)
    running = Installation.objects.create(user_name="ops", status="running")

    res = admin_api.get(f"{API}/staged/pending_changes")
    assert res.status_code == 200
    body = res.json()
    assert planned == []
    assert "previous deploy did not finish" not in res.content.decode()
    # Ops Manager's shape: every entry has its guid, action, checks and plan (null now).
    for change in body["product_changes"]:
        assert {"guid", "action", "completeness_checks", "plan"} <= set(change)
        assert change["plan"] is None
    [entry] = [c for c in body["product_changes"] if c["guid"] == small.guid]
    assert entry["action"] == "update" and entry["manifest_diff"]
    assert entry["plan_waits_for_installation"] == running.id
    assert body["running_installation"]["id"] == running.id
    assert body["running_installation"]["user_name"] == "ops"
    assert body["notice"].startswith(f"Installation {running.id} is running")
    assert "plan is computed once it finishes" in body["notice"]

    # Once it has finished: the plan is back, no notice.
    Installation.objects.filter(id=running.id).update(status="succeeded")
    body = admin_api.get(f"{API}/staged/pending_changes").json()
    assert len(planned) == 1
    assert set(body) == {"product_changes"}
    [entry] = [c for c in body["product_changes"] if c["guid"] == small.guid]
    assert entry["plan"] == HALF_DONE and "plan_waits_for_installation" not in entry
