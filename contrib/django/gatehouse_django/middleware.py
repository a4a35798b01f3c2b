"""RemoteUserMiddleware for gatehouse: the user comes from ``X-Remote-User``
(``HTTP_X_REMOTE_USER``), an empty or missing header is an anonymous
request (and ends a Django login made through it), and a change of email,
name or groups at the gateway reaches the Django user on the next request.
"""

import logging

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import RemoteUserMiddleware

from .identity import meta_key, read_identity

log = logging.getLogger("gatehouse_django")

# Kept in the Django session: what the user's record was last updated from.
_SYNCED = "_gatehouse_identity"


def _assertion_key():
    path = getattr(settings, "GATEHOUSE_ASSERTION_KEY_FILE", None)
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


class GatehouseMiddleware(RemoteUserMiddleware):
    header = "HTTP_X_REMOTE_USER"
    user_header = "X-Remote-User"
    email_header = "X-Remote-Email"
    name_header = "X-Remote-Name"
    groups_header = "X-Remote-Groups"
    # Django adapts a sync middleware under ASGI; one code path to trust.
    async_capable = False

    def __init__(self, get_response):
        super().__init__(get_response)
        self.assertion_key = _assertion_key()
        self.assertion_header = getattr(settings, "GATEHOUSE_ASSERTION_HEADER", "X-Gatehouse-Assertion")

    def process_request(self, request):
        identity = read_identity(
            request.META,
            self.user_header,
            self.email_header,
            self.name_header,
            self.groups_header,
            self.assertion_header,
            self.assertion_key,
        )
        if identity is None:
            if self.assertion_key is not None and request.META.get(self.header):
                log.warning("identity header without a valid assertion: treated as anonymous")
            # No header at all: RemoteUserMiddleware signs out a user it
            # signed in, and leaves the request anonymous.
            request.META.pop(self.header, None)
        else:
            request.META[self.header] = identity.user
        request.gatehouse = identity
        super().process_request(request)
        self._sync(request, identity)

    def _sync(self, request, identity):
        """Applies a changed email, name or groups to the signed-in user."""
        if identity is None or not request.user.is_authenticated:
            return
        seen = [identity.user, identity.email, identity.name, list(identity.groups)]
        if request.session.get(_SYNCED) == seen:
            return
        backend = auth.load_backend(request.session.get(auth.BACKEND_SESSION_KEY, ""))
        if hasattr(backend, "apply_identity"):
            backend.apply_identity(request.user, identity)
        request.session[_SYNCED] = seen
