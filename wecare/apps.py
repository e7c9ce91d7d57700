from celery import signals
from django.apps import AppConfig


class WecareConfig(AppConfig):
    name = "wecare"
    verbose_name = "WECARE.DIGITAL platform"

    def ready(self):
        # Registers the wecare.E0xx system checks, run by `check`, runserver and migrate ...
        from wecare import checks

        # ... and by the Celery worker and beat, which refuse to start on an error like the web does.
        signals.worker_init.connect(checks.refuse_to_start_on_errors, weak=False, dispatch_uid="wecare.checks.worker")
        signals.beat_init.connect(checks.refuse_to_start_on_errors, weak=False, dispatch_uid="wecare.checks.beat")
