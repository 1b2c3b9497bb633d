"""Staging: the green **+** on an available product, upgrades, and unstaging.

Staging creates the ``StagedProduct`` (guid ``<name>-<20 hex>``) with its
generated credentials; staging another version of a staged product upgrades
it in place, keeping what still validates; unstaging removes a product
never deployed or marks a deployed one for deletion by Apply Changes.
"""

from __future__ import annotations

from django.db import transaction

from opsconsole.errors import Conflict, NotFound, ServiceError
from tiles import dependencies
from tiles.models import Product, StagedProduct, new_guid

from .properties import _generated_values, _store
from .upgrades import migrate_values, record_upgrade


def list_staged_products() -> list[StagedProduct]:
    """Staged products (marked-for-deletion ones included), in staging order."""
    return list(StagedProduct.objects.select_related("product").order_by("id"))


def staged_versions(exclude: StagedProduct | None = None) -> dict[str, str]:
    """Product name -> staged version, products marked for deletion left out."""
    qs = StagedProduct.objects.select_related("product").filter(marked_for_deletion=False)
    if exclude is not None and exclude.pk is not None:
        qs = qs.exclude(pk=exclude.pk)
    return {sp.product.name: sp.product.version for sp in qs}


def unmet_dependencies(staged: StagedProduct) -> list[str]:
    """The staged product's ``requires_product_versions`` that the staged products do not meet."""
    return dependencies.unmet(staged.product.template(), staged_versions(exclude=staged))


def get_staged_product(guid: str) -> StagedProduct:
    sp = StagedProduct.objects.select_related("product").filter(guid=guid).first()
    if sp is None:
        raise NotFound({"guid": [f"no staged product with guid '{guid}'"]})
    return sp


@transaction.atomic
def stage_product(name: str, version: str) -> StagedProduct:
    """Stage an available product (Ops Manager's green **+**), or upgrade a staged one.

    A product not yet staged gets a new guid (``<name>-<20 hex>``) and its
    generated credentials. When ``name`` is staged at another version it is
    upgraded in place: the new version's ``migrations/v1/*.js`` run over the
    properties (``upgrades``; a failing one refuses the upgrade, 422 naming
    it), then values of properties that still exist with the same
    type and still validate are kept (others dropped), likewise resource
    config for jobs and errand switches for errands that still exist. The
    same version again is refused (409). A product whose
    ``requires_product_versions`` the staged products do not meet is
    refused (422 naming the product and the version constraint).
    """
    product = Product.objects.filter(name=name, version=str(version)).first()
    if product is None:
        raise NotFound(
            {"product_version": [f"{name} {version} is not an available product; import it first"]}
        )
    template = product.template()
    staged = (
        StagedProduct.objects.select_for_update()
        .select_related("product")
        .filter(product__name=name)
        .first()
    )
    # Ops Manager does not install a tile whose dependencies are missing.
    missing = dependencies.unmet(template, staged_versions(exclude=staged))
    if missing:
        raise ServiceError({"requires_product_versions": missing})
    if staged is None:
        staged = StagedProduct(guid=new_guid(name), product=product)
        _store(staged, template, _generated_values(template, {}))
        staged.save()
        return staged
    if staged.product_id == product.id:
        raise Conflict({"product_version": [f"{name} {version} is already staged ({staged.guid})"]})
    _upgrade(staged, product)
    return staged


def _upgrade(staged: StagedProduct, product: Product) -> None:
    """Move ``staged`` to ``product``: its migrations run first (``upgrades``), then what
    still validates is kept; the property changes are recorded for Review Pending Changes."""
    old_version = staged.product.version
    new = product.template()
    kept, step = migrate_values(staged, product)
    staged.product = product
    staged.values, staged.secrets = {}, {}
    _store(staged, new, {k: v for k, v in kept.items() if v is not None})
    _store(staged, new, _generated_values(new, staged.all_values()))
    staged.resource_config = {
        job: rc for job, rc in (staged.resource_config or {}).items() if new.job_type(job)
    }
    errand_names = {e.get("name") for e in new.post_deploy_errands + new.pre_delete_errands}
    staged.errands = {k: v for k, v in (staged.errands or {}).items() if k in errand_names}
    staged.marked_for_deletion = False
    record_upgrade(staged, old_version, step)
    staged.save()


def unstage_product(guid: str) -> StagedProduct | None:
    """Unstage (Ops Manager's trash icon).

    A product never deployed is removed at once (returns None); a deployed
    one is marked for deletion and its deployment is deleted by the next
    Apply Changes (returns it).
    """
    staged = get_staged_product(guid)
    if not staged.is_deployed:
        staged.delete()
        return None
    staged.marked_for_deletion = True
    staged.save(update_fields=["marked_for_deletion", "updated_at"])
    return staged
