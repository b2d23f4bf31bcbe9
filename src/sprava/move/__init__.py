"""Moving an instance between back ends (``sprava move``): SQLite and a folder to
PostgreSQL and an S3 bucket, and back. See :mod:`sprava.move.service`."""
