"""Celery tasks of contacts: thin, they load by id and call the service."""

from __future__ import annotations

from celery import shared_task

from contacts.import_jobs import contact_import_job_run, contact_import_jobs_sweep


@shared_task(acks_late=True, name="contacts.tasks.contact_import_job_task")
def contact_import_job_task(job_id: str) -> None:
    contact_import_job_run(job_id=job_id)


@shared_task(name="contacts.tasks.contact_import_jobs_sweep_task")
def contact_import_jobs_sweep_task() -> int:
    return contact_import_jobs_sweep()
