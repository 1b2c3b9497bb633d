"""The vSphere CPI: BOSH's CPI contract on vCenter through pyvmomi."""

from cpi.vsphere.cloud import VSphereCloud
from cpi.vsphere.config import ConfigError, CpiConfig, parse_config

__all__ = ["ConfigError", "CpiConfig", "VSphereCloud", "parse_config"]
