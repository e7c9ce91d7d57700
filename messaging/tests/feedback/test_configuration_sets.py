"""The configuration sets whose SNS event destinations bring the feedback: created by bootstrap_aws on the
emulator (SES), named on every email and SMS."""

from __future__ import annotations

import io

import pytest
from botocore.stub import Stubber
from django.core.management import call_command

from messaging.channels import email as email_channel
from messaging.channels import provider_client
from messaging.channels import sms as sms_channel
from wecare import aws

pytestmark = pytest.mark.django_db


def test_bootstrap_aws_creates_the_ses_configuration_set_publishing_to_the_topic_and_may_run_again(settings, reset_aws):
    # reset_aws: the emulator is shared by this process's tests, and an earlier test's bootstrap (another
    # topic in its settings) may have made the set already; bootstrap_aws leaves an existing set as it is.
    call_command("bootstrap_aws", stdout=io.StringIO())
    call_command("bootstrap_aws", stdout=io.StringIO())  # idempotent

    name = settings.SES_CONFIGURATION_SET
    assert aws.client("sesv2").get_configuration_set(ConfigurationSetName=name)["ConfigurationSetName"] == name
    described = aws.client("ses").describe_configuration_set(
        ConfigurationSetName=name, ConfigurationSetAttributeNames=["eventDestinations"]
    )
    [destination] = described["EventDestinations"]
    assert destination["Enabled"] is True
    assert destination["SNSDestination"]["TopicARN"] == settings.SNS_TOPIC_ARN
    assert {"bounce", "complaint", "delivery", "reject"} <= set(destination["MatchingEventTypes"])


def test_every_email_names_the_ses_configuration_set(settings):
    settings.SES_CONFIGURATION_SET = "prod-email-events"

    request = email_channel.send_request(to="diego@example.org", subject="Hi", text="Hello")

    assert request.params["ConfigurationSetName"] == "prod-email-events"


def test_every_sms_names_the_sms_configuration_set_accepted_by_the_service_model(settings):
    settings.SMS_CONFIGURATION_SET = "prod-sms-events"
    settings.SEND_MODE = "LIVE"  # answered by the Stubber, which checks the request against the model
    request = sms_channel.send_request(to="+14255550156", body="Hello")

    with Stubber(provider_client("pinpoint-sms-voice-v2")) as stubber:
        stubber.add_response("send_text_message", {"MessageId": "sms-1"}, request.params)
        sms_channel.SmsProvider().call(request)

    assert request.params["ConfigurationSetName"] == "prod-sms-events"


def test_without_a_configuration_set_name_none_is_sent(settings):
    settings.SES_CONFIGURATION_SET = settings.SMS_CONFIGURATION_SET = ""

    assert "ConfigurationSetName" not in email_channel.send_request(to="a@example.org", subject="S", text="T").params
    assert "ConfigurationSetName" not in sms_channel.send_request(to="+14255550156", body="Hello").params
