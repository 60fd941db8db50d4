"""The only room that talks to a database: engine factory and lock policy, schema,
writes, import state, dedup statuses and every named query (`queries/`)."""
