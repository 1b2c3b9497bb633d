"""What every services module needs: field errors, a product's template, the root CA.

``_err`` collects messages under a field, reference or path (the shape of
``ServiceError.errors``). ``root_ca`` is the console's own CA: it signs the
generated ``rsa_cert_credentials`` and is what manifests trust.
"""

from __future__ import annotations

from django.db import transaction

from tiles import credentials as creds
from tiles.models import ConsoleCertificateAuthority, Product, StagedProduct
from tiles.template import ProductTemplate


def _err(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def root_ca() -> tuple[str, str]:
    """The console's root CA ``(cert_pem, key_pem)``, generated on first use."""
    ca = ConsoleCertificateAuthority.objects.filter(active=True).order_by("id").first()
    if ca is None:
        with transaction.atomic():
            ca = (
                ConsoleCertificateAuthority.objects.select_for_update()
                .filter(active=True)
                .order_by("id")
                .first()
            )
            if ca is None:
                cert, key = creds.make_root_ca("opsconsole root CA")
                ca = ConsoleCertificateAuthority.objects.create(cert_pem=cert, private_key_pem=key)
    return ca.cert_pem, ca.private_key_pem


def product_template(staged_or_product: StagedProduct | Product) -> ProductTemplate:
    product = (
        staged_or_product.product
        if isinstance(staged_or_product, StagedProduct)
        else staged_or_product
    )
    return product.template()
