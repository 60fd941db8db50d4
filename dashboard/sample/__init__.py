"""The seeded synthetic sample: fake Pixel + Conversions API logs with a known ground truth.

Owns generating the sample event log used by the tests, the demo data and the
benchmarks: two simulated Meta datasets (a web shop, a CRM), defects planted on purpose
and counted exactly as they are emitted, byte-for-byte the same output for the same seed.
Entry points live in :mod:`dashboard.sample.generator` (``write_sample_log``,
``iter_sample_records``, ``GroundTruth``); the other modules are its parts.
"""
