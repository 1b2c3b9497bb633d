"""Errors raised while planning a deployment.

Every planning error names the place in the manifest or cloud-config that
caused it (``instance_groups/zk/networks/default/static_ips``), so the UI
and the API can point the operator at the field instead of showing a
traceback. The subclasses keep BOSH's error names so that operators who
know BOSH recognise them.
"""

from __future__ import annotations


class PlanError(ValueError):
    """A manifest, cloud-config or current state the planner cannot plan.

    ``path`` is the slash-separated location of the offending value (may be
    empty when the problem is not tied to one field); ``str(error)`` is
    ``"<path>: <message>"``.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class NetworkReservationError(PlanError):
    """An IP address could not be reserved."""


class NetworkReservationIpOutsideSubnet(NetworkReservationError):
    """A static IP is in none of the network's subnets."""


class NetworkReservationIpReserved(NetworkReservationError):
    """A static IP is restricted (reserved, gateway, network, broadcast,
    director) or not in the subnet's ``static`` list."""


class NetworkReservationAlreadyInUse(NetworkReservationError):
    """A static IP is held by another instance (of any deployment)."""


class NetworkReservationNotEnoughCapacity(NetworkReservationError):
    """The subnets of a network in an AZ have too few free addresses."""


class DeploymentIgnoredInstancesModification(PlanError):
    """The manifest would delete, move or re-network an ignored instance."""


class UpdateConfigError(PlanError):
    """An ``update`` block value is invalid (canaries, max_in_flight, ...)."""


class UnresponsiveInstance(PlanError):
    """An existing instance's agent does not answer and ``fix`` is off."""
