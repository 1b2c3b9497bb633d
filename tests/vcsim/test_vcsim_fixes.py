"""vcsim as a pyvmomi client sees it: one test per patched defect
(tools/vcsim/patches; ../shared/reference/vcsim.md (beside the checkout)),
plus login and TLS.

The tests share the session's vcsim (except the clone race and the
launcher tests, which start their own): each makes its own objects, with
unique names, and asserts only on those.
"""

import socket
import ssl
import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from opsconsole.localservices.vcsim import start_vcsim

# --- helpers -----------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def find(si, vimtype, name):
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vimtype], True)
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
    finally:
        view.Destroy()
    raise LookupError(f"no {vimtype.__name__} named {name!r}")


def disks(vm):
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def clone(vm, name, folder, **spec_args):
    task = vm.CloneVM_Task(folder=folder, name=name, spec=vim.vm.CloneSpec(**spec_args))
    WaitForTask(task)
    return task.info.result


@pytest.fixture
def dc(vsphere_si, vcsim):
    return find(vsphere_si, vim.Datacenter, vcsim.inventory["datacenters"][0])


@pytest.fixture
def cluster(vsphere_si, vcsim):
    return find(vsphere_si, vim.ClusterComputeResource, vcsim.inventory["clusters"][0])


@pytest.fixture
def template(vsphere_si, vcsim, dc, cluster):
    """A fresh template cloned from one of the model's VMs (it has one disk)."""
    source = find(vsphere_si, vim.VirtualMachine, vcsim.inventory["vms"][0])
    location = vim.vm.RelocateSpec(pool=cluster.resourcePool)
    return clone(source, unique("tmpl"), dc.vmFolder, location=location, template=True)


def datastore_get(vcsim, dc_name, ds_name, path):
    """GET a datastore file through vcsim's /folder endpoint, verifying TLS."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=
    resp = session.get(
        f"https://{vcsim.host}/folder/{path}",
        params={"dcPath": dc_name, "dsName": ds_name},
        verify=vcsim.cert_file,
        timeout=30,
    )
    resp.raise_for_status()
    return resp.content


def split_ds_path(ds_path):
    """'[LocalDS_0] a/b.vmdk' -> ('LocalDS_0', 'a/b.vmdk')"""
    ds, _, path = ds_path.partition("] ")
    return ds.lstrip("["), path


# --- defect 1: Fetch of an unset property ------------------------------------


def test_unset_property_reads_as_none_and_connection_survives(vsphere_si, template):
    assert template.config.template is True
    # A template has no resource pool; this used to panic vcsim's Fetch and
    # drop the connection (RemoteDisconnected).
    assert template.resourcePool is None
    assert template.parentVApp is None
    # Same through the PropertyCollector explicitly.
    pc = vsphere_si.content.propertyCollector
    spec = vim.PropertyCollector.FilterSpec(
        objectSet=[vim.PropertyCollector.ObjectSpec(obj=template)],
        propSet=[
            vim.PropertyCollector.PropertySpec(
                type=vim.VirtualMachine, pathSet=["resourcePool", "name"]
            )
        ],
    )
    (content,) = pc.RetrieveContents([spec])
    props = {p.name: p.val for p in content.propSet}
    assert props["name"] == template.name
    assert props.get("resourcePool") is None
    assert vsphere_si.CurrentTime()  # still connected


# --- defect 2: TaskInfo.entity of manager and snapshot tasks ------------------


def test_wait_for_virtual_disk_manager_and_snapshot_tasks(vsphere_si, vcsim, dc, cluster):
    vdm = vsphere_si.content.virtualDiskManager
    ds = vcsim.inventory["datastores"][0]
    spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(
        diskType="thin", adapterType="lsiLogic", capacityKb=1024
    )
    task = vdm.CreateVirtualDisk_Task(
        name=f"[{ds}] {unique('disk')}.vmdk", datacenter=dc, spec=spec
    )
    assert WaitForTask(task) == "success"
    assert task.info.entity is None  # VirtualDiskManager is no ManagedEntity

    source = find(vsphere_si, vim.VirtualMachine, vcsim.inventory["vms"][0])
    vm = clone(
        source, unique("snap"), dc.vmFolder, location=vim.vm.RelocateSpec(pool=cluster.resourcePool)
    )
    task = vm.CreateSnapshot_Task(name="s1", description="", memory=False, quiesce=False)
    assert WaitForTask(task) == "success"
    snapshot = task.info.result
    task = snapshot.RevertToSnapshot_Task()
    assert WaitForTask(task) == "success"
    assert task.info.entity == vm  # the snapshot's VM, as vCenter reports it
    assert WaitForTask(snapshot.RemoveSnapshot_Task(removeChildren=False)) == "success"
    assert vm.snapshot is None


# --- defect 3: CloneVM_Task honours the clone spec ----------------------------


def test_clone_applies_config_location_and_power_on(vsphere_si, vcsim, dc, template):
    source_disk_files = [d.backing.fileName for d in disks(template)]
    other_cluster = find(vsphere_si, vim.ClusterComputeResource, vcsim.inventory["clusters"][1])
    host = other_cluster.host[-1]
    datastore = find(vsphere_si, vim.Datastore, vcsim.inventory["datastores"][1])
    nic = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            key=-1,
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
        ),
    )
    config = vim.vm.ConfigSpec(
        numCPUs=2,
        memoryMB=1024,
        extraConfig=[vim.option.OptionValue(key="guestinfo.opsconsole", value="hello")],
        deviceChange=[nic],
    )
    location = vim.vm.RelocateSpec(pool=other_cluster.resourcePool, host=host, datastore=datastore)

    vm = clone(
        template, unique("clone"), dc.vmFolder, location=location, config=config, powerOn=True
    )

    assert vm.config.hardware.numCPU == 2
    assert vm.config.hardware.memoryMB == 1024
    assert vm.runtime.powerState == "poweredOn"
    assert vm.runtime.host == host
    assert vm.resourcePool == other_cluster.resourcePool
    extra = {o.key: o.value for o in vm.config.extraConfig}
    assert extra["guestinfo.opsconsole"] == "hello"
    nics = [
        d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]
    assert len(nics) == 2
    (disk,) = disks(vm)
    assert disk.backing.fileName.startswith(f"[{datastore.name}] {vm.name}/")
    assert disk.backing.parent is None  # a full clone
    # The source template's own disk was rewritten in place before the fix.
    assert [d.backing.fileName for d in disks(template)] == source_disk_files


def test_linked_clone_disk_has_the_template_disk_as_parent(vsphere_si, dc, cluster, template):
    (template_disk,) = disks(template)
    location = vim.vm.RelocateSpec(
        pool=cluster.resourcePool, diskMoveType="createNewChildDiskBacking"
    )

    vm = clone(template, unique("linked"), dc.vmFolder, location=location)

    (disk,) = disks(vm)
    assert disk.backing.parent is not None
    assert disk.backing.parent.fileName == template_disk.backing.fileName
    assert disk.backing.fileName != template_disk.backing.fileName
    assert disks(template)[0].backing.fileName == template_disk.backing.fileName


# --- defect 4: extraConfig replace and remove ---------------------------------


def test_extra_config_key_set_twice_keeps_one_value_and_empty_removes(
    vsphere_si, vcsim, dc, cluster
):
    source = find(vsphere_si, vim.VirtualMachine, vcsim.inventory["vms"][0])
    vm = clone(
        source,
        unique("extra"),
        dc.vmFolder,
        location=vim.vm.RelocateSpec(pool=cluster.resourcePool),
    )

    def set_key(value):
        spec = vim.vm.ConfigSpec(
            extraConfig=[vim.option.OptionValue(key="guestinfo.k", value=value)]
        )
        WaitForTask(vm.ReconfigVM_Task(spec=spec))
        return [o.value for o in vm.config.extraConfig if o.key == "guestinfo.k"]

    assert set_key("1") == ["1"]
    assert set_key("2") == ["2"]
    assert set_key("") == []


# --- defect 5: NFC upload lands in the datastore file -------------------------


def test_import_vapp_nfc_upload_is_written_to_the_datastore(vsphere_si, vcsim, dc, cluster):
    ds = vcsim.inventory["datastores"][0]
    name = unique("import")
    scsi = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.ParaVirtualSCSIController(
            key=-100, busNumber=0, sharedBus="noSharing"
        ),
    )
    disk = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        fileOperation="create",
        device=vim.vm.device.VirtualDisk(
            key=-101,
            controllerKey=-100,
            unitNumber=0,
            capacityInKB=1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=True, fileName=""
            ),
        ),
    )
    config = vim.vm.ConfigSpec(
        name=name,
        guestId="otherGuest",
        numCPUs=1,
        memoryMB=32,
        files=vim.vm.FileInfo(vmPathName=f"[{ds}]"),
        deviceChange=[scsi, disk],
    )
    lease = cluster.resourcePool.ImportVApp(
        spec=vim.vm.VmImportSpec(configSpec=config), folder=dc.vmFolder
    )
    deadline = time.monotonic() + 30
    while lease.state == "initializing" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lease.state == "ready"
    vm = lease.info.entity  # the lease object is gone once completed
    (device_url,) = [u for u in lease.info.deviceUrl if u.disk]
    payload = b"opsconsole-vmdk-" + bytes(range(256)) * 64

    session = requests.Session()
    session.trust_env = False
    resp = session.put(
        device_url.url.replace("*", vcsim.host),
        data=payload,
        verify=vcsim.cert_file,
        headers={"Content-Type": "application/x-vnd.vmware-streamVmdk"},
        timeout=30,
    )
    resp.raise_for_status()
    lease.HttpNfcLeaseComplete()

    (vm_disk,) = disks(vm)
    ds_name, path = split_ds_path(vm_disk.backing.fileName)
    assert datastore_get(vcsim, dc.name, ds_name, path) == payload


# --- defect 6: QueryEvents without maxCount -----------------------------------


def test_query_events_without_max_count_returns_more_than_ten(vsphere_si, vcsim, dc, cluster):
    source = find(vsphere_si, vim.VirtualMachine, vcsim.inventory["vms"][0])
    vm = clone(
        source,
        unique("events"),
        dc.vmFolder,
        location=vim.vm.RelocateSpec(pool=cluster.resourcePool),
    )
    for _ in range(6):  # 2 events per power operation: 24 in all
        WaitForTask(vm.PowerOnVM_Task())
        WaitForTask(vm.PowerOffVM_Task())

    em = vsphere_si.content.eventManager
    by_vm = vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self")
    events = em.QueryEvents(vim.event.EventFilterSpec(entity=by_vm))
    power = [
        e
        for e in events
        if isinstance(e, (vim.event.VmPoweredOnEvent, vim.event.VmPoweredOffEvent))
    ]
    assert len(power) == 12
    assert len(events) >= 24
    assert len(em.QueryEvents(vim.event.EventFilterSpec(entity=by_vm, maxCount=5))) == 5


# --- defect 7: ExtendVirtualDisk_Task -----------------------------------------


def test_extend_virtual_disk_grows_a_standalone_disk(vsphere_si, vcsim, dc):
    vdm = vsphere_si.content.virtualDiskManager
    ds_name = vcsim.inventory["datastores"][0]
    base = unique("grow")
    name = f"[{ds_name}] {base}.vmdk"
    spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(
        diskType="thin", adapterType="lsiLogic", capacityKb=1024
    )
    WaitForTask(vdm.CreateVirtualDisk_Task(name=name, datacenter=dc, spec=spec))

    task = vdm.ExtendVirtualDisk_Task(name=name, datacenter=dc, newCapacityKb=4096, eagerZero=False)
    assert WaitForTask(task) == "success"

    datastore = find(vsphere_si, vim.Datastore, ds_name)
    search = vim.host.DatastoreBrowser.SearchSpec(
        matchPattern=[f"{base}-flat.vmdk"],
        details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True),
    )
    task = datastore.browser.SearchDatastore_Task(datastorePath=f"[{ds_name}]", searchSpec=search)
    WaitForTask(task)
    (info,) = task.info.result.file
    assert info.fileSize == 4096 * 1024

    with pytest.raises(vmodl.fault.InvalidArgument):  # no shrinking
        WaitForTask(
            vdm.ExtendVirtualDisk_Task(
                name=name, datacenter=dc, newCapacityKb=2048, eagerZero=False
            )
        )


def test_extend_virtual_disk_grows_an_attached_disk(vsphere_si, vcsim, dc, cluster):
    source = find(vsphere_si, vim.VirtualMachine, vcsim.inventory["vms"][0])
    vm = clone(
        source,
        unique("growvm"),
        dc.vmFolder,
        location=vim.vm.RelocateSpec(pool=cluster.resourcePool),
    )
    (disk,) = disks(vm)
    new_kb = disk.capacityInKB + 2048
    task = vsphere_si.content.virtualDiskManager.ExtendVirtualDisk_Task(
        name=disk.backing.fileName, datacenter=dc, newCapacityKb=new_kb, eagerZero=False
    )
    assert WaitForTask(task) == "success"
    assert disks(vm)[0].capacityInKB == new_kb


# --- defect 8: searches while other clients create VMs -----------------------


def connect(sim):
    """A client of its own that, like one listing VMs, keeps a view of them
    open: vcsim updates every open view while it puts a new VM into its
    inventory, before that VM has a config, which widens the race's window
    (without views, some runs of 100 clones never hit it)."""
    si = SmartConnect(
        host="127.0.0.1",
        port=sim.port,
        user=sim.username,
        pwd=sim.password,
        sslContext=sim.ssl_context(),
    )
    content = si.content
    content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    return si


def moid(found):
    """A search answer as moIds: None, one moId, or a list of them."""
    if isinstance(found, list):
        return [o._moId for o in found]
    return found._moId if found is not None else None


@pytest.fixture
def race_vcsim(tmp_path):
    """A vcsim of its own: the hundred clones stay out of the shared one, and
    its log is this test's alone."""
    with start_vcsim(
        clusters=1, hosts=2, datastores=1, portgroups=0, vms=20, workdir=tmp_path
    ) as sim:
        yield sim


def test_uuid_searches_answer_while_parallel_clones_create_vms(race_vcsim):
    """Ansible-style clients: some clone in parallel, others look VMs up by
    BIOS and instance UUID meanwhile. vcsim used to panic on a clone that
    had no config yet and drop the searching client's connection."""
    sim = race_vcsim
    si = connect(sim)
    source = find(si, vim.VirtualMachine, sim.inventory["vms"][0])
    folder = find(si, vim.Datacenter, sim.inventory["datacenters"][0]).vmFolder._moId
    pool = source.resourcePool._moId
    bios, instance, missing = source.config.uuid, source.config.instanceUuid, str(uuid.uuid4())
    src = source._moId
    searches = [  # (what, call on a SearchIndex, expected moIds)
        ("FindByUuid bios", lambda idx: idx.FindByUuid(uuid=bios, vmSearch=True), src),
        (
            "FindByUuid instance",
            lambda idx: idx.FindByUuid(uuid=instance, vmSearch=True, instanceUuid=True),
            src,
        ),
        ("FindAllByUuid bios", lambda idx: idx.FindAllByUuid(uuid=bios, vmSearch=True), [src]),
        (
            "FindAllByUuid instance",
            lambda idx: idx.FindAllByUuid(uuid=instance, vmSearch=True, instanceUuid=True),
            [src],
        ),
        ("FindByUuid unknown", lambda idx: idx.FindByUuid(uuid=missing, vmSearch=True), None),
        ("FindAllByUuid unknown", lambda idx: idx.FindAllByUuid(uuid=missing, vmSearch=True), []),
    ]
    failures = []  # (what, error type, detail), appended from every thread
    answered = Counter()
    clones = []
    cloning = threading.Event()
    cloning.set()

    def search():
        index = connect(sim).content.searchIndex
        while cloning.is_set():
            for what, call, expected in searches:
                try:
                    got = moid(call(index))
                except Exception as exc:  # a dropped connection is the defect: record it
                    failures.append((what, type(exc).__name__, str(exc)[:200]))
                    if not isinstance(exc, vmodl.MethodFault):
                        index = connect(sim).content.searchIndex
                    continue
                answered[what] += 1
                if got != expected:
                    failures.append((what, "wrong answer", f"{got!r}, expected {expected!r}"))

    def clone_many(count):
        stub = connect(sim)._stub
        vm = vim.VirtualMachine(src, stub)
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=vim.ResourcePool(pool, stub)))
        for _ in range(count):
            try:
                task = vm.CloneVM_Task(
                    folder=vim.Folder(folder, stub), name=unique("race"), spec=spec
                )
                WaitForTask(task)
                clones.append(task.info.result._moId)
            except Exception as exc:  # record it; the other clones go on
                failures.append(("CloneVM_Task", type(exc).__name__, str(exc)[:200]))

    searchers = [threading.Thread(target=search) for _ in range(6)]
    cloners = [threading.Thread(target=clone_many, args=(25,)) for _ in range(4)]
    for thread in searchers + cloners:
        thread.start()
    try:
        for thread in cloners:
            thread.join(timeout=300)
    finally:
        cloning.clear()
        for thread in searchers:
            thread.join(timeout=60)

    summary = Counter(f"{what}: {error}" for what, error, _ in failures)
    assert not failures, f"failed calls: {dict(summary)}; first: {failures[0]}"
    assert sim.alive()
    assert "panic" not in sim.log_path.read_text(errors="replace")
    assert len(clones) == 100
    assert set(answered) == {what for what, _, _ in searches}

    # Every clone is there to find, by its own UUIDs.
    index = si.content.searchIndex
    for ref in clones:
        config = vim.VirtualMachine(ref, si._stub).config
        assert config.uuid != bios
        assert moid(index.FindByUuid(uuid=config.uuid, vmSearch=True)) == ref
        found = index.FindAllByUuid(uuid=config.instanceUuid, vmSearch=True, instanceUuid=True)
        assert moid(found) == [ref]


# --- defect 9: Destroy keeps files uploaded beside the VM's ----------------------


def datastore_put(vcsim, dc_name, ds_name, path, data):
    session = requests.Session()
    session.trust_env = False
    resp = session.put(
        f"https://{vcsim.host}/folder/{path}",
        params={"dcPath": dc_name, "dsName": ds_name},
        data=data,
        verify=vcsim.cert_file,
        timeout=30,
    )
    resp.raise_for_status()


def datastore_status(vcsim, dc_name, ds_name, path):
    session = requests.Session()
    session.trust_env = False
    return session.get(
        f"https://{vcsim.host}/folder/{path}",
        params={"dcPath": dc_name, "dsName": ds_name},
        verify=vcsim.cert_file,
        timeout=30,
    ).status_code


def test_destroy_deletes_the_vm_files_and_keeps_an_uploaded_one(
    vsphere_si, vcsim, dc, cluster, template
):
    def made_vm():
        location = vim.vm.RelocateSpec(pool=cluster.resourcePool)
        vm = clone(template, unique("destroy"), dc.vmFolder, location=location)
        ds, vmx = split_ds_path(vm.config.files.vmPathName)
        return vm, ds, vmx.rsplit("/", 1)[0], vmx

    vm, ds, folder, vmx = made_vm()
    disk_file = split_ds_path(disks(vm)[0].backing.fileName)[1]
    datastore_put(vcsim, dc.name, ds, f"{folder}/env.iso", b"not the VM's")
    WaitForTask(vm.Destroy_Task())
    assert datastore_status(vcsim, dc.name, ds, vmx) == 404
    assert datastore_status(vcsim, dc.name, ds, disk_file) == 404
    # vSphere keeps what it did not create, and so the folder (it used to go whole).
    assert datastore_get(vcsim, dc.name, ds, f"{folder}/env.iso") == b"not the VM's"

    vm, ds, folder, _ = made_vm()
    WaitForTask(vm.Destroy_Task())
    assert datastore_status(vcsim, dc.name, ds, f"{folder}/") == 404, "an emptied folder goes"


# --- login and TLS ------------------------------------------------------------


def test_wrong_password_is_invalid_login(vcsim):
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(
            host="127.0.0.1",
            port=vcsim.port,
            user=vcsim.username,
            pwd="wrong",
            sslContext=vcsim.ssl_context(),
        )
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(
            host="127.0.0.1",
            port=vcsim.port,
            user="root",
            pwd=vcsim.password,
            sslContext=vcsim.ssl_context(),
        )


def test_certificate_verifies_with_the_ca_file_only(vcsim):
    with socket.create_connection(("127.0.0.1", vcsim.port), timeout=10) as sock:
        with vcsim.ssl_context().wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            cert = tls.getpeercert()
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
    assert "BEGIN CERTIFICATE" in vcsim.ca_pem

    with socket.create_connection(("127.0.0.1", vcsim.port), timeout=10) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(sock, server_hostname="127.0.0.1")


def test_requests_verifies_with_the_ca_file(vcsim):
    session = requests.Session()
    session.trust_env = False
    resp = session.get(f"https://{vcsim.host}/about", verify=vcsim.cert_file, timeout=10)
    assert resp.status_code == 200


def test_inventory_names(vcsim):
    inv = vcsim.inventory
    assert inv["datacenters"] == ["DC0"]
    assert inv["clusters"] == ["DC0_C0", "DC0_C1"]
    assert len(inv["hosts"]) == 6
    assert inv["datastores"] == ["LocalDS_0", "LocalDS_1"]
    assert inv["portgroups"] == ["DC0_DVPG0", "DC0_DVPG1"]
    assert inv["standard_portgroups"] == ["VM Network"]


# --- the launcher --------------------------------------------------------------


def test_start_vcsim_with_delays_and_own_credentials(tmp_path):
    with start_vcsim(
        clusters=1,
        hosts=1,
        datastores=1,
        portgroups=0,
        vms=0,
        delays={"CurrentTime": 300},
        username="ops",
        password="s3cret",
        workdir=tmp_path,
    ) as sim:
        si = SmartConnect(
            host="127.0.0.1", port=sim.port, user="ops", pwd="s3cret", sslContext=sim.ssl_context()
        )
        try:
            start = time.monotonic()
            si.CurrentTime()
            assert time.monotonic() - start >= 0.3
        finally:
            Disconnect(si)
        datastore_dirs = list((tmp_path / "datastores").iterdir())
        assert datastore_dirs
    assert not sim.alive()
    assert not any(d.exists() for d in datastore_dirs)  # removed on SIGTERM
