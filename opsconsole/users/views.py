"""The Users page (Settings > Users): admins create users, set roles, reset passwords, disable.

Two pages over ``services``: the list (with the create form; with
``request.htmx`` a search renders only the table) and one user (role,
password, disable/enable, the user's audit events). Every other role gets a
403 page that says why. Forms post and redirect, and work without
JavaScript.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from director.services import NotFound, ServiceError
from opsconsole.auth import ROLE_ADMIN, role_of

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


#: The detail page's actions: POST ``action=<one of these>``.
ACTIONS = ("role", "password", "disable", "enable")


@require_http_methods(["GET", "POST"])
def user(request, user_id: int):
    if role_of(request.user) != ROLE_ADMIN:
        return _refuse(request)
    try:
        target = services.get_user(user_id)
    except NotFound:
        return render(request, "users/not_found.html", {"user_id": user_id}, status=404)
    role_form = RoleForm(initial={"role": role_of(target)})
    password_form = PasswordResetForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        form = None
        if action == "role":
            form = role_form = RoleForm(request.POST)
        elif action == "password":
            form = password_form = PasswordResetForm(request.POST)
        elif action not in ACTIONS:
            messages.error(request, f"action: must be one of {', '.join(ACTIONS)}")
            return redirect("user", user_id=target.pk)
        if form is None or form.is_valid():
            changes = {
                "role": lambda: {"role": form.cleaned_data["role"]},
                "password": lambda: {"password": form.cleaned_data["password"]},
                "disable": lambda: {"active": False},
                "enable": lambda: {"active": True},
            }[action]()
            try:
                target = services.update_user(request.user.get_username(), target.pk, changes)
            except ServiceError as exc:
                if form is None:
                    text = "; ".join(m for msgs in exc.errors.values() for m in msgs)
                    messages.error(request, f"{target.username}: {text}")
                    return redirect("user", user_id=target.pk)
                add_service_errors(form, exc.errors)
            else:
                if action == "password" and target.pk == request.user.pk:
                    update_session_auth_hash(request, target)  # stay logged in
                done = {
                    "role": f"{target.username} now has the role {role_of(target)}.",
                    "password": f"The password of {target.username} was reset.",
                    "disable": f"{target.username} is disabled: they cannot log in or use tokens.",
                    "enable": f"{target.username} is enabled again.",
                }[action]
                messages.success(request, done)
                return redirect("user", user_id=target.pk)
        status = 422
    return render(
        request,
        "users/user.html",
        {
            "target": target,
            "role": role_of(target),
            "role_form": role_form,
            "password_form": password_form,
            "events": services.user_events(target),
            "is_me": target.pk == request.user.pk,
        },
        status=status,
    )
