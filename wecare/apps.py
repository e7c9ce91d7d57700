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

        # Logs: Celery keeps Django's LOGGING (JSON); a request's id travels with the tasks it enqueues.
        from wecare import alerts, logs

        signals.setup_logging.connect(logs.celery_setup_logging, weak=False, dispatch_uid="wecare.logs.setup")
        signals.before_task_publish.connect(logs.celery_before_publish, weak=False, dispatch_uid="wecare.logs.pub")
        signals.task_prerun.connect(logs.celery_task_prerun, weak=False, dispatch_uid="wecare.logs.prerun")
        signals.task_postrun.connect(logs.celery_task_postrun, weak=False, dispatch_uid="wecare.logs.postrun")
        # An unhandled exception in a task: counted (WorkerErrors), logged with its stack, alerted.
        signals.task_failure.connect(alerts.celery_task_failure, weak=False, dispatch_uid="wecare.alerts.failure")
