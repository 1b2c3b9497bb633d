"""The update block, canary/max_in_flight arithmetic, batches and serial runs."""

import pytest

from director.planning.errors import UpdateConfigError
from director.planning.inputs import ExistingInstance
from director.planning.model import DeploymentPlan, InstanceGroupPlan, InstancePlan
from director.planning.schedule import group_runs, schedule
from director.planning.update import WatchTime, resolve_numeric, resolve_update_config

BASE = {
    "canaries": 1,
    "max_in_flight": 2,
    "canary_watch_time": "1000-30000",
    "update_watch_time": 5000,
}


def plan(index, az, change="update", bootstrap=False, group="zk"):
    return InstancePlan(
        group=group,
        uuid=f"u{index}",
        index=index,
        az=az,
        bootstrap=bootstrap,
        change=change,
        reasons=(),
        changes=frozenset(),
        needs_shutting_down=False,
        needs_duplicate_vm=False,
        desired=None,
        existing=None,
    )


def layout(batches):
    """Batches as readable strings: '*z1:0,3' = canary batch in z1 of indexes 0 and 3."""
    return [
        ("*" if b.canary else "") + f"{b.az}:" + ",".join(str(p.index) for p in b.plans)
        for b in batches
    ]


# -- numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value, size, expected",
    [
        (1, 10, 1),
        ("3", 10, 3),
        (0, 10, 0),
        ("10%", 10, 1),
        ("25%", 10, 2),  # floor(2.5)
        ("33%", 3, 0),  # floor(0.99)
        ("50%", 5, 2),
        ("100%", 7, 7),
        ("150%", 4, 4),  # never more than size
        ("0%", 5, 0),
        (5, 2, 5),  # integers are not capped
    ],
)
def test_resolve_numeric(value, size, expected):
    assert resolve_numeric(value, size) == expected


@pytest.mark.parametrize(
    "max_in_flight, size, expected",
    [("10%", 5, 1), (0, 5, 1), ("0%", 5, 1), ("50%", 10, 5), (3, 10, 3), ("100%", 0, 1)],
)
def test_max_in_flight_is_at_least_one_but_canaries_may_be_zero(max_in_flight, size, expected):
    config = resolve_update_config({**BASE, "canaries": "0%", "max_in_flight": max_in_flight})
    assert config.max_in_flight_for(size) == expected
    assert config.canaries_for(size) == 0


# -- update config ----------------------------------------------------------


def test_group_update_overrides_key_by_key_and_options_override_both():
    config = resolve_update_config(
        {**BASE, "serial": False, "vm_strategy": "create-swap-delete"},
        {"max_in_flight": "50%", "update_watch_time": "100-200"},
        group_path="instance_groups/zk",
    )
    assert config.canaries == "1"
    assert config.max_in_flight == "50%"
    assert config.canary_watch_time == WatchTime(1000, 30000)
    assert config.update_watch_time == WatchTime(100, 200)
    assert config.serial is False
    assert config.vm_strategy == "create-swap-delete"
    forced = resolve_update_config(BASE, None, canaries="3", max_in_flight=4)
    assert (forced.canaries, forced.max_in_flight) == ("3", "4")


def test_defaults():
    config = resolve_update_config(BASE, default_vm_strategy="create-swap-delete")
    assert config.serial is True
    assert config.vm_strategy == "create-swap-delete"
    assert config.initial_deploy_az_update_strategy == "serial"
    assert config.update_watch_time == WatchTime(5000, 5000)


@pytest.mark.parametrize(
    "deployment, group, path, message",
    [
        ({**BASE, "canaries": "x"}, None, "update/canaries", "must be an integer or a percentage"),
        ({**BASE, "canaries": -1}, None, "update/canaries", "must be an integer or a percentage"),
        ({**BASE, "canaries": True}, None, "update/canaries", "must be an integer"),
        (BASE, {"max_in_flight": "1.5%"}, "instance_groups/zk/update/max_in_flight", "integer"),
        (
            {**BASE, "canary_watch_time": "30000-1000"},
            None,
            "update/canary_watch_time",
            "min watch time is greater than max watch time",
        ),
        (
            BASE,
            {"update_watch_time": "fast"},
            "instance_groups/zk/update/update_watch_time",
            "must be milliseconds",
        ),
        ({**BASE, "serial": "yes"}, None, "update/serial", "must be true or false"),
        (BASE, {"vm_strategy": "swap"}, "instance_groups/zk/update/vm_strategy", "'swap' is not"),
        (
            {**BASE, "initial_deploy_az_update_strategy": "all"},
            None,
            "update/initial_deploy_az_update_strategy",
            "'all' is not one of serial, parallel",
        ),
        (
            {k: v for k, v in BASE.items() if k != "canaries"},
            None,
            "instance_groups/zk/update/canaries",
            "is required",
        ),
        ([], None, "update", "must be a mapping"),
    ],
)
def test_update_config_errors_name_the_key(deployment, group, path, message):
    with pytest.raises(UpdateConfigError) as err:
        resolve_update_config(deployment, group, group_path="instance_groups/zk")
    assert err.value.path == path
    assert message in err.value.message


# -- batches ------------------------------------------------------------------


@pytest.mark.parametrize(
    "canaries, max_in_flight, plans, expected",
    [
        # one canary in the first AZ, then max_in_flight per AZ
        (
            1,
            2,
            [(0, "z1", True), (1, "z2"), (2, "z3"), (3, "z1"), (4, "z2"), (5, "z3")],
            ["*z1:0", "z1:3", "z2:1,4", "z3:2,5"],
        ),
        # percentages are computed on each AZ's plan count
        (
            "50%",
            "50%",
            [(i, "z1" if i < 4 else "z2") for i in range(6)],
            ["*z1:0,1", "z1:2,3", "z2:4", "z2:5"],
        ),
        # more canaries than max_in_flight: several canary batches
        (3, 2, [(i, "z1") for i in range(5)], ["*z1:0,1", "*z1:2", "z1:3,4"]),
        # zero canaries
        (0, 3, [(i, "z1") for i in range(4)], ["z1:0,1,2", "z1:3"]),
        # canaries never exceed the first AZ's size and never run in later AZs
        (5, 10, [(0, "z1"), (1, "z2"), (2, "z2")], ["*z1:0", "z2:1,2"]),
        # bootstrap first, then its AZ, then AZs in order of first appearance
        (
            1,
            5,
            [(0, "z1"), (1, "z2"), (2, "z3", True), (3, "z1"), (4, "z2"), (5, "z3")],
            ["*z3:2", "z3:5", "z1:0,3", "z2:1,4"],
        ),
        # no AZs
        (1, 2, [(0, None, True), (1, None), (2, None)], ["*None:0", "None:1,2"]),
        ("100%", 1, [], []),
    ],
)
def test_schedule(canaries, max_in_flight, plans, expected):
    update = resolve_update_config({**BASE, "canaries": canaries, "max_in_flight": max_in_flight})
    instance_plans = [plan(p[0], p[1], bootstrap=len(p) > 2 and p[2]) for p in plans]
    assert layout(schedule(instance_plans, update)) == expected


def test_schedule_leaves_out_unchanged_deleted_and_ignored_plans():
    update = resolve_update_config(BASE)
    ignored = plan(3, "z1")
    ignored = InstancePlan(
        **{
            **ignored.__dict__,
            "existing": ExistingInstance(uuid="u3", group="zk", index=3, az="z1", ignore=True),
        }
    )
    plans = [
        plan(0, "z1", "none", bootstrap=True),
        plan(1, "z1", "recreate"),
        plan(2, "z1", "delete"),
        ignored,
        plan(4, "z1", "create"),
    ]
    assert layout(schedule(plans, update)) == ["*z1:1", "z1:4"]


def test_parallel_initial_deploy_treats_all_azs_as_one():
    update = resolve_update_config({**BASE, "initial_deploy_az_update_strategy": "parallel"})
    plans = [plan(0, "z1", "create", True), plan(1, "z2", "create"), plan(2, "z3", "create")]
    assert layout(schedule(plans, update, initial_deploy=True)) == ["*None:0", "None:1,2"]
    # not on later deploys
    assert layout(schedule(plans, update, initial_deploy=False)) == ["*z1:0", "z2:1", "z3:2"]


# -- serial runs ----------------------------------------------------------------


def group(name, serial, lifecycle="service", plans=()):
    return InstanceGroupPlan(
        name=name,
        lifecycle=lifecycle,
        update=resolve_update_config({**BASE, "serial": serial}),
        instance_plans=tuple(plans),
    )


def test_group_runs_cut_consecutive_groups_with_equal_serial():
    deployment = DeploymentPlan(
        name="d",
        instance_groups=(
            group("a", True),
            group("b", False),
            group("c", False),
            group("smoke-tests", False, lifecycle="errand"),
            group("d", True),
            group("e", True),
            group("f", False),
        ),
    )
    runs = [(r.serial, [g.name for g in r.groups]) for r in group_runs(deployment)]
    assert runs == [
        (True, ["a"]),
        (False, ["b", "c"]),
        (True, ["d", "e"]),
        (False, ["f"]),
    ]


def test_errand_groups_with_vms_are_updated():
    existing = ExistingInstance(uuid="u0", group="e", index=0, az="z1", vm_cid="vm-1")
    errand_plan = InstancePlan(**{**plan(0, "z1", group="e").__dict__, "existing": existing})
    deployment = DeploymentPlan(
        name="d",
        instance_groups=(group("a", True), group("e", True, "errand", [errand_plan])),
    )
    assert [[g.name for g in r.groups] for r in group_runs(deployment)] == [["a", "e"]]
