"""Django forms of the tiles pages.

- ``blueprint``: ``TilePaneForm``, a tile's Settings pane built from its
  blueprints (``tiles.formspec.FormSpec``), values handed back by property
  reference and validated by ``tiles.properties``;
- ``panes``: the system panes of every tile (Assign AZs and Networks,
  Resource Config, Errands);
- ``director``: the BOSH Director tile (vCenter Config, Director Config)
  and the parsers of its AZ, network and VM type rows.

Everything is re-exported here: callers import ``tiles.forms``.
"""

from .blueprint import (
    SECRET_PLACEHOLDER,
    Catalogs,
    PaneItem,
    RecordRow,
    TilePaneForm,
    field_name,
    indexed_rows,
)
from .director import (
    DirectorSettingsForm,
    VCenterForm,
    parse_availability_zones,
    parse_networks,
    parse_vm_types,
)
from .panes import ERRAND_CHOICES, ErrandsForm, NetworkAssignmentForm, ResourceConfigForm

__all__ = [
    "Catalogs",
    "TilePaneForm",
    "PaneItem",
    "RecordRow",
    "field_name",
    "indexed_rows",
    "SECRET_PLACEHOLDER",
    "NetworkAssignmentForm",
    "ResourceConfigForm",
    "ErrandsForm",
    "ERRAND_CHOICES",
    "VCenterForm",
    "DirectorSettingsForm",
    "parse_availability_zones",
    "parse_networks",
    "parse_vm_types",
]
