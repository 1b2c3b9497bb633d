"""Director pages (thin over director.services)."""

from django.shortcuts import render


def stemcells(request):
    return render(request, "director/stemcells.html", {})


def tasks(request):
    return render(request, "director/tasks.html", {})


def vms(request):
    return render(request, "director/vms.html", {})


def events(request):
    return render(request, "director/events.html", {})
