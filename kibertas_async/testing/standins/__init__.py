"""Local stand-ins for the external services kibertas-async talks to, for tests and demos.

Each stand-in is a small real HTTP server on ``127.0.0.1`` (a free port), implementing just enough of
the service's API to exercise a client end to end, recording what it received, and answering with
scripted faults on request. Use them as async context managers::

    async with ChatworkStandin() as chatwork:
        ...  # point the client at chatwork.api_url

- :mod:`kibertas_async.testing.standins.chatwork`: Chatwork's message endpoint.
"""
