-- Local copies are per node. An uploaded recording kept on local disk too
-- ([storage] keep_local) names the node whose data dir holds the copy, and a
-- garbage row names the node whose file it is: only that node removes it (another
-- node's data dir is not ours to judge), so a delete made through any node never
-- leaks the recording node's copy. NULL: the file is on whichever node serves
-- the catalogue alone (one node on SQLite, or a recording never uploaded).
ALTER TABLE recordings ADD COLUMN local_node TEXT NULL;
ALTER TABLE garbage ADD COLUMN node TEXT NULL;
