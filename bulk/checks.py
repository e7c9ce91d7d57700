"""Start-up checks of the bulk settings that are JSON or names (bulk.E001…): a mistake is reported
with what to set, instead of surfacing at the first send."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core import checks

from bulk.pricing import price_table_check
from bulk.quiet_hours import rules_parse


@checks.register("bulk")
def bulk_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    try:
        rules_parse(settings.BULK_QUIET_HOURS)
    except ValueError as exc:
        errors.append(checks.Error(str(exc), hint="See README: Quiet hours.", id="bulk.E001"))
    for problem in price_table_check(settings.WHATSAPP_PRICE_TABLE):
        errors.append(checks.Error(problem, hint="See README: Cost.", id="bulk.E002"))
    try:
        ZoneInfo(settings.BUSINESS_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(
            checks.Error(
                f"BUSINESS_TIME_ZONE={settings.BUSINESS_TIME_ZONE!r} is not a time zone.",
                hint="Use an IANA name such as Asia/Kolkata.",
                id="bulk.E003",
            )
        )
    return errors
