"""Users pages, mounted at /settings/users/ by ``opsconsole/urls.py``."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.users, name="users"),
    path("<int:user_id>/", views.user, name="user"),
]
