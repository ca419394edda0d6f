"""`field__any=values`: membership in a list as one array parameter on PostgreSQL (`= ANY(%s)`).

`__in` writes one placeholder per value; with hundreds of values a statement of the hot path spent
more CPU in building and converting the query than PostgreSQL spent running it (py-spy on W5).
Other databases get the plain IN list.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Field, ForeignObject, Lookup


@Field.register_lookup
class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> Any:
        return "%s", [list(value)]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            return "1 = 0", []
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


ForeignObject.register_lookup(AnyOf)
