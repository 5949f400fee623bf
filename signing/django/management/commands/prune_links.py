"""``manage.py prune_links``: drop the per-link state of links that have expired anyway."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from signing.django.conf import link_settings


class Command(BaseCommand):
    help = ("Remove the revocation files of links that have expired (nginx refuses them anyway); run it daily. "
            "The origin nginx drops expired links from its download journal itself, when it starts.")

    def handle(self, *args: Any, **options: Any) -> None:
        state = link_settings().link_state
        removed = state.prune()
        left = len(state.revocations())
        self.stdout.write(f"{state.root}: removed {removed} revocation(s) of expired links; {left} still in force")
