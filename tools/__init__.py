"""Support tools that are not pipeline steps: the local Hub server for tests and the offline demo, model preparation."""
