"""RemoteUserBackend for gatehouse: creates the Django user on first sight
(with an unusable password: only the gateway signs people in) and keeps its
email, name, groups, ``is_staff`` and ``is_superuser`` as the gateway says.
"""

from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.models import Group


def _setting(name, default):
    return getattr(settings, name, default)


class GatehouseBackend(RemoteUserBackend):
    create_unknown_user = True

    def configure_user(self, request, user, created=True):
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        identity = getattr(request, "gatehouse", None)
        if identity is not None:
            self.apply_identity(user, identity)
        return user

    def apply_identity(self, user, identity):
        groups = set(identity.groups)
        superuser = bool(groups & set(_setting("GATEHOUSE_SUPERUSER_GROUPS", [])))
        # The Django admin admits staff only: a superuser is staff too.
        staff = superuser or bool(groups & set(_setting("GATEHOUSE_STAFF_GROUPS", ["staff"])))
        first, _, last = identity.name.rpartition(" ")
        if not first:
            first, last = last, ""
        wanted = {
            "email": identity.email[:254],
            "first_name": first[:150],
            "last_name": last[:150],
            "is_staff": staff,
            "is_superuser": superuser,
        }
        changed = [k for k, v in wanted.items() if getattr(user, k) != v]
        for k in changed:
            setattr(user, k, wanted[k])
        if changed:
            user.save(update_fields=changed)
        if _setting("GATEHOUSE_SYNC_GROUPS", True):
            user.groups.set([Group.objects.get_or_create(name=g[:150])[0] for g in sorted(groups)])
