"""Every SELECT the product runs, as named functions that take an engine and a slice
(`core.filters.Filters`) and return small frames: the scans behind a block, match
quality, freshness and delivery, the funnel, and the integrity rules."""
