"""The market explorer: web pages over the market and rollup state, on every node.

`ExplorerSource` (memjit.explorer.source) is what the pages read; `LocalSource`
(memjit.explorer.local) implements it over a --home; `router(source)` (memjit.explorer.web)
serves the pages and the JSON API, for a node to mount, and `app(source)` standalone.
"""
