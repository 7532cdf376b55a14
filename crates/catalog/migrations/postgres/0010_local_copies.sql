-- Local copies are per node (PostgreSQL twin of sqlite/0010_local_copies.sql).
ALTER TABLE recordings ADD COLUMN local_node TEXT COLLATE "C" NULL;
ALTER TABLE garbage ADD COLUMN node TEXT COLLATE "C" NULL;
