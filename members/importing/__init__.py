"""The CSV member import: reader → row validation → database writers, and the services
that drive them (the ``import_members`` command and the admin's import jobs)."""
