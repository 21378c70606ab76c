"""Pure decisions over plain data: `now` is passed in, nothing here does I/O, reads the clock or imports an adapter
or a client library. The functions load what the core needs, ask it, and apply what it returns through the ports."""
