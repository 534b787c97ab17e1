"""L1: tables in, tables out: schemas, io, validation, cleaning, store and the simulator."""
