"""SQLite for the example shop, set up for more than one writer.

The web server's threads and `kassa_sync --follow` write to the same file. With SQLite's
default deferred transactions, one that reads and then writes can be refused at once with
"database is locked" (the busy timeout cannot help a lock upgrade). Here every transaction
begins IMMEDIATE, so writers queue for the lock within the timeout, and the journal is
write-ahead, so readers never wait for a writer. A shop in production runs on PostgreSQL.
"""

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def _start_transaction_under_autocommit(self):
        self.cursor().execute("BEGIN IMMEDIATE")
