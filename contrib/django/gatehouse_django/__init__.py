"""Django behind gatehouse: the user the gateway signed in becomes the Django
user, with email, name, groups, is_staff and is_superuser taken from the
identity headers the gateway sets (and strips from every client request).

    MIDDLEWARE: "gatehouse_django.middleware.GatehouseMiddleware" right after
                "django.contrib.auth.middleware.AuthenticationMiddleware"
    AUTHENTICATION_BACKENDS = ["gatehouse_django.backends.GatehouseBackend"]

Settings (all optional):
    GATEHOUSE_STAFF_GROUPS = ["staff"]        # members get is_staff (the Django admin)
    GATEHOUSE_SUPERUSER_GROUPS = []           # members get is_superuser (and is_staff)
    GATEHOUSE_SYNC_GROUPS = True              # mirror the groups into django.contrib.auth groups
    GATEHOUSE_ASSERTION_KEY_FILE = None       # verify identity.assertion_header with this key
    GATEHOUSE_ASSERTION_HEADER = "X-Gatehouse-Assertion"
"""
