"""PostgreSQL whose user and password come from an RDS-managed secret, read at connect time.

settings.py selects this engine when DATABASE_SECRET_NAME is set. RDS rotates the secret; a new
connection reads the current value (cached for SECRETS_CACHE_SECONDS, forgotten after a refused login).
"""

from __future__ import annotations

import json

from django.db.backends.postgresql import base

from wecare import aws


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        credentials = json.loads(aws.get_secret(self.settings_dict["SECRET_NAME"]))
        params["user"] = credentials["username"]
        params["password"] = credentials["password"]
        return params

    def get_new_connection(self, conn_params):
        try:
            return super().get_new_connection(conn_params)
        except base.Database.OperationalError:
            # Perhaps rotated since we cached it: the next attempt reads the secret again.
            aws.forget_secret(self.settings_dict["SECRET_NAME"])
            raise
