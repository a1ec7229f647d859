-- Run-id prefixes (`tasker show 0190a1b2`, short ids): the primary key's index is
-- in the database's collation, where a prefix is not a range (en_US ignores `-`
-- at first); in byte order it is, so a prefix is one index range scan here.
CREATE INDEX runs_id_bytes ON runs(run_id COLLATE "C");
