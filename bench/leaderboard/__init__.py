"""The shared leaderboard: an HTTP service that accepts results documents (``bench submit``), validates them with
the kit's own checks, stores each once (SQLAlchemy: SQLite by default, PostgreSQL by URL, Alembic migrations) and
shows energy against accuracy by data set, model and machine.

Rooms: ``storage`` (tables, migrations, transactions), ``validate`` (what a submission must satisfy), ``views``
(leaderboard rows, pages, CSV, static export), ``service`` (the ASGI app), ``client`` (``bench submit``), ``cli``
(argparse of ``bench submit`` and ``bench leaderboard``). Importing this package imports none of them: the CLI must
stay instant and the core kit must not need the ``leaderboard`` extra.
"""
