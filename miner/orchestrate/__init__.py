"""What ties the stages together for one repository or a whole crawl: the units of work the Celery tasks and the local pool run, and the doctor's checks."""
