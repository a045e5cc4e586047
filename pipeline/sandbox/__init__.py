"""A local Kayse-compatible API server for rehearsals, the demo and the tests.

It shares no code with the HTTP client in `pipeline.kayse`, so a misreading of the API cannot
hide in both. Start it with `kayse-etl sandbox`, or from Python with
`pipeline.sandbox.server.start_in_thread(SandboxConfig(...))`. See the README, "The sandbox".
"""
