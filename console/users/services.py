"""Managing console users: create, set the role, reset the password, disable, enable, delete.

Shared by the Users page, ``/api/v0/users`` and commands. Each function
checks its input and raises ``ServiceError`` naming the field (422 for bad
values, 409 for a duplicate user name or a change that would leave no
active admin), then writes and records one audit event per change in the
same transaction.

Invariants guarded here:

- every password set passes Django's password validators
  (``settings.AUTH_PASSWORD_VALIDATORS``);
- a disabled user (``is_active=False``) is kept: the login form, sessions
  and API tokens all refuse inactive users; a deleted user (Ops Manager's
  UAA delete) is gone with their API tokens and login sessions, while the
  audit events about them stay (events hold names, not rows);
- a password reset revokes the user's API tokens and ends their other
  sessions (Django's session hash): they log in again everywhere;
- at least one active admin remains: demoting, disabling or deleting the
  last one is refused with 409, and no admin deletes themselves (409);
- audit events name the actor, the action and the user, never a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from director.events import record_event
from director.services import list_events
from opsconsole.auth import ROLE_ADMIN, ROLES, role_of
from opsconsole.errors import NotFound, ServiceError
from opsconsole.models import ApiToken, UserProfile

#: ``Event.object_type`` of every user change.
OBJECT_TYPE = "user"
#: The fields a change (PATCH) may carry.
CHANGEABLE = ("role", "active", "password")
LAST_ADMIN = "at least one active admin must remain; make another user an admin first"
NOT_YOURSELF = "you cannot delete your own user; another admin can"


def _User():
    return get_user_model()


def list_users(search: str = "") -> QuerySet:
    """Every user (disabled ones too), by name; ``search`` matches part of the name."""
    qs = _User().objects.select_related("console_profile").order_by("username", "id")
    if search:
        qs = qs.filter(username__icontains=search)
    return qs


def get_user(user_id) -> Any:
    try:
        return list_users().get(pk=int(user_id))
    except (TypeError, ValueError, _User().DoesNotExist):
        raise NotFound({"id": [f"no user {user_id}"]}) from None


def get_user_named(username) -> Any:
    """The user named exactly ``username``; 404 naming it (without a query if no name could be)."""
    try:
        if _check_username(username) != username:
            raise ServiceError("not a user name")
        return list_users().get(username=username)
    except (ServiceError, _User().DoesNotExist):
        raise NotFound({"username": [f"no user {username!r}"]}) from None


def _check_role(role) -> str:
    if not isinstance(role, str) or role not in ROLES:
        raise ServiceError({"role": [f"must be one of {', '.join(ROLES)}"]})
    return role


def _check_password(password, user) -> str:
    if not isinstance(password, str) or not password:
        raise ServiceError({"password": ["is required (text)"]})
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ServiceError({"password": list(exc.messages)}) from None
    return password


def _check_username(username) -> str:
    if not isinstance(username, str) or not username.strip():
        raise ServiceError({"username": ["is required (text)"]})
    username = username.strip()
    field = _User()._meta.get_field(_User().USERNAME_FIELD)
    if len(username) > field.max_length:
        raise ServiceError({"username": [f"must be at most {field.max_length} characters"]})
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise ServiceError({"username": list(exc.messages)}) from None
    return username


def _collect(errors: dict, check, *args):
    """``check(*args)``, or None with its field errors added to ``errors``."""
    try:
        return check(*args)
    except ServiceError as exc:
        errors.update(exc.errors)
        return None


def _set_role(user, role: str) -> None:
    UserProfile.objects.update_or_create(user=user, defaults={"role": role})
    if role != ROLE_ADMIN and (user.is_superuser or user.is_staff):
        # A superuser is an admin whatever its profile says: demoting one drops the flag.
        user.is_superuser = user.is_staff = False
        user.save(update_fields=["is_superuser", "is_staff"])


def _active_admins() -> QuerySet:
    return (
        _User()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(console_profile__role=ROLE_ADMIN))
    )


def _other_active_admins(user) -> bool:
    """Whether an active admin other than ``user`` exists.

    The admins' rows are locked first, in one order, so two admins demoting
    each other at once are serialized (no deadlock) and the second sees the
    first's change in the fresh count that follows.
    """
    list(_active_admins().select_for_update(of=("self",)).order_by("pk").values_list("pk"))
    return _active_admins().exclude(pk=user.pk).exists()


@transaction.atomic
def create_user(actor: str, username, password, role) -> Any:
    """A new active user with ``role``; 409 when the name is taken (in any letter case)."""
    errors: dict[str, list[str]] = {}
    username = _collect(errors, _check_username, username)
    role = _collect(errors, _check_role, role)
    _collect(errors, _check_password, password, _User()(username=username or ""))
    if errors:
        raise ServiceError(errors)
    if _User().objects.filter(username__iexact=username).exists():
        raise ServiceError({"username": [f"a user named {username!r} already exists"]}, 409)
    try:
        with transaction.atomic():
            user = _User().objects.create_user(username=username, password=password)
    except IntegrityError:  # created meanwhile by another request
        raise ServiceError(
            {"username": [f"a user named {username!r} already exists"]}, 409
        ) from None
    UserProfile.objects.create(user=user, role=role)
    record_event("create", OBJECT_TYPE, username, user=actor, context={"role": role})
    return get_user(user.pk)


@transaction.atomic
def update_user(actor: str, user_id, changes: Mapping[str, Any]) -> Any:
    """Apply ``changes`` (any of ``role``, ``active``, ``password``) all or nothing.

    One audit event per actual change: ``update`` (role, with the old and new
    one), ``disable``/``enable``, ``reset-password``.
    """
    if not isinstance(changes, Mapping):
        raise ServiceError({"body": ["must be an object with role, active or password"]}, 400)
    unknown = [str(k) for k in changes if k not in CHANGEABLE]
    if unknown:
        only = f"cannot be changed (only {', '.join(CHANGEABLE)})"
        raise ServiceError({k or "body": [f"{k!r} {only}" if not k else only] for k in unknown})
    if not changes:
        raise ServiceError({"body": [f"give at least one of {', '.join(CHANGEABLE)}"]})
    user = get_user(user_id)
    errors: dict[str, list[str]] = {}
    role = _collect(errors, _check_role, changes["role"]) if "role" in changes else None
    active = changes.get("active")
    if "active" in changes and not isinstance(active, bool):
        errors["active"] = ["must be true or false"]
    password = None
    if "password" in changes:
        password = _collect(errors, _check_password, changes["password"], user)
    if errors:
        raise ServiceError(errors)

    demotes = (role is not None and role != ROLE_ADMIN) or active is False
    if demotes and role_of(user) == ROLE_ADMIN and user.is_active:
        others = _other_active_admins(user)
        user = get_user(user.pk)  # as it is now that the admins are locked
        if role_of(user) == ROLE_ADMIN and user.is_active and not others:
            field = "active" if active is False else "role"
            raise ServiceError({field: [LAST_ADMIN]}, 409)
    old_role = role_of(user)

    name = user.get_username()
    if role is not None and role != old_role:
        _set_role(user, role)
        record_event("update", OBJECT_TYPE, name, user=actor, context={"role": [old_role, role]})
    if active is not None and active != user.is_active:
        user.is_active = active
        user.save(update_fields=["is_active"])
        record_event("enable" if active else "disable", OBJECT_TYPE, name, user=actor)
    if password is not None:
        user.set_password(password)  # ends their sessions: the session hash no longer matches
        user.save(update_fields=["password"])
        _revoke_tokens(user)
        record_event("reset-password", OBJECT_TYPE, name, user=actor)
    return get_user(user.pk)


def _revoke_tokens(user) -> int:
    """Revoke every live API token of ``user`` (kept a while to explain the 401)."""
    now = timezone.now()
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now).update(
        revoked_at=now
    )


def _end_sessions(user_pk) -> None:
    """Delete the login sessions of the user ``user_pk`` (stores that list sessions only)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):  # cookie or cache sessions: not listable
        return
    model = store.get_model_class()
    live = model.objects.filter(expire_date__gt=timezone.now())
    for session in live.iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user_pk):
            store(session_key=session.session_key).delete()


@transaction.atomic
def delete_user(actor: str, user_id) -> str:
    """Delete a user (not the actor, not the last active admin); returns the name.

    Their API tokens and profile go with the row (cascade) and their login
    sessions are deleted; the audit events about them stay. One ``delete``
    event names who deleted whom and the role they had.
    """
    user = get_user(user_id)
    if role_of(user) == ROLE_ADMIN and user.is_active:
        others = _other_active_admins(user)
        user = get_user(user.pk)  # as it is now that the admins are locked
        if role_of(user) == ROLE_ADMIN and user.is_active and not others:
            raise ServiceError({"username": [LAST_ADMIN]}, 409)
    name = user.get_username()
    if name == actor:
        raise ServiceError({"username": [NOT_YOURSELF]}, 409)
    role = role_of(user)
    pk = user.pk
    user.delete()
    _end_sessions(pk)
    record_event("delete", OBJECT_TYPE, name, user=actor, context={"role": role})
    return name


def user_events(user, limit: int = 20) -> list:
    """The latest audit events about ``user``, newest first."""
    return list_events({"object_type": OBJECT_TYPE, "object_name": user.get_username()}, limit)
