"""The data plane: request sniffing, body mutation, upstream transport, stream relay, usage capture."""
