"""Infrastructure wired in at the edges: settings, persistence, bus, clocks, keys, composition."""
