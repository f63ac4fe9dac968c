"""Database infrastructure every app may use: bulk SQL, the SQLite writer turn, columnar reads
and database functions, each working on SQLite and PostgreSQL alike."""
