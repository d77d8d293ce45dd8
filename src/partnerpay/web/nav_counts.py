"""The count next to "Messages" in the console and portal navigation: conversations the viewer's side has not
read (staff: partner messages in the programs they see; a partner user: its own partner's threads).

One COUNT over message_threads, and only when a page actually draws the navigation: `render` hands the
template a function, so fragments and pages without a login never pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from fastapi import Request

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.messaging.queries import unread_threads
from partnerpay.web.security import read_factory

COUNTED = (ActorType.STAFF, ActorType.PARTNER)


def unread_messages(request: Request, me: Actor) -> Callable[[], int]:
    """A function the layout calls once for the badge; 0 hides it."""

    @cache
    def count() -> int:
        if me.type not in COUNTED:
            return 0
        with read_factory(request)() as session:
            return unread_threads(session, me)

    return count
