"""Background work: a job queue on the database and the runners that drain it."""
