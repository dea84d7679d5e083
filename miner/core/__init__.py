"""The base every stage reads: settings, plain domain objects, the rules table, which paths are sources, child-process lifelines. Imports nothing above it."""
