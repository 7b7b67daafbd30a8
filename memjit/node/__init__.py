"""The memjit node: one program (`memjit node start`) whose roles (operator, gateway,
sequencer) make the market a network; see docs/node.md."""
