"""kibertas-async-chatwork: posts one summary message per kibertas-async run to a Chatwork room.

Installing this distribution registers the plugin :mod:`kibertas_async_chatwork.plugin` under the
``kibertas_async`` entry-point group. It stays silent until both ``chatwork-api-token`` and
``chatwork-room-id`` are set (``CHATWORK_API_TOKEN`` / ``CHATWORK_ROOM_ID``).
"""

__version__ = "0.1.0"
