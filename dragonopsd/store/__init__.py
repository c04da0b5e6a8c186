"""SQLite persistence: the database, its migrations, one module per aggregate."""
