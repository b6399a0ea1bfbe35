"""Two views: one that logs, one that fails (Django logs its traceback itself)."""

import logging
import os

from django.http import HttpRequest, JsonResponse
from django.urls import path

log = logging.getLogger("shop")


def order(request: HttpRequest, number: int) -> JsonResponse:
    log.info("order %s viewed", number, extra={"order": number, "path": request.path})
    return JsonResponse({"order": number, "pid": os.getpid()})


def checkout(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("payment service unreachable")


urlpatterns = [path("orders/<int:number>", order), path("checkout", checkout)]
