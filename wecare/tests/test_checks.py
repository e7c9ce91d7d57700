from __future__ import annotations

import pytest

from wecare import checks


def _ids(errors) -> list[str]:
    return [error.id for error in errors]


def test_the_seed_defaults_pass_every_check():
    from django.core.checks import run_checks

    assert [m for m in run_checks() if m.id and m.id.startswith("wecare.")] == []


@pytest.mark.parametrize(
    "value",
    [
        ["+919876543210"],
        ["phone-number-id-baa217c3f11b4ffd956f6f3afb44ce54", "baa217c3f11b4ffd956f6f3afb44ce54"],
        ["phone-number-id-BAA217C3F11B4FFD956F6F3AFB44CE54"],
        ["phone-number-id-baa217c3"],
        [],
    ],
)
def test_whatsapp_allowlist_entries_must_be_phone_number_ids(settings, value):
    settings.WHATSAPP_PHONE_NUMBER_IDS = value

    errors = checks.check_whatsapp_phone_number_ids()

    assert _ids(errors) == ["wecare.E001"]
    assert "WHATSAPP_PHONE_NUMBER_IDS" in errors[0].msg


def test_the_whatsapp_error_names_only_the_bad_entries(settings):
    settings.WHATSAPP_PHONE_NUMBER_IDS = ["phone-number-id-1447bc72d1b040f4bf2341c9e04b2e06", "+919876543210"]

    (error,) = checks.check_whatsapp_phone_number_ids()

    assert error.msg.endswith(": +919876543210.")


@pytest.mark.parametrize("value", ["one@", "one.wecare.digital", "WECARE.DIGITAL <one@wecare.digital>", ""])
def test_ses_sender_must_be_an_email_address(settings, value):
    settings.SES_SENDER_EMAIL = value

    assert _ids(checks.check_ses_sender()) == ["wecare.E002"]


@pytest.mark.parametrize("value", ["WECARE\r\nBcc: x@example.com", 'We "care"', "<WECARE>"])
def test_ses_sender_name_must_not_break_the_from_header(settings, value):
    settings.SES_SENDER_NAME = value

    (error,) = checks.check_ses_sender()

    assert error.id == "wecare.E002"
    assert "SES_SENDER_NAME" in error.msg


@pytest.mark.parametrize(
    "value",
    [
        "base-wecare-digital",
        "arn:aws:sqs:us-east-1:809904170947:base-wecare-digital",
        "arn:aws:sns:us-east-1:8099041709:base-wecare-digital",
        "arn:aws:sns:us-east-1:809904170947:",
    ],
)
def test_sns_topic_must_be_an_sns_arn(settings, value):
    settings.SNS_TOPIC_ARN = value

    assert _ids(checks.check_sns_topic_arn()) == ["wecare.E003"]


@pytest.mark.parametrize(
    "value",
    ["arn:aws:sns:eu-west-2:123456789012:events", "arn:aws-us-gov:sns:us-gov-west-1:123456789012:events.fifo"],
)
def test_other_sns_topic_arns_pass(settings, value):
    settings.SNS_TOPIC_ARN = value

    assert checks.check_sns_topic_arn() == []


@pytest.mark.parametrize("value", ["6fbf5a5f390d4eeeaa7dbae39d78933e", "pool-6fbf", "+15555550100"])
def test_sms_pool_must_be_a_pool_id_or_arn(settings, value):
    settings.SMS_POOL_ID = value

    assert _ids(checks.check_sms_pool()) == ["wecare.E004"]


def test_an_sms_pool_arn_passes(settings):
    settings.SMS_POOL_ID = "arn:aws:sms-voice:us-east-1:809904170947:pool/pool-6fbf5a5f390d4eeeaa7dbae39d78933e"

    assert checks.check_sms_pool() == []


@pytest.mark.parametrize("value", ["Auth.WeCare.Digital", "s3://auth.wecare.digital", "ab", "auth..wecare", "bucket-"])
def test_buckets_must_have_valid_names(settings, value):
    settings.REPORT_BUCKET = value

    (error,) = checks.check_buckets_and_prefixes()

    assert (error.id, error.msg.split("=")[0]) == ("wecare.E005", "REPORT_BUCKET")


@pytest.mark.parametrize("value", ["whatsapp-media/incoming", "/whatsapp-media/incoming/"])
def test_prefixes_must_end_with_a_slash_and_not_start_with_one(settings, value):
    settings.MEDIA_INCOMING_PREFIX = value

    (error,) = checks.check_buckets_and_prefixes()

    assert (error.id, error.msg.split("=")[0]) == ("wecare.E006", "MEDIA_INCOMING_PREFIX")


def test_an_empty_prefix_means_the_bucket_root(settings):
    settings.REPORT_PREFIX = ""

    assert checks.check_buckets_and_prefixes() == []


@pytest.mark.parametrize("value", ["us-east", "US-EAST-1", "useast1", "us_east_1"])
def test_aws_region_must_be_a_region_name(settings, value):
    settings.AWS_REGION = value

    assert _ids(checks.check_aws_region()) == ["wecare.E007"]


def test_worker_start_up_is_refused_when_a_check_fails(settings):
    settings.SNS_TOPIC_ARN = "not-an-arn"

    with pytest.raises(SystemExit, match=r"refusing to start:\n.*wecare.E003"):
        checks.refuse_to_start_on_errors()


def test_worker_start_up_goes_on_when_every_check_passes():
    assert checks.refuse_to_start_on_errors() is None
