"""Console users and their roles: the admin-only Users page and ``/api/v0/users``.

``services`` holds the verbs (create, change role, reset password, disable,
enable) that the page (``views``) and the API (``api``) share; every change
is an audit event (``director.events``) naming who did what to whom, never
the password.
"""
