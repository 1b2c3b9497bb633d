"""opsconsole: a web console akin to Ops Manager with its own BOSH-style director."""

from .celery import app as celery_app

__version__ = "0.1.0"
__all__ = ["celery_app", "__version__"]
