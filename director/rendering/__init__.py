"""Job template rendering: BOSH's ERB semantics, by the director, per instance.

A release job ships ERB templates (``templates: {src: dest}`` in its spec)
and a ``monit`` file. Before an instance is applied, the director renders
them with the instance's context, exactly as BOSH's ``JobRenderer`` and the
bosh-template ``EvaluationContext`` do: ``p``/``if_p`` over the job's bound
properties (spec defaults applied), ``spec.*`` (name, id, index, az,
address, ip, networks, deployment, bootstrap, job, release,
persistent_disk), ``link``/``if_link`` over the links the job consumes.

* ``model``  — the inputs, bound properties and the template spec (pure);
* ``links``  — links within a deployment, shaped as templates see them (pure);
* ``erb``    — the one call to ``ruby`` (``renderer.rb``) per deployment render;
* ``render`` — ``render_instances``: files, ``template_hashes``,
  ``configuration_hash`` and the rendered templates archive per instance.

Nothing here touches the database, the blobstore or an agent: the executor
gathers the inputs and stores the outputs.
"""

from .erb import RendererError, ruby_path
from .links import ResolvedLinks, resolve_links
from .model import (
    InstanceJob,
    InstanceToRender,
    JobTemplates,
    bind_properties,
    properties_source,
    template_spec,
)
from .render import (
    RenderedInstance,
    RenderedJob,
    RenderError,
    TemplateError,
    build_archive,
    render_instances,
)

__all__ = [
    "InstanceJob",
    "InstanceToRender",
    "JobTemplates",
    "RenderError",
    "RenderedInstance",
    "RenderedJob",
    "RendererError",
    "ResolvedLinks",
    "TemplateError",
    "bind_properties",
    "build_archive",
    "properties_source",
    "render_instances",
    "resolve_links",
    "ruby_path",
    "template_spec",
]
