"""The HTTP layer: each module parses one endpoint family's requests and renders its answers."""
