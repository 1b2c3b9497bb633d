"""The console's own features, built on the director and the tiles: the top layer.

- ``users``: console users and their roles (the Users page, ``/api/v0/users``);
- ``backup``: encryption key rotation, installation export and import;
- the audit event of a login lockout (``opsconsole.throttle`` sends it,
  ``apps`` records it);
- ``manage.py runstack``: the whole console run locally (it prepares the
  message bus for the director's agents).

Everything else imports nothing from here: ``opsconsole`` is the bottom
(settings, auth, crypto, errors, local services), then ``cpi``, ``director``
and ``tiles``; this app may import any of them. It has no models.
"""
