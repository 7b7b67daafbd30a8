"""The runtime: everything from a module's bytes to a verified claim about one call.

Content store (``store``), the wasmtime sandbox (``sandbox``), the WASM front end and its lowering
to the VM's flat program (``wasm``), the instrumented tracer (``tracer``), trace to AIR witness
(``witness``), tensor I/O buffers (``tensor_io``) and claims: VK, prove, verify (``claims``).
"""
