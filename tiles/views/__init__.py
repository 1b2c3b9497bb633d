"""Console pages for tiles (thin over ``tiles.services``).

- ``dashboard``: the **Installation Dashboard** (the BOSH Director tile
  and one tile per staged product, Import a Product, Available Products
  with a "+" to stage, Delete unused products, Revert);
- ``products``: a **product tile**, a left menu of panes with check marks
  (the tile's ``form_types``, Assign AZs and Networks, Resource Config,
  Errands); each pane saves on its own and an invalid value shows its
  error beside the field with nothing saved;
- ``director``: the **Director tile** (vCenter Config with "Test
  connection", Director Config, Create Availability Zones, Create
  Networks, Assign AZ and Network, VM Types);
- ``changes``: **Review Pending Changes**, **Apply Changes**, the
  installation page with its live log, and the **Change Log**;
- ``stemcells``: the **Stemcells** page (the console's Stemcell Library
  and the director's stemcells, at ``/director/stemcells/``).

One view per page; with ``request.htmx`` a view answers the fragment the
page asked for (``?fragment=...``): a selector's option fields, a new
collection/AZ/cluster/network/subnet row, the vCenter inventory, new log
lines. Plain forms work without JavaScript. Every write needs a control
role (``opsconsole.auth.can_write``), else 403 (``common.writer_required``).

The views live in their modules (``tiles.urls`` routes to them there):
re-exporting them here would shadow ``tiles.views.dashboard``, the module,
with the view of the same name.
"""
