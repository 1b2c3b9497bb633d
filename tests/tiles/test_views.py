"""Tile pages: routes for anonymous, read-only and control roles; htmx fragments;
per-field errors with nothing saved."""

import re

import pytest
from django.urls import reverse

from tiles import demo, director_tile, services
from tiles.models import Installation, InstallationStep, StagedProduct

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer_client(client, user_with_role):
    client.force_login(user_with_role("full_view"))
    return client


@pytest.fixture
def demo_product(tmp_path, admin_user):
    path = demo.build_pivotal(tmp_path)
    with open(path, "rb") as fh:
        return services.import_product(fh, path.name, "admin")


@pytest.fixture
def staged(demo_product):
    return services.stage_product(demo_product.name, demo_product.version)


def form_url(staged, form):
    return reverse("product-form", args=[staged.guid, form])


PAGES = [
    ("dashboard", []),
    ("changelog", []),
    ("pending-changes", []),
    ("director-tile", ["vcenter"]),
    ("director-tile", ["azs"]),
    ("director-tile", ["networks"]),
    ("director-tile", ["network-and-az"]),
    ("director-tile", ["vm-types"]),
    ("director-tile", ["director"]),
]


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_anonymous_is_sent_to_login(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_every_role_reads_the_pages(viewer_client, name, args):
    response = viewer_client.get(reverse(name, args=args))
    assert response.status_code == 200
    assert b"Save</button>" not in response.content  # no write controls for a viewer


WRITES = [
    ("product-import", []),
    ("product-stage", []),
    ("products-delete-unused", []),
    ("revert", []),
    ("pending-changes", []),
    ("director-tile", ["vcenter"]),
    ("director-tile", ["azs"]),
    ("director-test-connection", []),
]


@pytest.mark.parametrize(("name", "args"), WRITES)
def test_view_role_cannot_post(viewer_client, name, args):
    assert viewer_client.post(reverse(name, args=args), {}).status_code == 403


def test_view_role_cannot_save_a_pane(viewer_client, staged):
    response = viewer_client.post(form_url(staged, "app_config"), {"properties__greeting": "x"})
    assert response.status_code == 403
    staged.refresh_from_db()
    assert ".properties.greeting" not in staged.values


def test_dashboard_shows_director_available_and_staged_tiles(admin_client, demo_product):
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert "BOSH Director" in page and 'id="tile-director"' in page
    assert "Import a Product" in page
    assert "Stage opsconsole-demo 1.0.0" in page  # the "+" button
    response = admin_client.post(
        reverse("product-stage"), {"name": "opsconsole-demo", "version": "1.0.0"}
    )
    guid = StagedProduct.objects.get().guid
    assert response["Location"] == reverse("product", args=[guid])
    page = admin_client.get(reverse("dashboard")).content.decode()
    tile = page[page.index(f'id="tile-{guid}"') :]
    tile = tile[: tile.index("</form>")]
    assert 'class="tile incomplete"' in page[page.index(f'id="tile-{guid}"') - 40 :][:80]
    assert "Missing stemcell" in tile
    assert "Demo App" in tile


def test_import_refuses_a_bad_template_naming_the_path(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile(
        "bad.yml",
        b"name: x\nproduct_version: '1'\nproperty_blueprints:\n- {name: a, type: strng}\n",
    )
    response = admin_client.post(reverse("product-import"), {"product[file]": bad}, follow=True)
    assert "bad.yml" in response.content.decode()
    assert "property_blueprints/0/type: unknown type" in response.content.decode()


def test_product_page_lists_panes_with_marks(admin_client, staged):
    response = admin_client.get(reverse("product", args=[staged.guid]))
    assert response["Location"] == reverse("product-networks", args=[staged.guid])
    page = admin_client.get(form_url(staged, "app_config")).content.decode()
    start = page.index('aria-label="Settings"')
    menu = page[start : page.index("</nav>", start)]
    assert [m for m in re.findall(r">([^<]+)</a>", menu)] == [
        "Assign AZs and Networks",
        "App Settings",
        "Storage",
        "Worker Queues",
        "Errands",
        "Resource Config",
    ]
    assert 'class="todo"' in menu  # AZs and networks not assigned yet
    assert re.search(r'class="active done"[^>]*>App Settings', menu)


def menu_marks(admin_client, staged) -> dict[str, str]:
    page = admin_client.get(reverse("product-resources", args=[staged.guid])).content.decode()
    start = page.index('aria-label="Settings"')
    menu = page[start : page.index("</nav>", start)]
    return {
        label: ("done" if "done" in cls.split() else "todo")
        for cls, label in re.findall(r'<a href="[^"]*" class="([^"]*)"[^>]*>([^<]+)</a>', menu)
    }


def test_a_pane_is_ticked_only_while_what_it_holds_is_complete(admin_client, staged):
    setup_director()
    marks = menu_marks(admin_client, staged)
    assert marks["Assign AZs and Networks"] == "todo"
    services.set_networks_and_azs(
        staged,
        {
            "singleton_availability_zone": "az1",
            "other_availability_zones": ["az2"],
            "network": "default",
        },
    )
    services.set_resource_config(staged, "web", instance_type="small")
    marks = menu_marks(admin_client, staged)
    assert (marks["Assign AZs and Networks"], marks["Resource Config"]) == ("done", "done")
    # The Director tile drops az2 from the network and the VM type web names: no tick.
    subnet = director_tile.get_networks()["networks"][0]["subnets"][0]
    subnet["availability_zone_names"] = ["az1"]
    director_tile.set_networks({"networks": [{"name": "default", "subnets": [subnet]}]})
    director_tile.set_vm_types([{"name": "tiny", "cpu": 1, "ram": 512, "ephemeral_disk": 1024}])
    marks = menu_marks(admin_client, staged)
    assert (marks["Assign AZs and Networks"], marks["Resource Config"]) == ("todo", "todo")
    assert marks["App Settings"] == "done"


def test_invalid_value_shows_its_error_beside_the_field_and_saves_nothing(admin_client, staged):
    before = dict(staged.values)
    response = admin_client.post(
        form_url(staged, "app_config"),
        {"properties__greeting": "Hi <b>", "web__port": "70000", "properties__support_email": ""},
    )
    assert response.status_code == 422
    page = response.content.decode()
    port = page[page.index('id="field-web__port"') :]
    port = port[: port.index("</div>\n")] + port[port.index("</div>\n") :][:400]
    assert "HTTP port must be between 1 and 65535." in port
    greeting = page[page.index('id="field-properties__greeting"') :][:1200]
    assert "The greeting cannot contain &lt; or &gt;." in greeting
    staged.refresh_from_db()
    assert staged.values == before


def test_valid_pane_saves_and_redirects(admin_client, staged):
    response = admin_client.post(
        form_url(staged, "app_config"),
        {"properties__greeting": "Hello there", "web__port": "9090"},
    )
    assert response.status_code == 302
    staged.refresh_from_db()
    assert staged.values[".properties.greeting"] == "Hello there"
    assert staged.values[".web.port"] == 9090


def test_selector_fragment_renders_the_chosen_option(admin_client, staged):
    response = admin_client.get(
        form_url(staged, "storage_config"),
        {"fragment": "selector", "selector": "properties__storage", "properties__storage": "s3"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div class="option" id="option-properties__storage">')
    assert 'name="properties__storage__s3__endpoint"' in page
    assert "retention_days" not in page
    assert "<html" not in page


def test_collection_row_fragment_adds_a_row_and_moves_the_add_button(admin_client, staged):
    response = admin_client.get(
        form_url(staged, "queue_config"),
        {"fragment": "row", "collection": "properties__queues", "row": "3"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert 'id="properties__queues-3"' in page
    assert 'name="properties__queues-3-name"' in page
    add = re.search(r'<button[^>]*id="add-properties__queues"[^>]*>', page).group(0)
    assert 'hx-swap-oob="true"' in add and "row=4" in add
    assert "<html" not in page


def test_collection_is_saved_with_rows(admin_client, staged):
    response = admin_client.post(
        form_url(staged, "queue_config"),
        {
            "properties__queues-0-name": "mail",
            "properties__queues-0-concurrency": "4",
            "properties__queues-0-durable": "on",
            "properties__queues-1-name": "mail",
            "properties__queues-1-concurrency": "1",
        },
    )
    assert response.status_code == 422
    page = response.content.decode()
    # On the second row's field, naming the row the operator sees (counted from 1).
    field = page[page.index('id="field-properties__queues-1-name"') :][:1000]
    assert "Queue name must be unique: row 1 already uses &quot;mail&quot;." in field
    shown = re.findall(r'<ul class="errorlist"[^>]*>(.*?)</ul>', page, re.S)
    assert len(shown) == 1 and "record" not in shown[0]  # one error, in the rows' words
    response = admin_client.post(
        form_url(staged, "queue_config"),
        {
            "properties__queues-0-name": "mail",
            "properties__queues-0-concurrency": "4",
            "properties__queues-0-durable": "on",
        },
    )
    assert response.status_code == 302
    staged.refresh_from_db()
    records = staged.values[".properties.queues"]
    assert [(r["name"], r["concurrency"], r["durable"]) for r in records] == [("mail", 4, True)]


def setup_director(with_networks=True):
    director_tile.set_availability_zones(
        [
            {"name": "az1", "clusters": [{"cluster": "DC0_C0"}]},
            {"name": "az2", "clusters": [{"cluster": "DC0_C1"}]},
        ]
    )
    if with_networks:
        director_tile.set_networks(
            {
                "networks": [
                    {
                        "name": "default",
                        "subnets": [
                            {
                                "iaas_identifier": "DC0_DVPG0",
                                "cidr": "10.0.0.0/24",
                                "gateway": "10.0.0.1",
                                "reserved_ip_ranges": "10.0.0.1-10.0.0.9",
                                "dns": "10.0.0.2",
                                "availability_zone_names": ["az1", "az2"],
                            }
                        ],
                    }
                ]
            }
        )


def test_networks_pane_saves_assignment_and_shows_errors(admin_client, staged):
    setup_director()
    url = reverse("product-networks", args=[staged.guid])
    response = admin_client.post(url, {"network": "default"})
    assert response.status_code == 422
    page = response.content.decode()
    assert (
        "Choose the availability zone of singleton jobs."
        in (page[page.index('id="field-singleton_availability_zone"') :][:800])
    )
    response = admin_client.post(
        url,
        {
            "network": "default",
            "singleton_availability_zone": "az1",
            "other_availability_zones": ["az1", "az2"],
        },
    )
    assert response.status_code == 302
    staged.refresh_from_db()
    assert staged.network_and_azs["other_availability_zones"] == ["az1", "az2"]


def test_networks_pane_puts_the_services_refusal_on_its_field(admin_client, staged):
    setup_director(with_networks=False)
    subnet = {
        "iaas_identifier": "DC0_DVPG0",
        "cidr": "10.0.0.0/24",
        "gateway": "10.0.0.1",
        "reserved_ip_ranges": "10.0.0.1-10.0.0.9",
        "dns": "10.0.0.2",
        "availability_zone_names": ["az1"],
    }
    director_tile.set_networks({"networks": [{"name": "narrow", "subnets": [subnet]}]})
    url = reverse("product-networks", args=[staged.guid])
    response = admin_client.post(
        url,
        {
            "network": "narrow",
            "singleton_availability_zone": "az1",
            "other_availability_zones": ["az1", "az2"],
        },
    )
    assert response.status_code == 422
    page = response.content.decode()
    field = page[page.index('id="field-network"') :][:1200]
    assert "Network &#x27;narrow&#x27; has no subnet in availability zone &#x27;az2&#x27;." in field
    form = page[page.index('id="pane"') : page.index('id="field-singleton_availability_zone"')]
    assert "errorlist" not in form  # nothing above the fields
    staged.refresh_from_db()
    assert not staged.network_and_azs


def test_resource_config_service_errors_land_on_the_jobs_field(staged):
    from tiles.forms import ResourceConfigForm

    template = services.product_template(staged)
    jobs = [{"name": n, **j} for n, j in template.job_types.items()]
    vm_types = [{"name": "small", "cpu": 1, "ram": 1024, "ephemeral_disk": 1024}]
    form = ResourceConfigForm({"web__instances": "1"}, jobs=jobs, vm_types=vm_types, disk_sizes=[])
    assert form.is_valid(), form.errors
    form.add_job_errors(
        {
            "web/instance_type.id": ["'huge' is not in the VM type catalog"],
            "web/instances": ["must be odd or zero"],
            "worker/something_else": ["is wrong"],
        }
    )
    assert form.errors["web__instance_type"] == ["'huge' is not in the VM type catalog"]
    assert form.errors["web__instances"] == ["must be odd or zero"]
    assert form.non_field_errors() == ["Worker: is wrong"]


def test_resource_config_per_job(admin_client, staged):
    url = reverse("product-resources", args=[staged.guid])
    page = admin_client.get(url).content.decode()
    assert 'name="web__persistent_disk"' in page
    assert 'name="worker__persistent_disk"' not in page
    response = admin_client.post(url, {"web__instances": "9", "web__instance_type": "small"})
    assert response.status_code == 422
    assert "Ensure this value is less than or equal to 5." in response.content.decode()
    response = admin_client.post(
        url, {"web__instances": "3", "web__instance_type": "small", "web__persistent_disk": "2048"}
    )
    assert response.status_code == 302
    staged.refresh_from_db()
    rc = services.get_resource_config(staged, "web")
    assert (rc["instances"], rc["instance_type"]["id"], rc["persistent_disk"]["size_mb"]) == (
        3,
        "small",
        "2048",
    )


def test_errands_pane(admin_client, staged):
    url = reverse("product-errands", args=[staged.guid])
    assert 'name="smoke-tests"' in admin_client.get(url).content.decode()
    assert admin_client.post(url, {"smoke-tests": "false"}).status_code == 302
    staged.refresh_from_db()
    [errand] = services.get_errands(staged)
    assert errand["post_deploy"] is False


def test_director_azs_rows_and_errors(admin_client):
    url = reverse("director-tile", args=["azs"])
    response = admin_client.get(url, {"fragment": "az", "row": "2"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert 'name="az-2-name"' in page and 'name="az-2-cluster-0-cluster"' in page
    assert re.search(r'id="add-az" hx-swap-oob="true"[^>]*row=3', page)
    response = admin_client.post(url, {"az-0-name": "az1", "az-0-cluster-0-res_pool": "rp"})
    assert response.status_code == 422
    page = response.content.decode()
    # the error sits under the cluster field, as a sentence, not as an API path
    field = page[page.index('<label for="az-0-cluster-0-cluster">') :][:700]
    assert 'id="az-0-cluster-0-cluster-errors"' in field and "Cluster is required." in field
    assert "availability_zones/" not in page
    assert director_tile.list_availability_zones() == []
    response = admin_client.post(
        url,
        {
            "az-0-name": "az1",
            "az-0-cluster-0-cluster": "DC0_C0",
            "az-0-cluster-0-host_group": "hg",
            "az-0-cluster-0-drs_rule": "SHOULD",
        },
    )
    # no vCenter answers here: refused, saying so, with "Save anyway" offered
    assert response.status_code == 422
    assert 'name="ignore_unreachable_vcenter"' in response.content.decode()
    assert director_tile.list_availability_zones() == []
    response = admin_client.post(
        url,
        {
            "az-0-name": "az1",
            "az-0-cluster-0-cluster": "DC0_C0",
            "az-0-cluster-0-host_group": "hg",
            "az-0-cluster-0-drs_rule": "SHOULD",
            "ignore_unreachable_vcenter": "true",
        },
    )
    assert response.status_code == 302
    [az] = director_tile.list_availability_zones()
    assert az["clusters"][0]["host_group"] == {"name": "hg", "drs_rule": "SHOULD"}


def test_director_networks_gateway_error_names_the_subnet(admin_client):
    setup_director(with_networks=False)
    url = reverse("director-tile", args=["networks"])
    data = {
        "net-0-name": "default",
        "net-0-subnet-0-iaas_identifier": "DC0_DVPG0",
        "net-0-subnet-0-cidr": "10.0.0.0/24",
        "net-0-subnet-0-gateway": "10.0.1.1",
        "net-0-subnet-0-azs": ["az1"],
        "ignore_unreachable_vcenter": "true",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 422
    page = response.content.decode()
    field = page[page.index('<label for="net-0-subnet-0-gateway">') :][:700]
    assert "Gateway 10.0.1.1 is not inside 10.0.0.0/24." in field
    assert "networks/default" not in page
    data["net-0-subnet-0-gateway"] = "10.0.0.1"
    assert admin_client.post(url, data).status_code == 302
    assert director_tile.get_networks()["networks"][0]["subnets"][0]["gateway"] == "10.0.0.1"


def test_test_connection_lists_vcsim_inventory(admin_client, vcsim):
    response = admin_client.post(
        reverse("director-test-connection"),
        {
            "vcenter_host": f"127.0.0.1:{vcsim.port}",
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem if hasattr(vcsim, "ca_pem") else "",
            "ssl_verification_enabled": "",
        },
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert "Connected to vCenter" in page, page
    assert '<option value="DC0_C0">' in page and 'hx-swap-oob="true"' in page
    assert "DC0_C1" in page
    response = admin_client.post(
        reverse("director-test-connection"),
        {
            "vcenter_host": f"127.0.0.1:{vcsim.port}",
            "vcenter_username": vcsim.username,
            "vcenter_password": "wrong",
            "ssl_verification_enabled": "",
        },
        HTTP_HX_REQUEST="true",
    )
    assert "iaas_configuration/vcenter_password" in response.content.decode()


def test_pending_changes_page_lists_every_tile(admin_client, staged):
    page = admin_client.get(reverse("pending-changes")).content.decode()
    assert "BOSH Director" in page and "Demo App" in page
    assert 'name="deploy_products" value="' + staged.guid in page
    assert "Configuration is incomplete" in page
    assert 'id="apply-changes"' in page


def test_installation_page_and_poll(admin_client):
    inst = Installation.objects.create(user_name="admin", status="succeeded")
    InstallationStep.objects.create(
        installation=inst, seq=1, kind="configs", label="Update director configs", state="succeeded"
    )
    url = reverse("installation", args=[inst.id])
    page = admin_client.get(url).content.decode()
    assert "Update director configs" in page and "succeeded" in page
    assert "hx-get" not in page[page.index('id="inst-poller"') :][:200]  # terminal: no polling
    response = admin_client.get(
        url, {"fragment": "log", "after": "0", "digest": "x"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 286
    assert 'id="inst-log"' in response.content.decode()  # unknown prefix: the whole log


def test_changelog_lists_installations(admin_client):
    inst = Installation.objects.create(user_name="ops", status="failed")
    InstallationStep.objects.create(
        installation=inst,
        seq=1,
        kind="deploy",
        product_name="opsconsole-demo",
        product_version="1.0.0",
        label="Deploy",
        action="install",
        state="failed",
    )
    page = admin_client.get(reverse("changelog")).content.decode()
    row = page[page.index(f'id="installation-{inst.id}"') :]
    assert "ops" in row and "failed" in row and "install" in row
    assert reverse("installation", args=[inst.id]) in row
