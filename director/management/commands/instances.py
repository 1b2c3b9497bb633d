"""``manage.py instances DEPLOYMENT``: instances with AZ, IPs, VM and disk (from the database)."""

from django.core.management.base import BaseCommand

from director import services
from director.management.progress import service_call, table


class Command(BaseCommand):
    help = "List the instances of a deployment."

    def add_arguments(self, parser):
        parser.add_argument("deployment")

    def handle(self, deployment, **options):
        rows = []
        for i in service_call(services.deployment_instances, deployment):
            vm = i.active_vm
            rows.append(
                [
                    f"{i.name} ({i.index}){'*' if i.bootstrap else ''}",
                    i.state,
                    i.az,
                    ", ".join(ip.address for ip in i.ip_addresses.all()),
                    vm.cid if vm else "",
                    ", ".join(d.disk_cid for d in i.persistent_disks.all() if d.active),
                ]
            )
        self.stdout.write(table(rows, ["Instance", "State", "AZ", "IPs", "VM CID", "Disk CIDs"]))
        self.stdout.write(f"{len(rows)} instances")
