"""kibertas-async plugin: the ``datadog-agent`` check and the sandbox stand-in of Datadog's query API.

Modules: :mod:`.check` (the check and its options), :mod:`.metrics` (the only module that imports
``datadog_api_client``, loaded when the check runs), :mod:`.sandbox` (the sandbox add-on) and
:mod:`.standin` (the stand-in server the add-on runs).
"""

__version__ = "0.1.0"
