"""Product templates: parse and validate Ops Manager tile metadata.

A tile is described by its *product template* (``metadata/<product>.yml``
inside a ``.pivotal`` zip): identity, releases, stemcell criteria,
``property_blueprints`` (typed settings), ``form_types`` (the panes of the
tile's Settings tab), ``job_types`` (instance groups, their BOSH jobs and
manifest snippets), errands, CredHub ``variables`` and runtime configs.

``load_product_template()`` parses the YAML safely (aliases expanded, no
Python tags) and checks the structure the rest of the console relies on.
Every problem is collected, with the path of the offending node, into one
``TemplateError``: ``property_blueprints/3/type: unknown type 'strng'``,
``form_types/0/property_inputs/2/reference: .properties.nope does not
exist``, ``job_types/web/instance_definition/constraints/min: ...``. Job
types are named by their ``name`` in paths (``job_types/web``), everything
else by index.

``load_pivotal()`` opens a ``.pivotal`` zip: exactly one ``metadata/*.yml``,
every release named in ``releases:`` present under ``releases/``. Nothing
is extracted to disk; member names are checked (no absolute paths, no
``..``) and the archive is held to the upload limits
(``director.archives``: members, expanded bytes, compression ratio).

Property references follow Ops Manager: ``.properties.x`` (product level),
``.<job>.x`` (job level), ``.properties.sel.<option name>.y`` (inside a
selector option).
"""

from __future__ import annotations

from tiles.template.load import (
    MAX_METADATA_BYTES,
    ReleaseFile,
    load_pivotal,
    load_product_template,
)
from tiles.template.model import (
    MAX_INSTANCES,
    ProductTemplate,
    PropertyReference,
    TemplateError,
    format_warnings,
    parse_yaml,
)

__all__ = [
    "TemplateError",
    "format_warnings",
    "ProductTemplate",
    "PropertyReference",
    "ReleaseFile",
    "load_product_template",
    "load_pivotal",
    "parse_yaml",
    "MAX_METADATA_BYTES",
    "MAX_INSTANCES",
]
