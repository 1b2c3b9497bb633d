"""The Health page's resurrection timeline: outages drawn as a server-rendered SVG.

The page is rendered with resurrection events in the database and the SVG
it holds is parsed: one bar per outage in its instance's lane, widths that
follow how long each VM was down, the in-progress and failed styling, the
meltdown shading, and the same outages in the table beside it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from director.health.timeline import outages
from director.models import Alert, ResurrectionEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

SVG = "{http://www.w3.org/2000/svg}"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin_client(client, admin_user, settings, tmp_path):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"
    client.force_login(admin_user)
    return client


def event(ago: float, deployment: str, instance: str, decision: str, **fields):
    return ResurrectionEvent.objects.create(
        created_at=timezone.now() - timedelta(seconds=ago),
        deployment=deployment,
        instance=instance,
        decision=decision,
        cause=fields.pop("cause", "missing_vm"),
        **fields,
    )


def outage(deployment, instance, down_ago, up_ago=None, outcome="recreated", **fields):
    """detected at ``down_ago`` s ago, resurrect, then ``outcome`` at ``up_ago`` s ago."""
    event(down_ago, deployment, instance, "detected", old_cid=f"vm-{instance[-4:]}")
    event(down_ago - 0.5, deployment, instance, "resurrect")
    if up_ago is not None:
        seconds = down_ago - up_ago if outcome == "recreated" else None
        event(up_ago, deployment, instance, outcome, seconds_to_recover=seconds, **fields)


@pytest.fixture
def history():
    outage("zk", "zookeeper/aaaa1111-0000", 300, 270, new_cid="vm-new-a")  # 30 s
    outage("zk", "zookeeper/bbbb2222-0000", 400, 310, new_cid="vm-new-b")  # 90 s
    outage("zk", "zookeeper/cccc3333-0000", 200, 150, "failed", message="CloneVM_Task: no space")
    outage("zk", "zookeeper/dddd4444-0000", 100)  # still down
    outage("web", "web/eeee5555-0000", 60, 50, new_cid="vm-new-e")  # 10 s
    now = timezone.now()
    Alert.objects.create(
        key="meltdown:zk",
        category="deployment_health",
        severity=1,
        cause="meltdown",
        title="We are in meltdown",
        deployment="zk",
        created_at=now - timedelta(seconds=250),
        last_seen_at=now - timedelta(seconds=220),
        resolved_at=now - timedelta(seconds=220),
    )


def svg_of(body: str) -> ET.Element:
    found = re.search(r'<svg class="timeline resurrections".*?</svg>', body, re.S)
    assert found, "no resurrection timeline on the page"
    return ET.fromstring(found.group(0))


def bars(svg: ET.Element) -> dict[str, tuple[ET.Element, ET.Element]]:
    """``{instance: (lane <g>, bar <g>)}`` for lanes holding one bar."""
    out = {}
    for lane in svg.iter(f"{SVG}g"):
        if lane.get("class") != "lane":
            continue
        lane_bars = [g for g in lane.findall(f"{SVG}g") if "bar" in g.get("class", "").split()]
        assert len(lane_bars) == 1, lane.get("data-instance")
        out[lane.get("data-instance")] = (lane, lane_bars[0])
    return out


def width(bar: ET.Element) -> float:
    return float(bar.find(f"{SVG}rect").get("width"))


def end(bar: ET.Element) -> float:
    rect = bar.find(f"{SVG}rect")
    return float(rect.get("x")) + float(rect.get("width"))


def test_the_health_page_draws_one_bar_per_outage_in_its_instances_lane(admin_client, history):
    body = admin_client.get("/director/health/").content.decode()
    svg = svg_of(body)
    drawn = bars(svg)
    assert sorted(drawn) == [
        "web/eeee5555-0000",
        "zookeeper/aaaa1111-0000",
        "zookeeper/bbbb2222-0000",
        "zookeeper/cccc3333-0000",
        "zookeeper/dddd4444-0000",
    ]
    assert len([g for g in svg.iter(f"{SVG}g") if "bar" in g.get("class", "").split()]) == 5
    for instance, (lane, _) in drawn.items():
        label = lane.find(f"{SVG}text")
        deployment = "web" if instance.startswith("web/") else "zk"
        assert label.text == f"{deployment} {instance[: instance.index('/') + 9]}"
        assert lane.get("data-deployment") == deployment

    # Longer recovery, wider bar: 90 s > 30 s > 10 s.
    a, b, e = (
        drawn[i][1]
        for i in ("zookeeper/aaaa1111-0000", "zookeeper/bbbb2222-0000", "web/eeee5555-0000")
    )
    assert width(b) > width(a) > width(e)
    assert width(b) == pytest.approx(3 * width(a), rel=0.05)
    for bar in (a, b, e):
        assert bar.get("class") == "bar recovered"
    assert "recreated after 30.0 s, new VM vm-new-a" in a.find(f"{SVG}title").text
    assert "recreated after 90.0 s" in b.find(f"{SVG}title").text

    failed = drawn["zookeeper/cccc3333-0000"][1]
    assert failed.get("class") == "bar failed"
    assert failed.find(f"{SVG}path").get("class") == "fail-mark"
    assert (
        "resurrection failed after 50.0 s: CloneVM_Task: no space"
        in failed.find(f"{SVG}title").text
    )

    running = drawn["zookeeper/dddd4444-0000"][1]
    assert running.get("class") == "bar in-progress"
    assert running.find(f"{SVG}path").get("class") == "now-mark"
    assert "still down after" in running.find(f"{SVG}title").text
    assert end(running) > max(end(g) for _, g in drawn.values() if g is not running)  # up to now

    # The meltdown of zk, shaded behind zk's four lanes only, between its outages.
    (shade,) = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "meltdown"]
    assert shade.get("data-deployment") == "zk"
    assert float(shade.get("height")) == 4 * 22
    x = float(shade.get("x"))
    assert end(b) < x < float(failed.find(f"{SVG}rect").get("x"))
    assert "zk in meltdown from" in shade.find(f"{SVG}title").text

    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert len(ticks) >= 3 and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t) for t in ticks)
    assert svg.find(f"{SVG}title").text.startswith(
        "Resurrection timeline: 5 outages of 5 instances"
    )

    # The text fallback lists the same outages.
    table = body.split('id="rt-table"')[1].split("</table>")[0]
    states = re.findall(r'<tr data-state="([a-z-]+)">', table)
    assert sorted(states) == ["failed", "in-progress", "recovered", "recovered", "recovered"]
    assert "90.0 s" in table and "still down" in table and "CloneVM_Task: no space" in table


def test_the_timeline_is_plain_svg_that_the_content_security_policy_allows(admin_client, history):
    response = admin_client.get("/director/health/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    found = re.search(r"<svg .*?</svg>", response.content.decode(), re.S).group(0)
    assert "<script" not in found and "style=" not in found
    assert not re.search(r"\son[a-z]+=", found)  # no event handler attributes


def test_the_htmx_refresh_carries_the_timeline_filtered_by_deployment(admin_client, history):
    body = admin_client.get("/director/health/?deployment=web", **HTMX).content.decode()
    assert body.startswith('<div id="health-feed"')
    assert list(bars(svg_of(body))) == ["web/eeee5555-0000"]
    assert 'class="meltdown"' not in body


def test_no_events_no_picture(admin_client):
    body = admin_client.get("/director/health/").content.decode()
    assert "<svg" not in body.split('id="resurrections"')[1]
    assert "No resurrection events." in body


def test_outages_end_when_their_alert_is_resolved_or_a_new_detection_comes():
    now = timezone.now()
    name = "zookeeper/ffff6666-0000"
    outage("zk", name, 500)
    Alert.objects.create(
        key="vm_health:zk:ffff6666-0000",
        category="vm_health",
        severity=2,
        cause="powered_off",
        title="off",
        deployment="zk",
        instance=name,
        created_at=now - timedelta(seconds=500),
        last_seen_at=now - timedelta(seconds=480),
        resolved_at=now - timedelta(seconds=480),
    )
    outage("zk", name, 100)  # down again later, still down
    # A recreation whose detection is older than the events read: started from its seconds.
    event(20, "zk", "zookeeper/gggg7777-0000", "recreated", seconds_to_recover=12.5)
    found = outages(ResurrectionEvent.objects.all(), now)
    assert [(o.instance, o.state) for o in found] == [
        (name, "cleared"),
        (name, "in-progress"),
        ("zookeeper/gggg7777-0000", "recovered"),
    ]
    assert found[0].seconds(now) == pytest.approx(20, abs=0.5)
    assert found[1].ended is None
    assert found[2].seconds(now) == pytest.approx(12.5, abs=0.01)


def test_a_retry_after_a_failure_is_in_progress_again_then_recovered():
    name = "zookeeper/hhhh8888-0000"
    outage("zk", name, 300, 250, "failed", message="boom")
    event(180, "zk", name, "resurrect")
    assert [o.state for o in outages(ResurrectionEvent.objects.all(), timezone.now())] == [
        "in-progress"
    ]
    event(170, "zk", name, "recreated", seconds_to_recover=130)
    (o,) = outages(ResurrectionEvent.objects.all(), timezone.now())
    assert o.state == "recovered" and o.seconds(timezone.now()) == pytest.approx(130, abs=0.5)
