"""The Users page (Settings > Users): admins create users, set roles, reset passwords,
disable and delete.

Two pages over ``services``: the list (with the create form; with
``request.htmx`` a search renders only the table) and one user (role,
password, disable/enable, delete, the user's audit events). Every other role gets a
403 page that says why. Forms post and redirect, and work without
JavaScript.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from opsconsole.auth import ROLE_ADMIN, role_of
from opsconsole.errors import NotFound, ServiceError

from . import services
from .forms import PasswordResetForm, RoleForm, UserCreateForm, add_service_errors

PAGE_SIZE = 50


def _refuse(request):
    return render(request, "users/forbidden.html", {"role": role_of(request.user)}, status=403)


def _list_context(request) -> dict:
    search = request.GET.get("q", "").strip()
    page = Paginator(services.list_users(search), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(u, role_of(u)) for u in page.object_list]
    return {"page": page, "rows": rows, "search": search, "me": request.user.pk}


@require_http_methods(["GET", "POST"])
def users(request):
    if role_of(request.user) != ROLE_ADMIN:
        return _refuse(request)
    form = UserCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = services.create_user(
                    request.user.get_username(), data["username"], data["password"], data["role"]
                )
            except ServiceError as exc:
                add_service_errors(form, exc.errors)
            else:
                messages.success(request, f"Created user {user.username} ({data['role']}).")
                return redirect("users")
        status = 422
    context = _list_context(request)
    if request.htmx and request.method == "GET":
        return render(request, "users/user_table.html", context)
    return render(request, "users/users.html", {**context, "form": form}, status=status)


#: The detail page's actions (POST ``action=``): the change each makes and what it then says.
ACTIONS = {
    "role": (lambda data: {"role": data["role"]}, "{name} now has the role {role}."),
    "password": (
        lambda data: {"password": data["password"]},
        "The password of {name} was reset: they must log in again everywhere"
        " (their sessions ended and their API tokens were revoked).",
    ),
    "disable": (
        lambda data: {"active": False},
        "{name} is disabled: they cannot log in and their API tokens stop working.",
    ),
    "enable": (lambda data: {"active": True}, "{name} is enabled again."),
}
#: Said after resetting one's own password (this session is kept).
OWN_PASSWORD = (
    "Your password was reset: this session stays logged in; your other sessions ended"
    " and your API tokens were revoked."
)


def _delete(request, target):
    """The Delete button: to the list with what happened, or back with why not."""
    try:
        name = services.delete_user(request.user.get_username(), target.pk)
    except ServiceError as exc:
        text = "; ".join(m for msgs in exc.errors.values() for m in msgs)
        messages.error(request, f"{target.username}: {text}")
        return redirect("user", user_id=target.pk)
    messages.success(
        request,
        f"Deleted user {name}: their sessions and API tokens are gone; the events about them stay.",
    )
    return redirect("users")


@require_http_methods(["GET", "POST"])
def user(request, user_id: int):
    if role_of(request.user) != ROLE_ADMIN:
        return _refuse(request)
    try:
        target = services.get_user(user_id)
    except NotFound:
        return render(request, "users/not_found.html", {"user_id": user_id}, status=404)
    forms = {"role": RoleForm(initial={"role": role_of(target)}), "password": PasswordResetForm()}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "delete":
            return _delete(request, target)
        if action not in ACTIONS:
            messages.error(request, f"action: must be one of {', '.join([*ACTIONS, 'delete'])}")
            return redirect("user", user_id=target.pk)
        # Disable and enable are bare buttons: their refusal is a message, not a form error.
        form = None
        if action in forms:
            form = forms[action] = type(forms[action])(request.POST)
        if form is None or form.is_valid():
            change, done = ACTIONS[action]
            data = form.cleaned_data if form else {}
            try:
                target = services.update_user(request.user.get_username(), target.pk, change(data))
            except ServiceError as exc:
                if form is not None:
                    add_service_errors(form, exc.errors)
                else:
                    text = "; ".join(m for msgs in exc.errors.values() for m in msgs)
                    messages.error(request, f"{target.username}: {text}")
                    return redirect("user", user_id=target.pk)
            else:
                if action == "password" and target.pk == request.user.pk:
                    update_session_auth_hash(request, target)  # stay logged in
                    done = OWN_PASSWORD
                messages.success(request, done.format(name=target.username, role=role_of(target)))
                return redirect("user", user_id=target.pk)
        status = 422
    return render(
        request,
        "users/user.html",
        {
            "target": target,
            "role": role_of(target),
            "role_form": forms["role"],
            "password_form": forms["password"],
            "events": services.user_events(target),
            "is_me": target.pk == request.user.pk,
        },
        status=status,
    )
