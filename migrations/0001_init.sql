-- Placeholder; the registry work replaces this with the real schema.
CREATE TABLE IF NOT EXISTS registry_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL);
INSERT OR IGNORE INTO registry_revision (id, revision) VALUES (1, 0);
