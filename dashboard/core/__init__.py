"""The vocabulary every layer shares: constants and definitions, the registry of
measures, filters, the clock, config, the parameter catalogue, Meta's error codes and
number formats. Imports nothing else from the package."""
